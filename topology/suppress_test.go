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

// Suppress until window close: hourly order counts with 10 minutes of
// grace come out once per window, with the final count, when stream time
// passes the window's end plus grace; emitted windows are remembered for a
// window length, then purged from the buffer.
func TestSuppressUntilWindowClose(t *testing.T) {
	b := topology.New("shop")
	at := func(_ string, v any) (time.Time, error) {
		s, _ := field(v, "at").(string)
		return time.Parse(time.RFC3339, s)
	}
	b.Stream("orders", topology.JSON{}, topology.WithTimestampExtractor(at)).
		GroupByKey().WindowedBy("hourly", topology.Tumbling(time.Hour, 10*time.Minute)).
		Count("orders-per-hour").
		SuppressUntilWindowClose("hourly-final").To("final-counts", topology.JSON{})
	c := mustCompile(t, b)
	tt := runOnTester(t, c)
	out := tt.NewQueueTracker("final-counts")
	late := tt.NewQueueTracker(string(processors.DeadLetterTopic("shop-orders-per-hour")))
	order := func(user, at string) {
		tt.Consume("orders", user, fmt.Appendf(nil, `{"at":%q}`, at))
	}
	expect := func(step string, want ...string) {
		t.Helper()
		var got []string
		for {
			_, k, v, ok := out.NextRawWithHeaders()
			if !ok {
				break
			}
			got = append(got, k+"="+string(v))
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%s: emitted %v, want %v", step, got, want)
		}
	}
	buffered := func(key string) *processors.WindowState {
		v := tt.TableValue("shop-hourly-final-table", key)
		if v == nil {
			return nil
		}
		return v.(*processors.Stored).Value.(*processors.WindowState)
	}

	order("ann", "2026-03-01T10:05:00Z")
	order("ann", "2026-03-01T10:30:00Z")
	order("bob", "2026-03-01T10:40:00Z")
	order("ann", "2026-03-01T11:05:00Z")
	order("bob", "2026-03-01T11:09:59Z")
	expect("before the 10:00 windows close (11:10)")
	order("ann", "2026-03-01T10:50:00Z") // in grace: counted
	expect("an update in grace")
	order("carl", "2026-03-01T11:15:00Z") // stream time passes 11:10
	expect("after 11:10", "ann@2026-03-01T10:00:00Z=3", "bob@2026-03-01T10:00:00Z=1")
	if ws := buffered("ann@2026-03-01T10:00:00Z"); ws == nil || !ws.Emitted || ws.Value != nil {
		t.Fatalf("ann's 10:00 window after its close: %+v, want an emitted marker", ws)
	}
	order("dan", "2026-03-01T10:20:00Z") // late: its window closed
	expect("a late order")
	// The aggregation decides lateness, for the window.
	if h, k, _, ok := late.NextRawWithHeaders(); !ok || k != "dan@2026-03-01T10:00:00Z" || string(h[processors.HeaderErrorReason]) != "late" {
		t.Fatalf("late order: dead letter %q (%v, %q), want dan's 10:00 window, late", k, ok, h[processors.HeaderErrorReason])
	}
	order("eve", "2026-03-01T12:30:00Z") // closes 11:00 (12:10), purges 10:00 (12:10)
	expect("after 12:10", "ann@2026-03-01T11:00:00Z=1", "bob@2026-03-01T11:00:00Z=1", "carl@2026-03-01T11:00:00Z=1")
	if ws := buffered("ann@2026-03-01T10:00:00Z"); ws != nil {
		t.Fatalf("ann's 10:00 marker after its retention: %+v", ws)
	}
	if ws := buffered("eve@2026-03-01T12:00:00Z"); ws == nil || ws.Emitted || ws.Value != int64(1) ||
		!ws.Close.Equal(time.Date(2026, 3, 1, 13, 10, 0, 0, time.UTC)) {
		t.Fatalf("eve's open window: %+v", ws)
	}
	// The window table itself keeps every window.
	if v := tt.TableValue("shop-orders-per-hour-table", "ann@2026-03-01T10:00:00Z"); v == nil || v.(*processors.Stored).Value != int64(3) {
		t.Fatalf("window table: ann@10:00 = %v", v)
	}
}

// A close that reaches the suppressor before stream time reached the
// window's close (requested before a crash by a stream time the partition
// has not seen again) does not close the window early; it closes when
// stream time gets there.
func TestSuppressUntilWindowCloseIgnoresEarlyClose(t *testing.T) {
	b := topology.New("shop")
	at := func(_ string, v any) (time.Time, error) {
		s, _ := field(v, "at").(string)
		return time.Parse(time.RFC3339, s)
	}
	b.Stream("orders", topology.JSON{}, topology.WithTimestampExtractor(at)).
		GroupByKey().WindowedBy("hourly", topology.Tumbling(time.Hour, 0)).
		Count("orders-per-hour").
		SuppressUntilWindowClose("hourly-final").To("final-counts", topology.JSON{})
	tt := runOnTester(t, mustCompile(t, b))
	out := tt.NewQueueTracker("final-counts")
	order := func(user, at string) { tt.Consume("orders", user, fmt.Appendf(nil, `{"at":%q}`, at)) }
	emitted := func() []string {
		var got []string
		for {
			_, k, v, ok := out.NextRawWithHeaders()
			if !ok {
				return got
			}
			got = append(got, k+"="+string(v))
		}
	}
	order("ann", "2026-03-01T10:05:00Z")
	tt.Consume("shop-hourly-final-loop", "ann@2026-03-01T10:00:00Z", []byte("close"))
	order("ann", "2026-03-01T10:30:00Z")
	if got := emitted(); len(got) != 0 {
		t.Fatalf("emitted %v before the window closed", got)
	}
	order("bob", "2026-03-01T11:00:00Z")
	if got := fmt.Sprint(emitted()); got != "[ann@2026-03-01T10:00:00Z=2]" {
		t.Fatalf("emitted %s, want ann's window with 2 orders", got)
	}
}

// Suppressing until window close needs a windowed table.
func TestSuppressUntilWindowCloseNeedsWindows(t *testing.T) {
	b := topology.New("shop")
	b.Stream("orders", topology.JSON{}).GroupByKey().Count("orders").
		SuppressUntilWindowClose("final").To("final", topology.JSON{})
	_, err := b.Build()
	if err == nil || err.Error() != `suppress "final" until window close needs a windowed table (orders is not windowed)` {
		t.Fatalf("err = %v", err)
	}
}

// The suppressor closes each window by the stream time the updates of its
// own upstream partition carry (weft.stream.time), whatever other
// partitions' clocks say; it buffers what the aggregation applied even
// when the update's stream time is past the window's close (then the
// window closes at once), and a redelivered update moves no clock.
func TestSuppressClosesByTheClockOfTheWindowsPartition(t *testing.T) {
	b := topology.New("shop")
	b.Stream("orders", topology.JSON{}).GroupByKey().
		WindowedBy("hourly", topology.Tumbling(time.Hour, 10*time.Minute)).
		Aggregate("sums", func() any { return int64(0) }, func(_ string, _, agg any) (any, error) { return agg, nil }, topology.JSON{}).
		SuppressUntilWindowClose("final").To("finals", topology.JSON{})
	tt := runOnTester(t, mustCompile(t, b))
	out := tt.NewQueueTracker("finals")
	dlq := tt.NewQueueTracker(string(processors.DeadLetterTopic("shop-final")))
	offsets := map[int]int{}
	update := func(part int, window, value, streamTime string) {
		t.Helper()
		st, err := time.Parse(time.RFC3339, streamTime)
		if err != nil {
			t.Fatal(err)
		}
		tt.Consume("shop-final-repartition", window, []byte(value), tester.WithHeaders(goka.Headers{
			processors.HeaderFrom:       fmt.Appendf(nil, "shop-sums-repartition/%d/%d/0", part, offsets[part]),
			processors.HeaderStreamTime: strconv.AppendInt(nil, st.UnixMilli(), 10),
		}))
		offsets[part]++
	}
	emitted := func() string {
		var got []string
		for _, k, v, ok := out.NextRawWithHeaders(); ok; _, k, v, ok = out.NextRawWithHeaders() {
			got = append(got, k+"="+string(v))
		}
		return fmt.Sprint(got)
	}

	update(0, "ann@2026-03-01T10:00:00Z", "1", "2026-03-01T10:05:00Z")
	update(1, "bob@2026-03-01T10:00:00Z", "5", "2026-03-01T10:30:00Z")
	update(0, "ann@2026-03-01T10:00:00Z", "2", "2026-03-01T10:40:00Z")
	update(1, "bob@2026-03-01T11:00:00Z", "7", "2026-03-01T11:20:00Z") // partition 1 passes 11:10
	if got := emitted(); got != "[bob@2026-03-01T10:00:00Z=5]" {
		t.Fatalf("after partition 1 passed 11:10: emitted %s, want bob's 10:00 window only", got)
	}
	// A redelivery of partition 0's first update (offset 0) changes
	// nothing, and its stream time moves no clock.
	offsets[0] = 0
	update(0, "ann@2026-03-01T10:00:00Z", "1", "2026-03-01T12:00:00Z")
	offsets[0] = 3
	if got := emitted(); got != "[]" {
		t.Fatalf("after a redelivery: emitted %s", got)
	}
	update(0, "ann@2026-03-01T10:00:00Z", "3", "2026-03-01T11:09:00Z") // still open on partition 0
	update(0, "cid@2026-03-01T09:00:00Z", "4", "2026-03-01T11:15:00Z") // past its close: buffered, then emitted
	if got := emitted(); got != "[cid@2026-03-01T09:00:00Z=4 ann@2026-03-01T10:00:00Z=3]" {
		t.Fatalf("after partition 0 passed 11:10: emitted %s", got)
	}
	if _, k, _, ok := dlq.NextRawWithHeaders(); ok {
		t.Errorf("the suppressor dead-lettered %s", k)
	}
}
