package main

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weftstream/weft/internal/kafkatest"
)

// TestBrokerRefusesSecurityFlags checks that weft broker, which serves
// plaintext without authentication, refuses --tls and --sasl-* (from the
// command line or the environment) with one sentence and a usage error.
func TestBrokerRefusesSecurityFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  string
		want string
	}{
		{args: []string{"--tls"}, want: "so --tls cannot apply"},
		{args: []string{"--sasl-mechanism", "PLAIN", "--sasl-user", "u"}, want: "so --sasl-* cannot apply"},
		{args: []string{"--tls", "--sasl-password", "p"}, want: "so --tls and --sasl-* cannot apply"},
		{env: "WEFT_TLS", want: "so --tls cannot apply"},
	} {
		if tc.env != "" {
			t.Setenv(tc.env, "true")
		}
		args := append([]string{"broker", "--embedded-addr", "127.0.0.1:0", "--state-dir", t.TempDir()}, tc.args...)
		_, err := weft(t.Context(), args...)
		var ue *usageError
		if !errors.As(err, &ue) {
			t.Fatalf("weft %s: %v, want a usage error", strings.Join(args, " "), err)
		}
		want := "weft broker serves plaintext without authentication, " + tc.want + ": remove it (or its WEFT_ variable)"
		if err.Error() != want {
			t.Errorf("weft %s: error %q, want %q", strings.Join(args, " "), err, want)
		}
		if tc.env != "" {
			t.Setenv(tc.env, "")
		}
	}
}

// TestBrokerFlags checks that weft broker listens on --embedded-addr (here
// from WEFT_EMBEDDED_ADDR), creates topics with the global --partitions,
// and that a second broker on its data dir, and a weft run on its address,
// are refused with sentences naming the flags that pick another.
func TestBrokerFlags(t *testing.T) {
	addr := freeAddr(t)
	state := t.TempDir()
	t.Setenv("WEFT_EMBEDDED_ADDR", addr)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := weft(ctx, "broker", "--state-dir", state, "--partitions", "3", "--log-level", "warn")
		done <- err
	}()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("weft broker: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("weft broker did not stop")
		}
	}()

	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	kafkatest.WaitFor(t, 30*time.Second, "weft broker to serve on "+addr, func() bool {
		pctx, pcancel := context.WithTimeout(t.Context(), time.Second)
		defer pcancel()
		return cl.ProduceSync(pctx, &kgo.Record{Topic: "auto", Value: []byte("x")}).FirstErr() == nil
	})
	tds, err := kadm.NewClient(cl).ListTopics(t.Context(), "auto")
	if err != nil {
		t.Fatal(err)
	}
	if got := len(tds["auto"].Partitions); got != 3 {
		t.Errorf("auto-created topic has %d partitions, want 3 (--partitions)", got)
	}

	dataDir := filepath.Join(state, "broker")
	_, err = weft(t.Context(), "broker", "--state-dir", state, "--embedded-addr", "127.0.0.1:0", "--log-level", "warn")
	if want := "the embedded broker's data dir " + dataDir + " is in use by another broker: stop it, or use another --data-dir"; err == nil || err.Error() != want {
		t.Errorf("second weft broker on %s: %v, want %q", dataDir, err, want)
	}
	_, err = weft(t.Context(), "run", "--state-dir", state, "--embedded-addr", "127.0.0.1:0", "--log-level", "warn")
	if want := "the embedded broker's data dir " + dataDir + " is in use by another broker: stop it, or use another --state-dir"; err == nil || err.Error() != want {
		t.Errorf("weft run on the state dir of a running broker: %v, want %q", err, want)
	}
	_, err = weft(t.Context(), "run", "--state-dir", t.TempDir(), "--log-level", "warn")
	if want := "address " + addr + " is already in use: is another broker running? use --embedded-addr to pick another"; err == nil || err.Error() != want {
		t.Errorf("weft run on %s: %v, want %q", addr, err, want)
	}
}
