package tracing

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"syscall"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

type typedErr struct{}

func (typedErr) Error() string     { return "typed" }
func (typedErr) ErrorType() string { return "quota_exceeded" }

func TestErrorType(t *testing.T) {
	opErr := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	for _, c := range []struct {
		err  error
		want string
	}{
		{errors.New("boom"), "_OTHER"},
		{fmt.Errorf("process: %w", errors.New("boom")), "_OTHER"},
		{fmt.Errorf("process: %w", opErr), "net.OpError"},
		{fmt.Errorf("a %w and %w", errors.New("x"), fs.ErrNotExist), "_OTHER"},
		{errors.Join(errors.New("x"), &fs.PathError{Op: "open", Err: fs.ErrNotExist}), "io/fs.PathError"},
		{syscall.ECONNREFUSED, "syscall.Errno"},
		{fmt.Errorf("outer: %w", typedErr{}), "quota_exceeded"},
		{context.DeadlineExceeded, "context.deadlineExceededError"},
	} {
		if got := ErrorType(c.err); got != c.want {
			t.Errorf("ErrorType(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}

// Failed spans carry error.type with the status and the exception event.
func TestRecordErrorSetsErrorType(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tr := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp)).Tracer("t")
	_, a := tr.Start(context.Background(), "a")
	RecordError(a, fmt.Errorf("produce: %w", &net.OpError{Op: "dial", Err: errors.New("refused")}))
	a.End()
	_, b := tr.Start(context.Background(), "b")
	RecordErrorType(b, errors.New("decode: unexpected end of JSON input"), "decode")
	b.End()
	_, c := tr.Start(context.Background(), "c")
	RecordErrorType(c, errors.New("x"), "")
	c.End()

	spans := exp.GetSpans()
	if len(spans) != 3 {
		t.Fatalf("%d spans", len(spans))
	}
	for i, want := range []string{"net.OpError", "decode", "_OTHER"} {
		s := spans[i]
		got := ""
		for _, kv := range s.Attributes {
			if kv.Key == attribute.Key("error.type") {
				got = kv.Value.AsString()
			}
		}
		if got != want {
			t.Errorf("span %s: error.type %q, want %q", s.Name, got, want)
		}
		if s.Status.Code != codes.Error || len(s.Events) != 1 || s.Events[0].Name != "exception" {
			t.Errorf("span %s: status %v, events %v", s.Name, s.Status, s.Events)
		}
	}
	// A non-recording span is left alone (and costs nothing).
	_, n := NewTracer(Unexported()).Start(context.Background(), "n")
	RecordError(n, errors.New("x"))
}

func TestProcessSpanServerAttributes(t *testing.T) {
	for _, c := range []struct {
		brokers []string
		addr    string
		port    int64
	}{
		{[]string{"kafka-1.internal:9093"}, "kafka-1.internal", 9093},
		{[]string{"[::1]:9092"}, "::1", 9092},
		{[]string{"a:9092", "b:9092"}, "", 0},
		{[]string{"no-port"}, "", 0},
		{nil, "", 0},
	} {
		exp := tracetest.NewInMemoryExporter()
		tr := NewTracer(sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp)), WithBrokers(c.brokers))
		_, span := tr.StartProcess(context.Background(), Record{Topic: "t", Partition: 1})
		span.End()
		attrs := map[attribute.Key]attribute.Value{}
		for _, kv := range exp.GetSpans()[0].Attributes {
			attrs[kv.Key] = kv.Value
		}
		addr, hasAddr := attrs["server.address"]
		port, hasPort := attrs["server.port"]
		if c.addr == "" {
			if hasAddr || hasPort {
				t.Errorf("brokers %v: server.address %v, server.port %v, want neither", c.brokers, addr.Emit(), port.Emit())
			}
			continue
		}
		if addr.AsString() != c.addr || port.AsInt64() != c.port {
			t.Errorf("brokers %v: server.address %q, server.port %d, want %q, %d", c.brokers, addr.AsString(), port.AsInt64(), c.addr, c.port)
		}
	}
}
