package tracing_test

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/lovoo/goka"
	"github.com/weftstream/weft/tracing"
	"go.opentelemetry.io/otel/trace"
)

// AppendTraceparent writes what the propagator's Inject writes for a
// context holding only the span context, for every flag combination.
func TestAppendTraceparentMatchesPropagator(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 1000 {
		var tid trace.TraceID
		var sid trace.SpanID
		for j := range tid {
			tid[j] = byte(r.Uint32())
		}
		for j := range sid {
			sid[j] = byte(r.Uint32())
		}
		sc := trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: tid, SpanID: sid, TraceFlags: trace.TraceFlags(i % 256), Remote: true,
		})
		h := goka.Headers{}
		tracing.Propagator().Inject(trace.ContextWithRemoteSpanContext(context.Background(), sc), tracing.HeaderCarrier(h))
		if len(h) != 1 {
			t.Fatalf("propagator wrote %d headers, want only %s", len(h), tracing.HeaderTraceparent)
		}
		if got, want := string(tracing.AppendTraceparent(nil, sc)), string(h[tracing.HeaderTraceparent]); got != want {
			t.Fatalf("flags %02x: AppendTraceparent %q, propagator %q", i%256, got, want)
		}
	}
}
