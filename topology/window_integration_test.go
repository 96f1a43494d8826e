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
		v, err := procs[agg].Goka().Get(key)
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
