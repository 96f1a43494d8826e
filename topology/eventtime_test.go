package topology_test

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/weftstream/weft/processors"
	"github.com/weftstream/weft/topology"
)

// Event time comes from the extractor, not from the record timestamps, and
// survives a repartition and a table: clicks (keyed by click id, time in
// the value) are re-keyed by user into a "last click" table whose updates
// are counted per user and hour. The tester stamps every record with the
// time it is produced, so hours computed from record timestamps would all
// be the hour of the test run.
func TestEventTimeExtractorSurvivesRepartition(t *testing.T) {
	b := topology.New("clicks")
	at := func(_ string, v any) (time.Time, error) {
		s, _ := field(v, "at").(string)
		return time.Parse(time.RFC3339, s)
	}
	clicks := b.Stream("clicks", topology.JSON{}, topology.WithTimestampExtractor(at))
	clicks.To("clicks-copy", topology.JSON{})
	clicks.GroupBy("by-user", func(_ string, v any) (string, error) {
		u, _ := field(v, "user").(string)
		return u, nil
	}).Reduce("last-click", func(_ string, _, v any) (any, error) { return v, nil }, topology.JSON{}).
		ToStream().GroupByKey().WindowedBy("hourly", topology.Tumbling(time.Hour, 0)).Count("clicks-per-hour")
	c := mustCompile(t, b)
	tt := runOnTester(t, c)
	copies := tt.NewQueueTracker("clicks-copy")
	dlq := tt.NewQueueTracker(string(processors.DeadLetterTopic("clicks-clicks")))

	inputs := []struct{ id, user, at string }{
		{"k1", "ann", "2026-03-01T10:05:00Z"},
		{"k2", "ann", "2026-03-01T10:59:59Z"},
		{"k3", "bob", "2026-03-01T10:30:00Z"},
		{"k4", "ann", "2026-03-01T11:00:00Z"},
		{"k5", "bob", "2026-03-01T12:10:00Z"},
	}
	for _, in := range inputs {
		tt.Consume("clicks", in.id, fmt.Appendf(nil, `{"user":%q,"at":%q}`, in.user, in.at))
	}
	// A click without a time goes to the dead-letter topic.
	tt.Consume("clicks", "k6", []byte(`{"user":"ann"}`))

	want := map[string]int64{
		"ann@2026-03-01T10:00:00Z": 2,
		"ann@2026-03-01T11:00:00Z": 1,
		"bob@2026-03-01T10:00:00Z": 1,
		"bob@2026-03-01T12:00:00Z": 1,
	}
	for key, n := range want {
		v := tt.TableValue("clicks-clicks-per-hour-table", key)
		st, ok := v.(*processors.Stored)
		if !ok || st.Value != n {
			t.Errorf("count of %s = %v, want %d", key, v, n)
		}
	}
	// The output records carry the extracted time in weft.event.time.
	for i, in := range inputs {
		h, key, _, ok := copies.NextRawWithHeaders()
		if !ok {
			t.Fatalf("copy %d missing", i)
		}
		ts, _ := time.Parse(time.RFC3339, in.at)
		if key != in.id || string(h[processors.HeaderEventTime]) != strconv.FormatInt(ts.UnixMilli(), 10) {
			t.Errorf("copy %d: key %s, %s=%q, want %s and %d", i, key, processors.HeaderEventTime, h[processors.HeaderEventTime], in.id, ts.UnixMilli())
		}
	}
	if _, key, _, ok := dlq.NextRawWithHeaders(); !ok || key != "k6" {
		t.Errorf("dead letter: key %q, found %v; want k6", key, ok)
	}
	// The envelope's event time is the extracted one.
	v := tt.TableValue("clicks-last-click-table", "bob")
	if st, ok := v.(*processors.Stored); !ok || !st.Meta.EventTime.Equal(time.Date(2026, 3, 1, 12, 10, 0, 0, time.UTC)) {
		t.Errorf("event time of bob's last click: %+v", v)
	}
}
