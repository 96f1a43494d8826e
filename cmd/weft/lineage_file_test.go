package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weftstream/weft/internal/kafkatest"
)

// A topology file's lineage: {versions, retention} reaches the stores and
// the query API of weft run: with versions: 2, the lineage of a key
// counted six times is versions 6 and 5 (the index holds 2 to 3 versions
// once committed, and the writes not committed yet besides); an
// as_of older than the retention of 7 days answers 422 and names the
// replay command with the file.
func TestIntegrationRunTopologyFileLineage(t *testing.T) {
	brokers := strings.Join(kafkatest.Brokers(t), ",")
	input := kafkatest.Topic(t, "orders")
	app := strings.ToLower(strings.ReplaceAll(kafkatest.Group(t, "lin"), "_", "-"))
	file := filepath.Join(t.TempDir(), "lin.yaml")
	yaml := fmt.Sprintf(`app: %s
lineage: {versions: 2, retention: 7d}
cache_max_bytes: 0
streams:
  orders: {topic: %s, codec: json}
pipelines:
  - name: per-customer
    from: orders
    steps:
      - group_by_key: {}
      - count: {}
`, app, input)
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	common := []string{"--brokers", brokers, "--log-level", "warn", "--partitions", "2"}
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := weft(ctx, append([]string{"run", file, "--state-dir", t.TempDir(), "--http-addr", addr}, common...)...)
		done <- err
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	orders := filepath.Join(t.TempDir(), "orders.jsonl")
	if err := os.WriteFile(orders, []byte(strings.Repeat(`{"customer":"c1","amount":5}`+"\n", 6)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := weft(t.Context(), append([]string{"produce", input, orders, "--key-field", "customer"}, common...)...); err != nil {
		t.Fatalf("produce: %v\n%s", err, out)
	}
	table := app + "-per-customer"
	var lin struct {
		Versions []struct {
			Version uint64          `json:"version"`
			Value   json.RawMessage `json:"value"`
		} `json:"versions"`
	}
	kafkatest.WaitFor(t, 2*time.Minute, "c1 counted six times", func() bool {
		select {
		case err := <-done:
			t.Fatalf("run stopped: %v", err)
		default:
		}
		resp, err := http.Get("http://" + addr + "/tables/" + table + "/c1/lineage")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		lin.Versions = nil
		return resp.StatusCode == 200 && json.NewDecoder(resp.Body).Decode(&lin) == nil && len(lin.Versions) == 2 && lin.Versions[0].Version == 6
	})
	if len(lin.Versions) != 2 || lin.Versions[1].Version != 5 || string(lin.Versions[0].Value) != "6" {
		t.Fatalf("lineage of c1: %+v, want versions 6 and 5 (lineage.versions: 2)", lin.Versions)
	}
	old := time.Now().Add(-8 * 24 * time.Hour).UTC().Format(time.RFC3339)
	resp, err := http.Get("http://" + addr + "/tables/" + table + "/c1?as_of=" + url.QueryEscape(old))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p struct {
		Replay string `json:"replay"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil || resp.StatusCode != 422 ||
		p.Replay != fmt.Sprintf("weft replay %s --key c1 --until-time %s", file, old) {
		t.Fatalf("as_of 8 days ago: %d %+v %v, want 422 naming weft replay %s", resp.StatusCode, p, err, file)
	}
}
