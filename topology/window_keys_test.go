package topology_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/weftstream/weft/processors"
	"github.com/weftstream/weft/topology"
)

// Two clicks 500 ms apart fall into two 500 ms windows: each window has a
// key of its own (the start with its fraction of a second) and a count of
// one. Whole-second window starts keep their old keys.
func TestSubSecondWindowsHaveTheirOwnKeys(t *testing.T) {
	b := topology.New("clicks")
	b.Stream("clicks", topology.JSON{}, topology.WithTimestampExtractor(func(_ string, v any) (time.Time, error) {
		return time.Parse(time.RFC3339Nano, field(v, "at").(string))
	})).GroupByKey().WindowedBy("half-seconds", topology.Tumbling(500*time.Millisecond, 0)).Count("per-half-second")
	tt := runOnTester(t, mustCompile(t, b))
	for _, at := range []string{"2026-03-01T10:00:00Z", "2026-03-01T10:00:00.5Z"} {
		tt.Consume("clicks", "ann", fmt.Appendf(nil, `{"at":%q}`, at))
	}
	for _, key := range []string{"ann@2026-03-01T10:00:00Z", "ann@2026-03-01T10:00:00.5Z"} {
		v, _ := tt.TableValue("clicks-per-half-second-table", key).(*processors.Stored)
		if v == nil || v.Value != int64(1) {
			t.Errorf("count of %s = %+v, want 1", key, v)
		}
	}
}

func TestWindowKeys(t *testing.T) {
	cases := []struct {
		start time.Time
		key   string
	}{
		{time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC), "k@2026-03-01T10:00:00Z"},
		{time.Date(2026, 3, 1, 10, 0, 0, 500e6, time.UTC), "k@2026-03-01T10:00:00.5Z"},
		{time.Date(2026, 3, 1, 10, 0, 0, 1, time.UTC), "k@2026-03-01T10:00:00.000000001Z"},
		{time.Date(2026, 3, 1, 11, 0, 0, 250e6, time.FixedZone("CET", 3600)), "k@2026-03-01T10:00:00.25Z"},
	}
	for _, c := range cases {
		if got := topology.WindowKey("k", c.start); got != c.key {
			t.Errorf("WindowKey(%s) = %s, want %s", c.start, got, c.key)
		}
		got, err := topology.WindowStart(c.key)
		if err != nil || !got.Equal(c.start) {
			t.Errorf("WindowStart(%s) = %s, %v; want %s", c.key, got, err, c.start)
		}
	}
	// Keys written before fractions were kept, and keys whose own part
	// has an @.
	if got, err := topology.WindowStart("a@b@2026-03-01T10:00:00Z"); err != nil || !got.Equal(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("WindowStart of an old key = %s, %v", got, err)
	}
	for _, bad := range []string{"no-window", "k@yesterday", "k@2026-03-01T10:00:00"} {
		if _, err := topology.WindowStart(bad); err == nil || !strings.Contains(err.Error(), "not a window key") {
			t.Errorf("WindowStart(%q): %v, want not a window key", bad, err)
		}
	}
}

// The Go DSL checks windows as the file loader does.
func TestWindowedByChecksWindows(t *testing.T) {
	for _, c := range []struct {
		w    topology.Windows
		want string
	}{
		{topology.Tumbling(0, 0), `window "w": size and advance must be positive (size 0s, advance 0s)`},
		{topology.Hopping(time.Minute, 2*time.Minute, 0), `window "w": windows cannot advance (2m0s) by more than their size (1m0s)`},
		{topology.Hopping(time.Hour, 25*time.Minute, 0), `window "w": the size (1h0m0s) must be a multiple of advance (25m0s)`},
		{topology.Tumbling(time.Hour, -time.Second), `window "w": negative grace -1s`},
	} {
		b := topology.New("app")
		b.Stream("in", topology.JSON{}).GroupByKey().WindowedBy("w", c.w).Count("n")
		if _, err := b.Build(); err == nil || err.Error() != c.want {
			t.Errorf("%+v: %v, want %s", c.w, err, c.want)
		}
	}
}
