package topofile

import (
	"strings"
	"testing"
	"time"
)

// Event-time expressions (wantTime, evalTime): a timestamp, an int
// (milliseconds since the Unix epoch) or an RFC 3339 string, as a time in
// UTC.
func TestCELEvalTime(t *testing.T) {
	// 2026-01-02T03:04:05.123Z is 1767323045123 ms after the epoch.
	at := time.Date(2026, 1, 2, 3, 4, 5, 123_000_000, time.UTC)
	value := map[string]any{
		"ms":     int64(1767323045123),
		"at":     "2026-01-02T03:04:05.123Z",
		"offset": "2026-01-02T05:04:05.123+02:00",
		"nanos":  "2026-01-02T03:04:05.123456789Z",
		"whole":  "2026-01-02T03:04:05Z",
		"nested": map[string]any{"ts": int64(-1000)},
	}
	for _, c := range []struct {
		expr  string
		key   string
		value any
		want  time.Time
	}{
		{expr: "timestamp('2026-01-02T03:04:05.123Z')", want: at},
		{expr: "timestamp(value.at)", value: value, want: at},
		{expr: "timestamp(value.offset)", value: value, want: at},
		{expr: "timestamp(value.whole) + duration('123ms')", value: value, want: at},
		{expr: "value.ms", value: value, want: at},
		{expr: "int(value.ms) - 123", value: value, want: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
		{expr: "1767323045123", want: at},
		{expr: "0", want: time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)},
		{expr: "value.nested.ts", value: value, want: time.Date(1969, 12, 31, 23, 59, 59, 0, time.UTC)},
		{expr: "value.at", value: value, want: at},
		{expr: "value.offset", value: value, want: at},
		{expr: "value.nanos", value: value, want: time.Date(2026, 1, 2, 3, 4, 5, 123_456_789, time.UTC)},
		{expr: "'2026-01-02T03:04:05.123Z'", want: at},
		{expr: "key", key: "2026-01-02T03:04:05Z", want: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
		{expr: "value", value: "2026-01-02T04:04:05.123+01:00", want: at},
		{expr: "value", value: int64(1767323045123), want: at},
		{expr: "has(value.ms) ? value.ms : value.at", value: map[string]any{"at": "2026-01-02T03:04:05.123Z"}, want: at},
	} {
		x, issues := compileCEL(c.expr, varsRecord, wantTime)
		if len(issues) > 0 {
			t.Errorf("%s: %v", c.expr, issues)
			continue
		}
		got, err := x.evalTime(c.key, c.value)
		if err != nil {
			t.Errorf("%s: %v", c.expr, err)
			continue
		}
		if !got.Equal(c.want) || got.Location() != time.UTC {
			t.Errorf("%s = %v, want %v (UTC)", c.expr, got, c.want)
		}
	}
}

// A result that cannot be a time is refused when the file is loaded if its
// type says so, when the record is evaluated otherwise.
func TestCELEvalTimeErrors(t *testing.T) {
	for _, c := range []struct{ expr, want string }{
		{"true", "the expression must return a timestamp, an int (milliseconds since the Unix epoch) or an RFC 3339 string, not bool"},
		{"value.ms > 0", "not bool"},
		{"1.5", "not double"},
		{"1u", "not uint"},
		{"[1]", "not list(int)"},
		{"{'at': 1}", "not map(string, int)"},
		{"duration('1s')", "not google.protobuf.Duration"},
	} {
		_, issues := compileCEL(c.expr, varsRecord, wantTime)
		if len(issues) != 1 || !strings.Contains(issues[0].msg, c.want) {
			t.Errorf("%s: issues %v, want one with %q", c.expr, issues, c.want)
		}
	}

	value := map[string]any{
		"bad": "yesterday", "local": "2026-01-02T03:04:05", "date": "2026-01-02",
		"flag": true, "f": 1.5, "list": []any{int64(1)},
	}
	for _, c := range []struct{ expr, want string }{
		{"value.bad", `CEL "value.bad": returned "yesterday", not an RFC 3339 time`},
		{"value.local", `returned "2026-01-02T03:04:05", not an RFC 3339 time`},
		{"value.date", `returned "2026-01-02", not an RFC 3339 time`},
		{"value.flag", `CEL "value.flag": returned a bool, not a timestamp, int or string`},
		{"value.f", "returned a double, not a timestamp, int or string"},
		{"value.list", "returned a list, not a timestamp, int or string"},
		{"value.missing", "no such key: missing"},
		{"timestamp(value.bad)", "yesterday"},
		{"has(value.at) ? value.at : reject('no event time')", "rejected: no event time"},
	} {
		x, issues := compileCEL(c.expr, varsRecord, wantTime)
		if len(issues) > 0 {
			t.Errorf("%s: %v", c.expr, issues)
			continue
		}
		got, err := x.evalTime("k", value)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, %v; want an error with %q", c.expr, got, err, c.want)
		}
	}
}
