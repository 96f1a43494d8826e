package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weftstream/weft/internal/kafkatest"
)

// weft produce takes the event time from a field, keeps non-string header
// values as JSON text, and reports a line it cannot send with its number.
func TestIntegrationProduceLines(t *testing.T) {
	bl := kafkatest.Brokers(t)
	common := []string{"--brokers", strings.Join(bl, ","), "--log-level", "error"}
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}

	topic := kafkatest.Topic(t, "produce-ts")
	kafkatest.CreateTopic(t, bl, topic, 1)
	file := write("ts.jsonl", `{"key":"a","value":{"at":"2026-01-02T03:04:05Z","n":1},"headers":{"n":1,"ok":true,"s":"x"}}
{"key":"b","value":{"at":1767323045000}}
`)
	if out, err := weft(t.Context(), append([]string{"produce", topic, file, "--timestamp-field", "at"}, common...)...); err != nil {
		t.Fatalf("produce: %v\n%s", err, out)
	}
	out, err := weft(t.Context(), append([]string{"consume", topic}, common...)...)
	if err != nil {
		t.Fatal(err)
	}
	var recs []struct {
		Key     string            `json:"key"`
		Headers map[string]string `json:"headers"`
	}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var r struct {
			Key     string            `json:"key"`
			Headers map[string]string `json:"headers"`
		}
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	// 2026-01-02T03:04:05Z is 1767323045000 ms after the epoch.
	if len(recs) != 2 || recs[0].Headers["weft.event.time"] != "1767323045000" || recs[1].Headers["weft.event.time"] != "1767323045000" {
		t.Fatalf("event times: %+v", recs)
	}
	if h := recs[0].Headers; h["n"] != "1" || h["ok"] != "true" || h["s"] != "x" {
		t.Fatalf("headers of a: %v, want n=1 ok=true s=x", h)
	}

	// A record over --max-message-bytes: stop at its line, or skip it.
	big := write("big.jsonl", `{"key":"a","value":"small"}
{"key":"b","value":"`+strings.Repeat("x", 200)+`"}
{"key":"c","value":"small"}
`)
	stopTopic := kafkatest.Topic(t, "produce-stop")
	_, err = weft(t.Context(), append([]string{"produce", stopTopic, big, "--max-message-bytes", "100"}, common...)...)
	if err == nil || !strings.Contains(err.Error(), "line 2:") || !strings.Contains(err.Error(), "produced 1 records before it") {
		t.Fatalf("oversized line, stop: %v", err)
	}
	skipTopic := kafkatest.Topic(t, "produce-skip")
	out, err = weft(t.Context(), append([]string{"produce", skipTopic, big, "--max-message-bytes", "100", "--on-error", "skip"}, common...)...)
	if err != nil || !strings.Contains(out, "produced 2 records") || !strings.Contains(out, "1 lines skipped") {
		t.Fatalf("oversized line, skip: %v\n%s", err, out)
	}

	// Topic names Kafka refuses are usage errors before anything is sent.
	for _, name := range []string{"bad topic", ""} {
		_, err := weft(t.Context(), append([]string{"produce", name, big}, common...)...)
		var ue *usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), "not a valid Kafka topic name") {
			t.Errorf("topic %q: %v, want a usage error", name, err)
		}
	}
}
