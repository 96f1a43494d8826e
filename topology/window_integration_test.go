package topology_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/lovoo/goka"
	"github.com/weftstream/weft/internal/kafkatest"
	"github.com/weftstream/weft/kafkaclient"
	"github.com/weftstream/weft/processors"
	"github.com/weftstream/weft/topology"
)

// windowApp is a windowed count with suppress-until-window-close,
// compiled anew (fresh runtimes, as after a restart) by each run.
type windowApp struct {
	t        *testing.T
	app      string
	kafka    kafkaclient.Config
	stateDir string
}

func (a *windowApp) input() string  { return a.app + "-clicks" }
func (a *windowApp) finals() string { return a.app + "-finals" }

// run compiles the topology and runs its groups until stop is called.
func (a *windowApp) run() (c *topology.Compiled, procs map[goka.Group]*processors.Processor, stop func()) {
	t := a.t
	t.Helper()
	b := topology.New(a.app)
	b.Stream(a.input(), topology.JSON{}, topology.WithTimestampExtractor(func(_ string, v any) (time.Time, error) {
		return time.Parse(time.RFC3339, field(v, "at").(string))
	})).GroupByKey().WindowedBy("minutes", topology.Tumbling(time.Minute, 10*time.Second)).Count("per-minute").
		SuppressUntilWindowClose("final").To(a.finals(), topology.JSON{})
	c = mustCompile(t, b, topology.WithProcessorOptions(processors.WithKafka(a.kafka)))
	procs = map[goka.Group]*processors.Processor{}
	var list []*processors.Processor
	for _, g := range c.Groups {
		opts := append([]processors.Option{processors.WithKafka(a.kafka), processors.WithStateDir(a.stateDir)}, g.Options()...)
		p, err := processors.NewProcessor(t.Context(), g.Graph, opts...)
		if err != nil {
			t.Fatal(err)
		}
		procs[g.Name] = p
		list = append(list, p)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- processors.RunAll(ctx, list...) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("processors: %v", err)
			}
		case <-time.After(time.Minute):
			t.Error("the processors did not stop within a minute")
		}
	}
	t.Cleanup(stop)
	return c, procs, stop
}

func (a *windowApp) click(key, at string) {
	a.t.Helper()
	em, err := processors.NewEmitter(a.t.Context(), a.input(), processors.WithKafka(a.kafka))
	if err != nil {
		a.t.Fatal(err)
	}
	em.Emit(key, fmt.Appendf(nil, `{"at":%q}`, at), nil)
	if err := em.Close(); err != nil {
		a.t.Fatal(err)
	}
}

// handled waits until group g of c has handled n records.
func handled(t *testing.T, c *topology.Compiled, g goka.Group, n int64) {
	t.Helper()
	for _, grp := range c.Groups {
		if grp.Name == g {
			tl := grp.Runtime.Tally()
			kafkatest.WaitFor(t, time.Minute, fmt.Sprintf("%d records handled by %s", n, g), func() bool {
				return tl.Processed()+tl.Rejected()+tl.Replayed() >= n
			})
			return
		}
	}
	t.Fatalf("no group %s", g)
}

// The stream time that closed a window survives a restart: a record for
// the closed window that arrives after the restart is rejected as late by
// the aggregation, and the window's table value and its one final stay
// what they were. (With the stream time kept in memory, the restarted
// aggregation took the record, and the suppressor dead-lettered it.)
func TestIntegrationWindowStreamTimeSurvivesRestart(t *testing.T) {
	a := &windowApp{t: t, app: kafkatest.Topic(t, "win"),
		kafka: kafkaclient.Config{Brokers: kafkatest.Brokers(t), Partitions: 1}, stateDir: t.TempDir()}
	agg, sup := goka.Group(a.app+"-per-minute"), goka.Group(a.app+"-final")

	c, procs, stop := a.run()
	a.click("ann", "2026-03-01T10:00:05Z")
	a.click("ann", "2026-03-01T10:01:20Z") // stream time passes 10:01:10, the close of 10:00
	handled(t, c, agg, 2)
	final := kafkatest.Consume(t, a.kafka.Brokers, a.finals(), 1, time.Minute)
	if k, v := string(final[0].Key), string(final[0].Value); k != "ann@2026-03-01T10:00:00Z" || v != "1" {
		t.Fatalf("final %s=%s, want ann@2026-03-01T10:00:00Z=1", k, v)
	}
	handled(t, c, sup, 3) // two updates and the close
	stop()

	c, procs, _ = a.run()
	a.click("ann", "2026-03-01T10:00:50Z") // late: its window closed before the restart
	a.click("ann", "2026-03-01T10:01:30Z")
	handled(t, c, agg, 2)
	handled(t, c, sup, 1)
	var aggTally, supTally *processors.Tally
	for _, g := range c.Groups {
		switch g.Name {
		case agg:
			aggTally = g.Runtime.Tally()
		case sup:
			supTally = g.Runtime.Tally()
		}
	}
	if r := aggTally.RejectedByReason(); aggTally.Processed() != 1 || r["late"] != 1 {
		t.Errorf("aggregation after the restart: %d processed, rejected %v; want 1 and the late click", aggTally.Processed(), r)
	}
	if n := supTally.Rejected(); n != 0 {
		t.Errorf("the suppressor rejected %d updates: %v", n, supTally.RejectedByReason())
	}
	for key, want := range map[string]int64{"ann@2026-03-01T10:00:00Z": 1, "ann@2026-03-01T10:01:00Z": 2} {
		v, err := procs[agg].Get(key)
		if st, _ := v.(*processors.Stored); err != nil || st == nil || st.Value != want {
			t.Errorf("table %s = %+v (%v), want %d", key, v, err, want)
		}
	}
	late := kafkatest.Consume(t, a.kafka.Brokers, string(processors.DeadLetterTopic(agg)), 1, time.Minute)
	if k := string(late[0].Key); k != "ann@2026-03-01T10:00:00Z" {
		t.Errorf("dead letter %s, want the late click of ann's 10:00 window", k)
	}
	kafkatest.Consume(t, a.kafka.Brokers, a.finals(), 1, 5*time.Second) // still one final
}

// Two input partitions at different event-time speeds feed one windowed
// count: the first partition's clicks are 7 s apart, the second's 2 s
// (produced alternately), so the aggregation reads the second partition's
// clicks after ever newer ones of the first, and those whose windows have
// closed are late. Whatever the interleaving, every click is either in
// its window's count or dead-lettered as late by the aggregation, never
// both; the suppressor rejects nothing; and once clicks a day later close
// every window, each window is emitted once with its table value (the
// count of its clicks that were not late).
func TestIntegrationWindowFinalsWithSkewedPartitions(t *testing.T) {
	a := &windowApp{t: t, app: kafkatest.Topic(t, "skew"),
		kafka: kafkaclient.Config{Brokers: kafkatest.Brokers(t), Partitions: 2}, stateDir: t.TempDir()}
	agg, sup, src := goka.Group(a.app+"-per-minute"), goka.Group(a.app+"-final"), goka.Group(a.app+"-"+a.app+"-clicks")
	c, procs, _ := a.run()

	base := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	keys := kafkatest.KeysCovering(t, 2, func(i int) string { return fmt.Sprintf("user-%d", i) })
	type click struct {
		key string
		at  time.Time
	}
	var clicks []click
	for i := range 200 {
		for p, gap := range []time.Duration{7 * time.Second, 2 * time.Second} {
			clicks = append(clicks, click{keys[p], base.Add(time.Duration(i) * gap)})
		}
	}
	em, err := processors.NewEmitter(t.Context(), a.input(), processors.WithKafka(a.kafka))
	if err != nil {
		t.Fatal(err)
	}
	inWindow := map[string]int64{}
	for _, cl := range clicks {
		em.Emit(cl.key, fmt.Appendf(nil, `{"at":%q}`, cl.at.Format(time.RFC3339)), nil)
		inWindow[topology.WindowKey(cl.key, cl.at.Truncate(time.Minute))]++
	}
	if err := em.Close(); err != nil {
		t.Fatal(err)
	}
	handled(t, c, agg, int64(len(clicks)))

	// Clicks a day later, one per partition of the aggregation, close
	// every window.
	day := base.Add(24 * time.Hour)
	ticks := kafkatest.KeysCovering(t, 2, func(i int) string { return topology.WindowKey(fmt.Sprintf("tick-%d", i), day) })
	for _, w := range ticks {
		a.click(w[:len(w)-len("@"+day.Format(time.RFC3339))], day.Format(time.RFC3339))
	}
	handled(t, c, agg, int64(len(clicks)+len(ticks)))

	var tallies = map[goka.Group]*processors.Tally{}
	for _, g := range c.Groups {
		tallies[g.Name] = g.Runtime.Tally()
	}
	lateN := tallies[agg].Rejected()
	if r := tallies[agg].RejectedByReason(); r["late"] != lateN {
		t.Fatalf("the aggregation rejected %v", r)
	}
	if tallies[src].Rejected() != 0 || tallies[src].Processed() != int64(len(clicks)+len(ticks)) {
		t.Fatalf("source group: %d processed, %d rejected", tallies[src].Processed(), tallies[src].Rejected())
	}
	t.Logf("%d of %d clicks late", lateN, len(clicks))
	late := map[string]int64{}
	if lateN > 0 {
		for _, r := range kafkatest.Consume(t, a.kafka.Brokers, string(processors.DeadLetterTopic(agg)), int(lateN), time.Minute) {
			late[string(r.Key)]++
		}
	}
	table := map[string]int64{}
	for w, n := range inWindow {
		want := n - late[w]
		v, err := procs[agg].Get(w)
		if err != nil {
			t.Fatal(err)
		}
		got := int64(0)
		if st, _ := v.(*processors.Stored); st != nil {
			got = st.Value.(int64)
		}
		if got != want {
			t.Errorf("table %s = %d, want %d clicks (%d) less %d late", w, got, want, n, late[w])
		}
		if got > 0 {
			table[w] = got
		}
	}
	for w := range late {
		if inWindow[w] == 0 {
			t.Errorf("late click for %s, which has no clicks", w)
		}
	}

	finals := kafkatest.Consume(t, a.kafka.Brokers, a.finals(), len(table), time.Minute)
	seen := map[string]bool{}
	for _, r := range finals {
		w := string(r.Key)
		if seen[w] {
			t.Errorf("window %s emitted twice", w)
		}
		seen[w] = true
		if got := string(r.Value); got != fmt.Sprint(table[w]) {
			t.Errorf("final %s = %s, table value %d", w, got, table[w])
		}
	}
	if n := tallies[sup].Rejected(); n != 0 {
		t.Errorf("the suppressor rejected %d updates: %v", n, tallies[sup].RejectedByReason())
	}
}
