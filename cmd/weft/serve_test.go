package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weftstream/weft/internal/kafkatest"
)

// weft run serves the read model it builds over HTTP: the README's
// account acc-0001 ends with the balance the independent implementation
// computed (testdata/bank/expected.jsonl), and the answer names its
// writer. The record cache is off, so that the lineage keeps one version
// per event (with it, updates between flushes are one version).
func TestIntegrationRunServesQueries(t *testing.T) {
	brokers := strings.Join(kafkatest.Brokers(t), ",")
	input, group := kafkatest.Topic(t, "bank-events"), kafkatest.Group(t, "bank")
	common := []string{"--brokers", brokers, "--log-level", "warn", "--partitions", "4"}
	if out, err := weft(t.Context(), append([]string{"produce", input, filepath.Join(bankData, "events.jsonl"), "--key-field", "account"}, common...)...); err != nil {
		t.Fatalf("produce: %v\n%s", err, out)
	}
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := weft(ctx, append([]string{"run", "--input", input, "--group", group, "--state-dir", t.TempDir(), "--http-addr", addr,
			"--cache-max-bytes", "0"}, common...)...)
		done <- err
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	var got struct {
		Value struct {
			Owner   string `json:"owner"`
			Balance int64  `json:"balance"`
			Events  int64  `json:"events"`
		} `json:"value"`
		Version uint64 `json:"version"`
		Writer  string `json:"writer_traceparent"`
	}
	kafkatest.WaitFor(t, 2*time.Minute, "acc-0001 served with its final state", func() bool {
		select {
		case err := <-done:
			t.Fatalf("run stopped: %v", err)
		default:
		}
		resp, err := http.Get("http://" + addr + "/tables/" + group + "/acc-0001")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		return resp.StatusCode == 200 && json.NewDecoder(resp.Body).Decode(&got) == nil && got.Value.Events == 6
	})
	if got.Value.Owner != "Alice Smith" || got.Value.Balance != 342298 || got.Version != 6 || !strings.HasPrefix(got.Writer, "00-") {
		t.Fatalf("acc-0001 = %+v", got)
	}

	// weft get and explain ask the running instance with --server.
	server := []string{"--server", "http://" + addr}
	out, err := weft(t.Context(), append(append([]string{"get", group, "acc-0001", "--meta"}, server...), common...)...)
	if err != nil || !strings.Contains(out, `"balance":342298`) || !strings.Contains(out, `"version":6`) || !strings.Contains(out, got.Writer) {
		t.Fatalf("get --server: %v\n%s", err, out)
	}
	out, err = weft(t.Context(), append(append([]string{"get", group, "acc-0001", "--as-of", "1"}, server...), common...)...)
	if err != nil || !strings.Contains(out, `"events":1`) {
		t.Fatalf("get --server --as-of 1: %v\n%s", err, out)
	}
	out, err = weft(t.Context(), append(append([]string{"explain", group, "acc-0001"}, server...), common...)...)
	if err != nil || !strings.Contains(out, "6 versions, newest first") || !strings.Contains(out, got.Writer) {
		t.Fatalf("explain --server: %v\n%s", err, out)
	}
	var nv *noValueError
	if _, err := weft(t.Context(), append(append([]string{"get", group, "no-such-account"}, server...), common...)...); !errors.As(err, &nv) ||
		!strings.Contains(err.Error(), "no value") {
		t.Fatalf("get --server of a missing key: %v, want a no-value error (exit code 3)", err)
	}
	// The same from the table topic, without the query API.
	if _, err := weft(t.Context(), append([]string{"get", group, "no-such-account", "--as-of", "1"}, common...)...); !errors.As(err, &nv) ||
		!strings.Contains(err.Error(), "has no value") {
		t.Fatalf("get --as-of of a missing key: %v, want a no-value error", err)
	}
	if _, err := weft(t.Context(), append([]string{"get", group, "acc-0001", "--server", "http://" + freeAddr(t)}, common...)...); err == nil {
		t.Fatal("get --server with nothing listening succeeded")
	}
}
