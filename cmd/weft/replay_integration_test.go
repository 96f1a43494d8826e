package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weftstream/weft/internal/kafkatest"
)

// TestIntegrationReplayCommands drives weft replay and weft reset on a
// topology that weft run keeps a table of: the plan, a rebuild with
// --verify, the point-in-time read of a key, and a reset refused while the
// live group runs and applied after.
func TestIntegrationReplayCommands(t *testing.T) {
	brokers := strings.Join(kafkatest.Brokers(t), ",")
	topic, app := kafkatest.Topic(t, "payments"), kafkatest.Group(t, "pay")
	dir := t.TempDir()
	file := filepath.Join(dir, "pay.yaml")
	yaml := fmt.Sprintf(`app: %s
streams:
  payments: {topic: %s, codec: json}
pipelines:
  - name: balances
    from: payments
    steps:
      - group_by_key: {}
      - aggregate: {initial: "0", add: "aggregate + value.amount"}
`, app, topic)
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	// 200 payments over 10 accounts: acc-i gets amounts j%5+1 for j ≡ i mod 10.
	var lines []string
	want := map[string]int64{}
	for j := range 200 {
		acc := fmt.Sprintf("acc-%d", j%10)
		want[acc] += int64(j%5 + 1)
		lines = append(lines, fmt.Sprintf(`{"account":%q,"amount":%d}`, acc, j%5+1))
	}
	events := filepath.Join(dir, "payments.jsonl")
	if err := os.WriteFile(events, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	common := []string{"--brokers", brokers, "--log-level", "warn", "--partitions", "4"}
	if out, err := weft(t.Context(), append([]string{"produce", topic, events, "--key-field", "account"}, common...)...); err != nil {
		t.Fatalf("produce: %v\n%s", err, out)
	}

	state := filepath.Join(dir, "state")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := weft(ctx, append([]string{"run", file, "--state-dir", state, "--http-addr", ""}, common...)...)
		done <- err
	}()
	kafkatest.WaitFor(t, time.Minute, "the live table", func() bool {
		out, err := weft(t.Context(), append([]string{"get", app + "-balances", "acc-3"}, common...)...)
		return err == nil && strings.TrimSpace(out) == fmt.Sprint(want["acc-3"])
	})

	into := app + "-v2"
	out, err := weft(t.Context(), append([]string{"replay", file, "--into", into}, common...)...)
	if err != nil || !strings.Contains(out, "records: 200 (left to read: 200)") || !strings.Contains(out, "nothing changed") ||
		!strings.Contains(out, into+"-balances-table") {
		t.Fatalf("replay plan: %v\n%s", err, out)
	}
	if _, err := weft(t.Context(), append([]string{"replay", file, "--into", into, "--pipeline", "nope"}, common...)...); err == nil ||
		!strings.Contains(err.Error(), `--pipeline "nope"`) {
		t.Fatalf("an unknown pipeline: %v", err)
	}
	out, err = weft(t.Context(), append([]string{"replay", file, "--into", into, "--execute", "--verify", "--json",
		"--state-dir", filepath.Join(dir, "replay-state")}, common...)...)
	var summary struct {
		Records int64 `json:"records"`
		Verify  []struct {
			Equal, Different, MissingInRebuilt, MissingInLive int
		} `json:"verify"`
	}
	if err != nil || json.Unmarshal([]byte(out), &summary) != nil {
		t.Fatalf("replay --execute --verify: %v\n%s", err, out)
	}
	if summary.Records != 200 || len(summary.Verify) != 1 || summary.Verify[0].Equal != 10 || summary.Verify[0].Different != 0 {
		t.Fatalf("replay summary %+v, want 200 records and 10 equal keys:\n%s", summary, out)
	}
	out, err = weft(t.Context(), append([]string{"get", into + "-balances", "acc-7"}, common...)...)
	if err != nil || strings.TrimSpace(out) != fmt.Sprint(want["acc-7"]) {
		t.Fatalf("rebuilt acc-7 = %q (%v), want %d", out, err, want["acc-7"])
	}
	out, err = weft(t.Context(), append([]string{"replay", file, "--key", "acc-7", "--until-time", time.Now().Format(time.RFC3339), "--json"}, common...)...)
	var st struct {
		Value   int64 `json:"value"`
		Records []any `json:"records"`
	}
	if err != nil || json.Unmarshal([]byte(out), &st) != nil || st.Value != want["acc-7"] || len(st.Records) != 20 {
		t.Fatalf("replay --key acc-7: %v\n%s", err, out)
	}

	_, err = weft(t.Context(), append([]string{"reset", file, "--execute", "--state-dir", state}, common...)...)
	if err == nil || !strings.Contains(err.Error(), "active members") {
		t.Fatalf("reset while the live group runs: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	kafkatest.WaitFor(t, time.Minute, "the reset to go through", func() bool {
		out, err = weft(t.Context(), append([]string{"reset", file, "--execute", "--state-dir", state}, common...)...)
		return err == nil
	})
	if !strings.Contains(out, "reset 1 groups") {
		t.Fatalf("reset: %s", out)
	}
	if _, err := os.Stat(filepath.Join(state, "processors", app+"-balances")); !os.IsNotExist(err) {
		t.Fatalf("the local state is still there: %v", err)
	}
}
