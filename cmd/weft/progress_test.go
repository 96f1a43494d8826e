package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// Without a terminal, progress is a log line every interval with the
// counts, rate and ETA; nothing before the first interval is over.
func TestProgressLinesWithoutTerminal(t *testing.T) {
	var buf bytes.Buffer
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	p := &progressReport{what: "produce", unit: "bytes", log: slog.New(slog.NewJSONHandler(&buf, nil)),
		every: 10 * time.Second, now: func() time.Time { return now }, start: now}
	at := func(d time.Duration, done, total int64) {
		now = p.start.Add(d)
		p.update(done, total)
	}
	at(time.Second, 100, 1000)
	at(9*time.Second, 400, 1000)
	at(10*time.Second, 500, 1000) // 50 bytes/s, 500 to go: 10 s
	at(15*time.Second, 700, 1000)
	at(20*time.Second, 1000, 1000) // done: no ETA
	at(30*time.Second, 1200, 0)    // unknown total: no percent
	p.finish()

	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not JSON: %q", l)
		}
		delete(m, "time")
		lines = append(lines, m)
	}
	want := []map[string]any{
		{"level": "INFO", "msg": "produce progress", "bytes": 500.0, "total_bytes": 1000.0, "percent": 50.0,
			"bytes_per_second": 50.0, "elapsed": "10s", "eta": "10s"},
		{"level": "INFO", "msg": "produce progress", "bytes": 1000.0, "total_bytes": 1000.0, "percent": 100.0,
			"bytes_per_second": 50.0, "elapsed": "20s"},
		{"level": "INFO", "msg": "produce progress", "bytes": 1200.0, "bytes_per_second": 40.0, "elapsed": "30s"},
	}
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(want), buf.String())
	}
	for i := range want {
		if !equalJSON(lines[i], want[i]) {
			t.Errorf("line %d: %v\nwant %v", i+1, lines[i], want[i])
		}
	}
}

// Work that ends within the first interval, or with the lines turned off,
// prints nothing.
func TestProgressQuietForShortWork(t *testing.T) {
	for _, every := range []time.Duration{time.Minute, 0} {
		var buf bytes.Buffer
		now := time.Now()
		p := &progressReport{what: "restore", unit: "offsets", log: slog.New(slog.NewTextHandler(&buf, nil)),
			every: every, now: func() time.Time { return now }, start: now}
		for i := range 50 {
			now = now.Add(time.Second)
			p.update(int64(i), 50)
		}
		stop := p.follow(func() (int64, int64) { return 50, 50 })
		stop()
		stop() // idempotent
		if buf.Len() > 0 {
			t.Errorf("every %v: printed %q", every, buf.String())
		}
	}
}

func equalJSON(a, b map[string]any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}
