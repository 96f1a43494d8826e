package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weftstream/weft/internal/kafkatest"
)

// weft validate --brokers checks the topics that exist: a table join whose
// external table has another partition count than the table it joins is
// reported at the join_table step; weft run refuses to start on it.
func TestIntegrationValidatePartitions(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	app := kafkatest.Topic(t, "app")
	crm := kafkatest.Topic(t, "crm")
	payments := kafkatest.Topic(t, "payments")
	file := filepath.Join(t.TempDir(), "join.yaml")
	src, err := os.ReadFile(filepath.Join("..", "..", "testdata", "topologies", "join-crm.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	data := strings.NewReplacer("app: bank", "app: "+app, "topic: crm-table", "topic: "+crm,
		"topic: payments", "topic: "+payments).Replace(string(src))
	if err := os.WriteFile(file, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	b := strings.Join(brokers, ",")

	// Nothing exists yet: every topic will be created with 3 partitions.
	out, err := weft(t.Context(), "validate", "--brokers", b, "--partitions", "3", file)
	if err != nil || !strings.Contains(out, file+": ok (2 pipelines, 3 groups)") {
		t.Fatalf("validate before the topics exist: %v\n%s", err, out)
	}
	kafkatest.CreateTopic(t, brokers, crm, 2)
	want := file + ":17:9: join_table: the tables are not co-partitioned: " + app + "-counts-table (3 partitions), " + crm + " (2 partitions)"
	out, err = weft(t.Context(), "validate", "--brokers", b, "--partitions", "3", file)
	if err == nil || !strings.Contains(out, want) {
		t.Fatalf("validate with %s on 2 partitions: %v\n%s\nwant %s", crm, err, out, want)
	}
	// Without brokers validate does not look at topics.
	if out, err := weft(t.Context(), "validate", file); err != nil {
		t.Fatalf("validate without brokers: %v\n%s", err, out)
	}
	out, err = weft(t.Context(), "run", "--brokers", b, "--partitions", "3", "--state-dir", t.TempDir(), "--log-level", "warn", file)
	if err == nil || !strings.Contains(err.Error()+out, want) {
		t.Fatalf("run: %v\n%s\nwant %s", err, out, want)
	}
}
