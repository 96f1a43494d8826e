package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Flag mistakes are usage errors (exit code 2) that name the flag, found
// before anything starts: no broker, no state directory.
func TestFlagMistakesBeforeSideEffects(t *testing.T) {
	for _, tc := range []struct {
		args []string
		flag string
	}{
		{[]string{"run", "--start-offset", "oldest"}, "--start-offset"},
		{[]string{"get", "t", "k", "--start-offset", "oldest"}, "--start-offset"},
		{[]string{"run", "--kafka-version", "banana"}, "--kafka-version"},
		{[]string{"run", "--kafka-version", "99.0.0"}, "--kafka-version"},
		{[]string{"run", "--partitions", "0"}, "--partitions"},
		{[]string{"broker", "--partitions", "0"}, "--partitions"},
		{[]string{"run", "--replication-factor", "0"}, "--replication-factor"},
		{[]string{"run", "--brokers", "nohostport"}, "--brokers"},
		{[]string{"run", "--sasl-mechanism", "GSSAPI"}, "--sasl-mechanism"},
		{[]string{"run", "--log-level", "loud"}, "--log-level"},
		{[]string{"demo", "--log-format", "xml"}, "--log-format"},
		{[]string{"get", "t", "k", "--as-of", "yesterday"}, "--as-of"},
		{[]string{"nosuchcommand"}, "unknown command"},
		{[]string{"run", "--nosuchflag"}, "unknown flag"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			state := filepath.Join(t.TempDir(), "state")
			out, err := weft(t.Context(), append(tc.args, "--state-dir", state, "--embedded-addr", "127.0.0.1:0")...)
			var ue *usageError
			if !errors.As(err, &ue) {
				t.Fatalf("error %v (%T), want a usage error\n%s", err, err, out)
			}
			if !strings.Contains(err.Error(), tc.flag) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q: want one line naming %s", err, tc.flag)
			}
			if _, err := os.Stat(state); !os.IsNotExist(err) {
				t.Fatalf("the state directory was created before the flags were checked")
			}
		})
	}
}

// A command's own flags take their environment variable from the command
// (WEFT_DESCRIBE_FORMAT); the old name without it (WEFT_FORMAT) still
// works, with one warning, and loses to the new one. Global flags keep
// theirs (WEFT_LOG_FORMAT).
func TestLocalFlagEnvNamedAfterCommand(t *testing.T) {
	file := filepath.Join("..", "..", "testdata", "topologies", "shop.yaml")
	describe := func() (string, error) { return weft(t.Context(), "describe", file) }

	t.Setenv("WEFT_LOG_FORMAT", "json")
	t.Setenv("WEFT_DESCRIBE_FORMAT", "mermaid")
	out, err := describe()
	if err != nil || !strings.HasPrefix(out, "flowchart") || strings.Contains(out, "deprecated") {
		t.Fatalf("WEFT_DESCRIBE_FORMAT=mermaid: %v\n%s", err, out)
	}

	t.Setenv("WEFT_DESCRIBE_FORMAT", "")
	t.Setenv("WEFT_FORMAT", "dot")
	out, err = describe()
	if err != nil {
		t.Fatal(err)
	}
	warning := `{"level":"WARN","msg":"environment variable WEFT_FORMAT is deprecated: use WEFT_DESCRIBE_FORMAT (it sets describe --format)"}`
	lines := strings.Split(out, "\n")
	var warnings int
	for _, l := range lines {
		if strings.Contains(l, "deprecated") {
			warnings++
			if i := strings.Index(l, `"level"`); i < 0 || "{"+l[i:] != warning {
				t.Errorf("warning %s, want %s (and a time)", l, warning)
			}
		}
	}
	if warnings != 1 || !strings.Contains(out, "digraph") {
		t.Fatalf("WEFT_FORMAT=dot: %d warnings, want 1, and a dot graph:\n%s", warnings, out)
	}

	t.Setenv("WEFT_DESCRIBE_FORMAT", "mermaid") // the new name wins
	if out, err = describe(); err != nil || !strings.HasPrefix(out, "flowchart") || strings.Contains(out, "deprecated") {
		t.Fatalf("both set: %v\n%s", err, out)
	}

	out, err = weft(t.Context(), "get", "--help")
	if err != nil || !strings.Contains(out, "[$WEFT_GET_META]") || !strings.Contains(out, "[$WEFT_BROKERS]") {
		t.Fatalf("get --help does not name WEFT_GET_META and WEFT_BROKERS:\n%s", out)
	}
}
