package topology_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/lovoo/goka/tester"
	"github.com/weftstream/weft/processors"
	"github.com/weftstream/weft/topology"
)

// A late record is rejected by the windowed pipeline and processed by its
// sibling: it is dead-lettered once, as late, and every pipeline's counts
// add up to the records that reached it (processed + rejected).
func TestLateRecordIsCountedPerPipeline(t *testing.T) {
	b := topology.New("clicks")
	clicks := b.Stream("clicks", topology.JSON{}, topology.WithTimestampExtractor(func(_ string, v any) (time.Time, error) {
		return time.Parse(time.RFC3339, field(v, "at").(string))
	}))
	clicks.GroupByKey().WindowedBy("hourly", topology.Tumbling(time.Hour, 10*time.Minute)).Count("per-hour")
	clicks.To("clicks-copy", topology.JSON{})
	c := mustCompile(t, b)
	tt := runOnTester(t, c)
	copies := tt.NewQueueTracker("clicks-copy")
	var dlqs []*tester.QueueTracker
	for _, g := range c.Groups {
		dlqs = append(dlqs, tt.NewQueueTracker(string(processors.DeadLetterTopic(g.Name))))
	}
	ats := []string{"2026-03-01T10:05:00Z", "2026-03-01T11:30:00Z", "2026-03-01T10:20:00Z"} // the last one is late
	for _, at := range ats {
		tt.Consume("clicks", "ann", fmt.Appendf(nil, `{"at":%q}`, at))
	}

	n := 0
	for _, _, _, ok := copies.NextRawWithHeaders(); ok; _, _, _, ok = copies.NextRawWithHeaders() {
		n++
	}
	if n != 3 {
		t.Errorf("the sibling copied %d clicks, want 3", n)
	}
	var late int
	for _, q := range dlqs {
		for {
			h, _, _, ok := q.NextRawWithHeaders()
			if !ok {
				break
			}
			if r := string(h[processors.HeaderErrorReason]); r != "late" {
				t.Errorf("dead letter with reason %q", r)
			}
			late++
		}
	}
	if late != 1 {
		t.Errorf("%d dead letters, want the late click once", late)
	}
	for key, want := range map[string]int64{"ann@2026-03-01T10:00:00Z": 1, "ann@2026-03-01T11:00:00Z": 1} {
		if v, _ := tt.TableValue("clicks-per-hour-table", key).(*processors.Stored); v == nil || v.Value != want {
			t.Errorf("%s = %+v, want %d", key, v, want)
		}
	}

	// The source group forks into the two pipelines; each accounts for
	// every click. The late click counts once as rejected, in the group
	// that decided it was late.
	var rejected int64
	for _, g := range c.Groups {
		tl := g.Runtime.Tally()
		rejected += tl.Rejected()
		if g.Name != "clicks-clicks" {
			if tl.Branches() != nil {
				t.Errorf("group %s has branches %v", g.Name, tl.Branches())
			}
			continue
		}
		inputs := tl.Processed() + tl.Replayed() + tl.Rejected()
		branches := tl.Branches()
		if inputs != 3 || len(branches) != 2 {
			t.Fatalf("source group: %d inputs, branches %v", inputs, branches)
		}
		for name, bc := range branches {
			if bc.Processed+bc.Replayed+bc.Rejected != inputs {
				t.Errorf("branch %s: %+v does not add up to the %d inputs", name, bc, inputs)
			}
		}
		if bc := branches["to-clicks-copy"]; bc.Processed != 3 || bc.Rejected != 0 {
			t.Errorf("the copy: %+v, want 3 processed", bc)
		}
	}
	if rejected != 1 {
		t.Errorf("%d rejections in all groups, want 1", rejected)
	}
}
