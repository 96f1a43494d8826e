package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/weftstream/weft/internal/kafkatest"
)

// weft runs the command line in-process and returns its output.
func weft(ctx context.Context, args ...string) (string, error) {
	var out bytes.Buffer
	root := newRootCommand()
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&out)
	err := root.ExecuteContext(ctx)
	return out.String(), err
}

var bankData = filepath.Join("..", "..", "testdata", "bank")

func TestDemo(t *testing.T) {
	out, err := weft(t.Context(), "demo", "--exit", "--embedded-addr", "127.0.0.1:0", "--log-level", "warn",
		"--events", filepath.Join(bankData, "events.jsonl"))
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	for _, want := range []string{"produced 5006 account events", "projected 5006 events", "acc-0001  Alice Smith", "all 300 accounts match", "BALANCE (CENTS)"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	// One unit for balances: cents, as 'weft get' prints them
	// (testdata/bank/expected.jsonl).
	if !regexp.MustCompile(`acc-0001\s+Alice Smith\s+342298\s+open\s+6\n`).MatchString(out) {
		t.Errorf("demo output lacks acc-0001's balance in cents, 342298:\n%s", out)
	}
}

func TestIntegrationRunProduceGet(t *testing.T) {
	brokers := strings.Join(kafkatest.Brokers(t), ",")
	input, group := kafkatest.Topic(t, "bank-events"), kafkatest.Group(t, "bank")
	state := t.TempDir()
	common := []string{"--brokers", brokers, "--log-level", "warn", "--partitions", "4"}

	out, err := weft(t.Context(), append([]string{"produce", input, filepath.Join(bankData, "events.jsonl"), "--key-field", "account"}, common...)...)
	if err != nil || !strings.Contains(out, "produced 5006 records") {
		t.Fatalf("produce: %v\n%s", err, out)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		// One table version per event (explain below): no record cache.
		_, err := weft(ctx, append([]string{"run", "--input", input, "--group", group, "--state-dir", state, "--cache-max-bytes", "0"}, common...)...)
		done <- err
	}()

	// acc-0001 ends with 6 events (testdata/bank/expected.jsonl); wait until
	// the table topic shows that.
	var got struct {
		Owner   string `json:"owner"`
		Balance int64  `json:"balance"`
		Events  int64  `json:"events"`
	}
	kafkatest.WaitFor(t, 2*time.Minute, "acc-0001 to reach its final state", func() bool {
		select {
		case err := <-done:
			t.Fatalf("run stopped: %v", err)
		default:
		}
		out, err := weft(t.Context(), append([]string{"get", group, "acc-0001"}, common...)...)
		return err == nil && json.Unmarshal([]byte(out), &got) == nil && got.Events == 6
	})
	if got.Owner != "Alice Smith" || got.Balance != 342298 {
		t.Fatalf("acc-0001 = %+v, want Alice Smith with 342298", got)
	}
	out, err = weft(t.Context(), append([]string{"get", group, "acc-0001", "--meta"}, common...)...)
	var meta struct {
		Value   struct{ Balance int64 } `json:"value"`
		Version uint64                  `json:"version"`
		Writer  string                  `json:"writer_traceparent"`
		Sources []struct {
			Topic string `json:"topic"`
		} `json:"sources"`
	}
	if err != nil || json.Unmarshal([]byte(out), &meta) != nil {
		t.Fatalf("get --meta: %v\n%s", err, out)
	}
	if meta.Version != 6 || meta.Value.Balance != 342298 || len(meta.Sources) != 1 || meta.Sources[0].Topic != input ||
		len(meta.Writer) != 55 {
		t.Fatalf("get --meta = %s, want version 6 (one per event), balance 342298, source %s, a writer traceparent", out, input)
	}
	// explain: acc-0001 has 6 events, so versions 6 down to 1, each from
	// the input topic, with strictly decreasing offsets per partition.
	out, err = weft(t.Context(), append([]string{"explain", group, "acc-0001", "--json"}, common...)...)
	if err != nil {
		t.Fatalf("explain: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 6 {
		t.Fatalf("explain printed %d versions, want 6:\n%s", len(lines), out)
	}
	lastOffset := int64(1 << 62)
	for i, l := range lines {
		var v struct {
			Version uint64 `json:"version"`
			Writer  string `json:"writer_traceparent"`
			Source  struct {
				Topic  string
				Offset int64
			} `json:"source"`
		}
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatal(err)
		}
		if v.Version != uint64(6-i) || v.Source.Topic != input || v.Source.Offset >= lastOffset || v.Writer == "" {
			t.Fatalf("explain line %d: %s", i, l)
		}
		lastOffset = v.Source.Offset
	}
	// get --as-of 1: the value right after AccountCreated.
	out, err = weft(t.Context(), append([]string{"get", group, "acc-0001", "--as-of", "1"}, common...)...)
	if err != nil || json.Unmarshal([]byte(out), &got) != nil || got.Events != 1 || got.Balance != 0 {
		t.Fatalf("get --as-of 1: %v %s", err, out)
	}
	_, err = weft(t.Context(), append([]string{"get", group + "-table", "acc-9999"}, common...)...)
	if err == nil || !strings.Contains(err.Error(), `"acc-9999" has no value`) {
		t.Fatalf("get of a missing key: %v", err)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run after SIGINT-like cancel: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("run did not stop within a minute")
	}
}

func TestEnvironmentFallbackAndUsageErrors(t *testing.T) {
	t.Setenv("WEFT_LOG_FORMAT", "xml")
	_, err := weft(t.Context(), "get", "t", "k")
	var ue *usageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), `--log-format "xml"`) {
		t.Fatalf("WEFT_LOG_FORMAT=xml: %v", err)
	}
	// The command line wins over the environment.
	t.Setenv("WEFT_PARTITIONS", "many")
	_, err = weft(t.Context(), "get", "t", "k", "--partitions", "3", "--log-format", "json", "--embedded-addr", "127.0.0.1:1")
	if err == nil || errors.As(err, &ue) {
		t.Fatalf("flags over bad environment: %v (want a connection error, not a usage error)", err)
	}
	if !strings.Contains(err.Error(), "cannot reach Kafka at 127.0.0.1:1") || !strings.Contains(err.Error(), "'weft run' or 'weft broker'") {
		t.Fatalf("unreachable embedded broker: %v", err)
	}
	t.Setenv("WEFT_PARTITIONS", "")
	if _, err = weft(t.Context(), "produce", "only-topic"); !errors.As(err, &ue) {
		t.Fatalf("produce with one argument: %v, want a usage error", err)
	}
}

func TestVersion(t *testing.T) {
	out, err := weft(t.Context(), "version")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "weft ") || !strings.Contains(out, "go: go1.") {
		t.Fatalf("version output:\n%s", out)
	}
}

func TestHelpNamesEnvironmentVariables(t *testing.T) {
	out, err := weft(t.Context(), "run", "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"[$WEFT_BROKERS]", "[$WEFT_STATE_DIR]", "[$WEFT_RUN_INPUT]", "SIGTERM"} {
		if !strings.Contains(out, want) {
			t.Errorf("run --help lacks %q", want)
		}
	}
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// weft run <topology file> with the embedded broker: every group of the
// file runs; produce orders and read two of its tables.
func TestRunTopologyFile(t *testing.T) {
	addr := freeAddr(t)
	common := []string{"--embedded-addr", addr, "--log-level", "warn"}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := weft(ctx, append([]string{"run", filepath.Join("..", "..", "testdata", "topologies", "shop.yaml"),
			"--state-dir", t.TempDir()}, common...)...)
		done <- err
	}()
	orders := filepath.Join(t.TempDir(), "orders.jsonl")
	lines := `{"customer":"c1","segment":"retail","amount":50}
{"customer":"c1","segment":"retail","amount":150}
{"customer":"c2","segment":"b2b","amount":500}
{"customer":"c3","segment":"b2b","amount":-5}
`
	if err := os.WriteFile(orders, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	kafkatest.WaitFor(t, time.Minute, "the embedded broker to take the orders", func() bool {
		select {
		case err := <-done:
			t.Fatalf("run stopped: %v", err)
		default:
		}
		_, err := weft(t.Context(), append([]string{"produce", "orders", orders, "--key-field", "customer"}, common...)...)
		return err == nil
	})
	get := func(table, key string) string {
		out, err := weft(t.Context(), append([]string{"get", table, key}, common...)...)
		if err != nil {
			return ""
		}
		return strings.TrimSpace(out)
	}
	// per-customer counts valid orders; segment-totals sums them per segment.
	kafkatest.WaitFor(t, 2*time.Minute, "the tables to hold all orders", func() bool {
		return get("shop-per-customer", "c1") == "2" && get("shop-segment-totals", "retail") == "200" &&
			get("shop-segment-totals", "b2b") == "500"
	})
	if got := get("shop-per-customer", "c3"); got != "" {
		t.Fatalf("c3's only order was filtered out, but it has count %q", got)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("run did not stop")
	}
}

// cancelOnWrite cancels a context as soon as its output contains a text.
type cancelOnWrite struct {
	buf    bytes.Buffer
	text   string
	cancel context.CancelFunc
}

func (c *cancelOnWrite) Write(p []byte) (int, error) {
	c.buf.Write(p)
	if strings.Contains(c.buf.String(), c.text) {
		c.cancel()
	}
	return len(p), nil
}

// A demo interrupted before it checked the read model fails: it did not
// show what it promises.
func TestDemoInterruptedFails(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	w := &cancelOnWrite{text: "produced ", cancel: cancel}
	root := newRootCommand()
	root.SetArgs([]string{"demo", "--exit", "--embedded-addr", "127.0.0.1:0", "--log-level", "error",
		"--events", filepath.Join(bankData, "events.jsonl")})
	root.SetOut(w)
	root.SetErr(w)
	err := root.ExecuteContext(ctx)
	if !errors.Is(err, errInterrupted) {
		t.Fatalf("interrupted demo returned %v, want %v\n%s", err, errInterrupted, w.buf.String())
	}
}
