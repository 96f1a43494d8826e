package serve_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/weftstream/weft/serve"
)

// A connection a client dialed ahead and never sent a request on (HTTP
// clients do) does not make stopping fail: net/http's Shutdown waits 5 s
// before it counts it as idle, as long as Run's grace period; Run closes
// it and returns nil.
func TestRunStopsWithAConnectionThatSentNothing(t *testing.T) {
	s, err := serve.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, ln, nil) }()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// The server has accepted it once it answers a request on another
	// connection (accepts are in order).
	probe, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := probe.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 12)
	if _, err := probe.Read(buf); err != nil || string(buf) != "HTTP/1.1 200" {
		t.Fatalf("probe answered %q (%v), want HTTP/1.1 200", buf, err)
	}
	probe.Close()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run returned %v, want nil", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return within 30 s of its context ending")
	}
}
