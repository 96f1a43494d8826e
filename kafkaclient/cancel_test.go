package kafkaclient

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// A broker that accepts connections but never answers must not hold up a
// cancelled context (Ctrl-C) until the client's timeouts.
func TestDetectVersionHonoursCancellation(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // accept, never answer
		}
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	sc := sarama.NewConfig()
	start := time.Now()
	_, err = DetectVersion(ctx, []string{ln.Addr().String()}, sc)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("DetectVersion: %v, want the context's deadline", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("DetectVersion returned %s after the context ended, want at once", took)
	}
}
