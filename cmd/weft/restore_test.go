package main

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lovoo/goka"
	"github.com/weftstream/weft/internal/kafkatest"
)

// A restored table holds the values of the topic, logs no progress with
// --progress-interval 0, and Close removes it (how its progress is counted:
// processors' TestIntegrationViewRestoreProgress).
func TestIntegrationRestoreTable(t *testing.T) {
	bl := kafkatest.Brokers(t)
	topic := kafkatest.Topic(t, "restore") + "-table"
	kafkatest.CreateTopic(t, bl, topic, 4)
	const n = 1000
	var lines strings.Builder
	for i := range n {
		fmt.Fprintf(&lines, "{\"key\":\"k%d\",\"value\":{\"n\":%d}}\n", i%300, i)
	}
	file := filepath.Join(t.TempDir(), "records.jsonl")
	if err := os.WriteFile(file, []byte(lines.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	common := []string{"--brokers", strings.Join(bl, ","), "--log-level", "error"}
	if out, err := weft(t.Context(), append([]string{"produce", topic, file}, common...)...); err != nil {
		t.Fatalf("produce: %v\n%s", err, out)
	}

	g := &globalFlags{brokers: bl, clientID: "weft", startOffset: "earliest", partitions: 4, replication: -1}
	k, err := g.clientKafka()
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	rt, err := restoreTable(t.Context(), log, k, goka.Table(topic), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	// k7 was last written by line 907 (7 + 3*300).
	v, err := rt.Get("k7")
	if err != nil || string(v) != `{"n":907}` {
		t.Fatalf("k7 = %s, %v; want {\"n\":907}", v, err)
	}
	if logs.Len() > 0 {
		t.Errorf("progress lines with --progress-interval 0: %s", logs.String())
	}
	dir := rt.dir
	if err := rt.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("the restored copy %s is still there: %v", dir, err)
	}
}
