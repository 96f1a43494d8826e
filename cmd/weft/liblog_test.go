package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weftstream/weft/internal/kafkatest"
)

// With --log-format json every line weft writes to stderr is a JSON
// object, the libraries' lines too: sarama's (at debug level), goka's,
// OpenTelemetry's (an exporter that cannot reach its collector) and the
// progress lines. weft runs as a process (this test binary as weft's
// main), since the libraries' loggers are process-wide and set by main.
func TestIntegrationLibraryLogsAreJSON(t *testing.T) {
	bl := strings.Join(kafkatest.Brokers(t), ",")
	topic := kafkatest.Topic(t, "json-logs") + "-table"
	file := filepath.Join(t.TempDir(), "records.jsonl")
	var lines strings.Builder
	for i := range 2000 {
		fmt.Fprintf(&lines, "{\"key\":\"k%d\",\"value\":{\"n\":%d}}\n", i, i)
	}
	if err := os.WriteFile(file, []byte(lines.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	collector := freeAddr(t) // nothing listens there
	run := func(args ...string) (stdout, stderr string) {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), os.Args[0], append(args, "--brokers", bl, "--log-format", "json", "--log-level", "debug")...)
		cmd.Env = append(os.Environ(), envAsWeft+"=1",
			"OTEL_TRACES_EXPORTER=otlp", "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
			"OTEL_EXPORTER_OTLP_ENDPOINT=http://"+collector, "OTEL_EXPORTER_OTLP_TIMEOUT=300", "OTEL_BSP_EXPORT_TIMEOUT=300")
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Run(); err != nil {
			t.Fatalf("weft %s: %v\n%s", strings.Join(args, " "), err, errOut.String())
		}
		return out.String(), errOut.String()
	}
	seen := map[string]bool{}
	check := func(stderr string) {
		t.Helper()
		for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Errorf("not a JSON line: %q", l)
				continue
			}
			if c, ok := m["component"].(string); ok {
				seen[c] = true
			}
			if msg, _ := m["msg"].(string); strings.HasSuffix(msg, " progress") {
				seen[msg] = true
			}
		}
	}
	out, stderr := run("produce", topic, file, "--progress-interval", "1ms")
	if !strings.Contains(out, "produced 2000 records") {
		t.Fatalf("produce: %s\n%s", out, stderr)
	}
	check(stderr)
	out, stderr = run("get", topic, "k7", "--progress-interval", "1ms")
	if strings.TrimSpace(out) != `{"n":7}` {
		t.Fatalf("get: %q\n%s", out, stderr)
	}
	check(stderr)
	// A failure is a JSON line too.
	cmd := exec.CommandContext(t.Context(), os.Args[0], "get", topic, "no-such-key", "--brokers", bl, "--log-format", "json")
	cmd.Env = append(os.Environ(), envAsWeft+"=1")
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	if err := cmd.Run(); err == nil {
		t.Fatal("get of a key without a value succeeded")
	}
	if !strings.Contains(errOut.String(), `"exit_code":3`) {
		t.Errorf("no JSON line with the exit code: %s", errOut.String())
	}
	check(errOut.String())
	for _, want := range []string{"sarama", "opentelemetry"} {
		if !seen[want] {
			t.Errorf("no line of component %s (seen %v)", want, seen)
		}
	}
}
