package tracing

import (
	"context"
	"encoding/binary"
	"math/rand/v2"

	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
)

// Unexported returns the tracer provider used when no exporter is
// configured. Its spans are never recorded or exported, but each gets its
// own span id, so that stored values name distinct writers and the trace
// context of inputs still flows to outputs:
//
//   - a span with a parent (the record's traceparent, or a span in ctx)
//     keeps the parent's trace id, trace flags and tracestate: a record
//     that arrives sampled (flags 01) is stored and forwarded as sampled,
//     so that parent-based samplers downstream keep the trace, and an
//     unsampled one (00) stays unsampled. weft without an exporter passes
//     the sampling decision on instead of making one, as W3C Trace Context
//     expects of a participant that does not trace;
//   - a root span (no valid parent, or trace.WithNewRoot) gets a new random
//     trace id and flags 00: weft recorded nothing of it, so it must not
//     tell downstream services that the trace was sampled (they would keep
//     traces whose root is missing).
//
// The OTel SDK cannot do this: its sampler either records the span or
// clears the sampled flag.
func Unexported() trace.TracerProvider { return unexportedProvider{} }

type unexportedProvider struct{ embedded.TracerProvider }

func (unexportedProvider) Tracer(string, ...trace.TracerOption) trace.Tracer {
	return unexportedTracer{}
}

type unexportedTracer struct{ embedded.Tracer }

// Start returns a non-recording span (the trace package's own, as
// trace.ContextWithSpanContext makes it) that continues the parent of ctx
// with a new span id.
func (unexportedTracer) Start(ctx context.Context, _ string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	parent := trace.SpanContextFromContext(ctx)
	if len(opts) > 0 {
		if c := trace.NewSpanStartConfig(opts...); c.NewRoot() {
			parent = trace.SpanContext{}
		}
	}
	ctx = trace.ContextWithSpanContext(ctx, unexportedChild(parent))
	return ctx, trace.SpanFromContext(ctx)
}

// newSpanID returns a random non-zero span id. math/rand/v2's global
// generator is per-thread (no lock) and, like the OTel SDK's id generator,
// not cryptographic: ids need to be unique, not secret.
func newSpanID() trace.SpanID {
	var id trace.SpanID
	for !id.IsValid() {
		binary.BigEndian.PutUint64(id[:], rand.Uint64())
	}
	return id
}

// newTraceID returns a random non-zero trace id.
func newTraceID() trace.TraceID {
	var id trace.TraceID
	for !id.IsValid() {
		binary.BigEndian.PutUint64(id[:8], rand.Uint64())
		binary.BigEndian.PutUint64(id[8:], rand.Uint64())
	}
	return id
}
