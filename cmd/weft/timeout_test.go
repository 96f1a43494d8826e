package main

import (
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// silentBroker accepts connections and never answers, like a broker behind
// a stuck proxy.
func silentBroker(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c) // accept, never answer
		}
	}()
	return ln.Addr().String()
}

// One-shot commands against a broker that never answers stop at --timeout
// with a sentence that names the flag, and exit code 1.
func TestTimeoutOneShotCommands(t *testing.T) {
	addr := silentBroker(t)
	dir := t.TempDir()
	events := dir + "/events.jsonl"
	if err := os.WriteFile(events, []byte(`{"id":"a"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"get", "bank", "acc-0001"},
		{"explain", "bank", "acc-0001"},
		{"produce", "events", events},
		{"consume", "events"},
	} {
		t.Run(args[0], func(t *testing.T) {
			start := time.Now()
			out, err := weft(t.Context(), append(args, "--brokers", addr, "--timeout", "1s", "--log-level", "error")...)
			took := time.Since(start)
			t.Log(err)
			if err == nil {
				t.Fatalf("%s succeeded against a broker that never answers:\n%s", args[0], out)
			}
			if !strings.HasPrefix(err.Error(), "did not finish within --timeout 1s") {
				t.Errorf("%s: error %q, want it to start with 'did not finish within --timeout 1s'", args[0], err)
			}
			if code := exitCode(err); code != 1 {
				t.Errorf("%s: exit code %d, want 1", args[0], code)
			}
			if took > 4*time.Second {
				t.Errorf("%s returned after %s, want about 1s", args[0], took)
			}
		})
	}
}

func TestTimeoutNegativeIsAUsageError(t *testing.T) {
	_, err := weft(t.Context(), "get", "bank", "k", "--timeout", "-1s", "--brokers", "127.0.0.1:1")
	if code := exitCode(err); code != 2 || err == nil || !strings.Contains(err.Error(), "--timeout") {
		t.Fatalf("get --timeout -1s: %v (exit %d), want a usage error naming --timeout", err, code)
	}
}
