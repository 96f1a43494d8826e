package main

import (
	"strings"
	"testing"
)

// Commands that do not talk to Kafka do not list its flags in their help;
// the others do.
func TestHelpListsKafkaFlagsOnlyWhereUsed(t *testing.T) {
	for _, args := range [][]string{
		{"describe", "--help"}, {"test", "--help"}, {"version", "--help"}, {"help", "describe"},
		{"completion", "--help"}, {"completion", "bash", "--help"}, {"help", "help"},
	} {
		out, err := weft(t.Context(), args...)
		if err != nil {
			t.Fatalf("weft %s: %v", strings.Join(args, " "), err)
		}
		if !strings.Contains(out, "--log-level") {
			t.Errorf("weft %s does not list the global --log-level:\n%s", strings.Join(args, " "), out)
		}
		for _, flag := range []string{"--brokers", "--tls", "--sasl-password", "--embedded-addr", "--state-dir"} {
			if strings.Contains(out, flag) {
				t.Errorf("weft %s lists %s:\n%s", strings.Join(args, " "), flag, out)
			}
		}
	}
	for _, args := range [][]string{{"get", "--help"}, {"run", "--help"}, {"validate", "--help"}, {"help", "consume"}, {"--help"}} {
		out, err := weft(t.Context(), args...)
		if err != nil {
			t.Fatalf("weft %s: %v", strings.Join(args, " "), err)
		}
		for _, flag := range []string{"--brokers", "--tls", "--sasl-password"} {
			if !strings.Contains(out, flag) {
				t.Errorf("weft %s does not list %s:\n%s", strings.Join(args, " "), flag, out)
			}
		}
	}
	// validate talks to Kafka only with --brokers, as a client: no embedded
	// broker, state or processor flags (--partitions it uses: a missing topic
	// counts with it).
	out, err := weft(t.Context(), "validate", "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, flag := range []string{"--embedded-addr", "--state-dir", "--replication-factor", "--give-up-after", "--start-offset"} {
		if strings.Contains(out, flag) {
			t.Errorf("weft validate --help lists %s:\n%s", flag, out)
		}
	}
	if !strings.Contains(out, "--brokers") || !strings.Contains(out, "--tls") {
		t.Errorf("weft validate --help does not list --brokers and --tls:\n%s", out)
	}
	// The flags are shared: after an offline command's help they are
	// listed again.
	root := newRootCommand()
	root.SetArgs([]string{"describe", "--help"})
	root.SetOut(new(strings.Builder))
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	if f := root.PersistentFlags().Lookup("brokers"); f == nil || f.Hidden {
		t.Fatal("--brokers stays hidden after the help of describe")
	}
}
