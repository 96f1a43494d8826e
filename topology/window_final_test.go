package topology_test

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/tester"
	"github.com/weftstream/weft/processors"
	"github.com/weftstream/weft/topology"
)

// The windows' finals are the windowed table's final values, and every
// record is either applied to its window or dead-lettered as late, when
// the clicks come from two input partitions at different event-time
// speeds. The repartition topic of the windowed count interleaves what
// the two partitions' window steps send it; the test writes that
// interleaving itself (the tester has one partition per topic), as two
// upstream partitions (weft.from) whose event times advance by about 7 s
// and 2 s per click. The expectation is a fold over the records in the
// order the aggregation reads them: a record is late when the stream time
// (the newest event time applied) has reached its window's end plus
// grace; a window is final, and emitted once, when the stream time has.
func TestWindowFinalsAreTheTableValues(t *testing.T) {
	const (
		size  = time.Minute
		grace = 10 * time.Second
	)
	b := topology.New("app")
	b.Stream("clicks", topology.JSON{}).GroupByKey().
		WindowedBy("minutes", topology.Tumbling(size, grace)).Count("per-minute").
		SuppressUntilWindowClose("final").To("finals", topology.JSON{})
	c := mustCompile(t, b)
	tt := runOnTester(t, c)
	finals := tt.NewQueueTracker("finals")
	aggLate := tt.NewQueueTracker(string(processors.DeadLetterTopic("app-per-minute")))
	supDLQ := tt.NewQueueTracker(string(processors.DeadLetterTopic("app-final")))

	type click struct {
		part  int
		off   int64
		key   string
		at    time.Time
		start time.Time
	}
	base := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	seed := uint64(42)
	rnd := func(n uint64) uint64 { seed = seed*6364136223846793005 + 1442695040888963407; return (seed >> 33) % n }
	var clicks []click
	clock := [2]time.Duration{}
	offs := [2]int64{}
	for i := 0; i < 600; i++ {
		p := int(rnd(2))
		step := []time.Duration{7 * time.Second, 2 * time.Second}[p]
		clock[p] += time.Duration(rnd(uint64(2*step/time.Millisecond))) * time.Millisecond
		at := base.Add(clock[p])
		key := []string{"ann", "bob", "cid"}[rnd(3)]
		clicks = append(clicks, click{p, offs[p], key, at, at.Truncate(size)})
		offs[p]++
	}

	// The fold.
	var streamTime time.Time
	want := map[string]int64{}
	wantLate := map[string]int{}
	for _, cl := range clicks {
		w := topology.WindowKey(cl.key, cl.start)
		if !streamTime.Before(cl.start.Add(size + grace)) {
			wantLate[w]++
			continue
		}
		want[w]++
		if cl.at.After(streamTime) {
			streamTime = cl.at
		}
	}
	wantFinal := map[string]int64{}
	for w, n := range want {
		start, _ := topology.WindowStart(w)
		if !streamTime.Before(start.Add(size + grace)) {
			wantFinal[w] = n
		}
	}
	if len(wantLate) == 0 || len(wantFinal) < 10 {
		t.Fatalf("the clicks do not test much: %d late windows, %d finals", len(wantLate), len(wantFinal))
	}

	repartition := c.Topology.RepartitionTopic(c.Topology.Nodes[len(c.Topology.Nodes)-3])
	if repartition != "app-per-minute-repartition" {
		t.Fatalf("repartition topic %s", repartition)
	}
	for _, cl := range clicks {
		tt.Consume(repartition, topology.WindowKey(cl.key, cl.start), []byte(`{}`), tester.WithHeaders(goka.Headers{
			processors.HeaderEventTime: strconv.AppendInt(nil, cl.at.UnixMilli(), 10),
			processors.HeaderFrom:      fmt.Appendf(nil, "clicks/%d/%d/0", cl.part, cl.off),
		}))
	}

	for w, n := range want {
		v, _ := tt.TableValue("app-per-minute-table", w).(*processors.Stored)
		if v == nil || v.Value != n {
			t.Errorf("table %s = %+v, want %d", w, v, n)
		}
	}
	gotLate := map[string]int{}
	for _, k, _, ok := aggLate.NextRawWithHeaders(); ok; _, k, _, ok = aggLate.NextRawWithHeaders() {
		gotLate[k]++
	}
	if fmt.Sprint(gotLate) != fmt.Sprint(wantLate) {
		t.Errorf("late records per window:\n got %v\nwant %v", gotLate, wantLate)
	}
	for h, k, _, ok := supDLQ.NextRawWithHeaders(); ok; h, k, _, ok = supDLQ.NextRawWithHeaders() {
		t.Errorf("the suppressor dead-lettered an update of %s: %s", k, h[processors.HeaderErrorMessage])
	}
	gotFinal := map[string]int64{}
	for _, k, v, ok := finals.NextRawWithHeaders(); ok; _, k, v, ok = finals.NextRawWithHeaders() {
		if _, dup := gotFinal[k]; dup {
			t.Errorf("window %s emitted twice", k)
		}
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			t.Fatalf("final %s = %q", k, v)
		}
		gotFinal[k] = n
	}
	if fmt.Sprint(gotFinal) != fmt.Sprint(wantFinal) {
		t.Errorf("finals:\n got %v\nwant %v", gotFinal, wantFinal)
	}
}
