package main

import (
	"strings"
	"testing"
)

func TestRunRecordCacheFlags(t *testing.T) {
	for args, want := range map[string]string{
		"--cache-max-bytes -1": "--cache-max-bytes must be at least 0",
		"--commit-interval 0s": "--commit-interval must be positive",
	} {
		_, err := weft(t.Context(), append([]string{"run", "--brokers", "127.0.0.1:1"}, strings.Fields(args)...)...)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("run %s: %v, want %q", args, err, want)
		}
	}
}
