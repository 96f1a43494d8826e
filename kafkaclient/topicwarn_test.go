package kafkaclient

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/weftstream/weft/internal/kafkatest"
)

// A topic configured otherwise than weft asks (here: 1 partition, 2
// asked, with an explicit replication factor, so goka checks) is a warning
// through the configured slog logger, not goka's plain-text logger, and
// not an error.
func TestIntegrationTopicMismatchWarnsThroughSlog(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.Topic(t, "mismatch") + "-table"
	kafkatest.CreateTopic(t, brokers, topic, 1)
	var buf bytes.Buffer
	c := Config{Brokers: brokers, Partitions: 2, ReplicationFactor: 1, Logger: slog.New(slog.NewJSONHandler(&buf, nil))}
	sc, err := c.Sarama(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.EnsureTable(sc, topic); err != nil {
		t.Fatalf("EnsureTable: %v, want a warning only", err)
	}
	var warned bool
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not JSON: %q", l)
		}
		if m["level"] == "WARN" && m["topic"] == topic &&
			strings.HasPrefix(m["mismatch"].(string), "partition count mismatch for topic '"+topic+"'. Need 2, but existing topic has 1") {
			warned = true
		}
	}
	if !warned {
		t.Fatalf("no warning about the partition count in:\n%s", buf.String())
	}
}
