package main

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// jsonLines decodes every line of out into a map.
func jsonLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q is not JSON: %v\n%s", sc.Text(), err, out)
		}
		lines = append(lines, m)
	}
	return lines
}

// validate --json: one line per mistake with its position, as the .errors
// file beside the invalid topology lists them, one per good or skipped
// file, and a summary.
func TestValidateJSON(t *testing.T) {
	invalid := filepath.Join("..", "..", "testdata", "topologies", "invalid", "cel.yaml")
	good := filepath.Join("..", "..", "testdata", "topologies", "shop.yaml")
	skipped := filepath.Join("..", "..", "testdata", "topologies", "shop.test.yaml")
	missing := filepath.Join(t.TempDir(), "missing.yaml")
	out, err := weft(t.Context(), "validate", "--json", invalid, good, missing, skipped)
	if err == nil || exitCode(err) != 1 {
		t.Fatalf("validate of a bad file: %v, want exit code 1", err)
	}
	// The expected mistakes: "cel.yaml:line:col: message", where a message
	// ending in ... matches any message that starts with the text before.
	data, err := os.ReadFile(strings.TrimSuffix(invalid, ".yaml") + ".errors")
	if err != nil {
		t.Fatal(err)
	}
	type mistake struct {
		line, col int
		msg       string
	}
	var want []mistake
	for _, l := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(l, "cel.yaml:") {
			continue
		}
		parts := strings.SplitN(strings.TrimPrefix(l, "cel.yaml:"), ":", 3)
		line, _ := strconv.Atoi(parts[0])
		col, _ := strconv.Atoi(parts[1])
		want = append(want, mistake{line, col, strings.TrimPrefix(parts[2], " ")})
	}
	if len(want) != 8 {
		t.Fatalf("read %d mistakes from cel.errors, want 8", len(want))
	}
	lines := jsonLines(t, out)
	if len(lines) != len(want)+4 {
		t.Fatalf("%d lines, want %d mistakes, 1 ok, 1 missing, 1 skipped and a summary:\n%s", len(lines), len(want), out)
	}
	for i, w := range want {
		l := lines[i]
		msg, _ := l["message"].(string)
		okMsg := msg == w.msg || strings.HasSuffix(w.msg, "...") && strings.HasPrefix(msg, strings.TrimSuffix(w.msg, "..."))
		if l["kind"] != "error" || l["file"] != invalid || l["line"] != float64(w.line) || l["column"] != float64(w.col) || !okMsg {
			t.Errorf("line %d = %v, want error %s:%d:%d: %s", i+1, l, invalid, w.line, w.col, w.msg)
		}
	}
	rest := lines[len(want):]
	if l := rest[0]; l["kind"] != "ok" || l["file"] != good || l["pipelines"] != float64(14) || l["groups"] != float64(11) {
		t.Errorf("good file: %v, want ok with 14 pipelines and 11 groups", l)
	}
	if l := rest[1]; l["kind"] != "error" || l["file"] != missing || l["message"] != "no such file or directory" || l["line"] != nil {
		t.Errorf("missing file: %v, want an error without a position", l)
	}
	if l := rest[2]; l["kind"] != "skipped" || l["file"] != skipped {
		t.Errorf("test file: %v, want skipped", l)
	}
	wantSummary := map[string]any{"kind": "summary", "files": 4.0, "ok": 1.0, "failed": 2.0, "skipped": 1.0, "errors": 9.0}
	for k, v := range wantSummary {
		if rest[3][k] != v {
			t.Errorf("summary %v: %s = %v, want %v", rest[3], k, rest[3][k], v)
		}
	}
}

// test --json: one line per case with its name, whether it passed and the
// failed expectations, then a summary.
func TestTestJSON(t *testing.T) {
	shop := filepath.Join("..", "..", "testdata", "topologies", "shop.yaml")
	cases, err := os.ReadFile(filepath.Join("..", "..", "testdata", "topologies", "shop.test.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// A second case that expects the wrong count: c9 ordered once.
	wrong := string(cases) + `
  - name: wrong count
    input:
      - {topic: orders, key: c9, value: {customer: c9, segment: retail, amount: 7}}
    expect:
      tables:
        - {table: per-customer, key: c9, value: 5}
`
	tests := filepath.Join(t.TempDir(), "shop.test.yaml")
	if err := os.WriteFile(tests, []byte(wrong), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := weft(t.Context(), "test", "--json", "--tests", tests, shop)
	if err == nil || !strings.Contains(err.Error(), "1 of 2 test cases failed") {
		t.Fatalf("weft test: %v, want 1 of 2 failed\n%s", err, out)
	}
	lines := jsonLines(t, out)
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 2 cases and a summary:\n%s", len(lines), out)
	}
	if l := lines[0]; l["kind"] != "case" || l["name"] != "orders through every step" || l["passed"] != true || l["diff"] != nil {
		t.Errorf("first case: %v, want passed without a diff", l)
	}
	l := lines[1]
	diff, _ := l["diff"].([]any)
	if l["kind"] != "case" || l["name"] != "wrong count" || l["passed"] != false || len(diff) != 1 {
		t.Fatalf("second case: %v, want failed with one diff", l)
	}
	if d, _ := diff[0].(string); !strings.Contains(d, "per-customer") || !strings.Contains(d, "c9") || !strings.Contains(d, "want 5") || !strings.Contains(d, "got  1") {
		t.Errorf("diff %q does not name per-customer c9, 5 and 1", d)
	}
	if s := lines[2]; s["kind"] != "summary" || s["cases"] != 2.0 || s["failed"] != 1.0 {
		t.Errorf("summary %v, want 2 cases, 1 failed", s)
	}
}
