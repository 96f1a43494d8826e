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
