package tracing

import (
	"context"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/lovoo/goka"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// A SampledProvider's process spans are sampled as the OTel SDK samples
// them, decided by a closed form here instead of by the SDK: with
// ParentBased(TraceIDRatioBased(r)) a record with a sampled parent is
// recorded, one with an unsampled parent is not (its span keeps the trace
// id and clears the flag), and a root is recorded iff the upper 63 bits of
// the low half of its trace id are below r·2^63 (the SDK's rule); only
// recorded spans reach the span processor, and every span has a span id of
// its own.
func TestSampledProviderSamplesAsTheSDK(t *testing.T) {
	const ratio = 0.25
	rec := tracetest.NewSpanRecorder()
	tp := NewSampledProvider(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio)), sdktrace.WithSpanProcessor(rec))
	tr := NewTracer(tp)
	bound := uint64(ratio * (1 << 63))
	const n = 400
	recorded := 0
	seen := map[trace.SpanID]bool{}
	for i := range n {
		var h goka.Headers
		var parent trace.SpanContext
		switch i % 3 {
		case 1: // sampled parent
			h = goka.Headers{"traceparent": []byte(fmt.Sprintf("00-%032x-%016x-01", i+1, i+1))}
		case 2: // unsampled parent
			h = goka.Headers{"traceparent": []byte(fmt.Sprintf("00-%032x-%016x-00", i+1, i+1))}
		}
		if h != nil {
			parent = trace.SpanContextFromContext(tr.Extract(context.Background(), h))
		}
		var ps ProcessSpan
		tr.StartProcessSpan(&ps, context.Background(), Record{Topic: "in", Partition: 1, Offset: int64(i), Key: "k", Group: "g", Headers: h})
		sc := ps.Span().SpanContext()
		var want bool
		switch {
		case i%3 == 1:
			want = true
		case i%3 == 2:
			want = false
		default:
			tid := sc.TraceID()
			want = binary.BigEndian.Uint64(tid[8:16])>>1 < bound
		}
		if ps.Span().IsRecording() != want || sc.IsSampled() != want {
			t.Fatalf("record %d: recording %v, sampled flag %v, want %v", i, ps.Span().IsRecording(), sc.IsSampled(), want)
		}
		if parent.IsValid() && sc.TraceID() != parent.TraceID() {
			t.Fatalf("record %d: trace id %s, want the parent's %s", i, sc.TraceID(), parent.TraceID())
		}
		if !sc.IsValid() || seen[sc.SpanID()] || sc.SpanID() == parent.SpanID() {
			t.Fatalf("record %d: span id %s is not new", i, sc.SpanID())
		}
		seen[sc.SpanID()] = true
		if got := trace.SpanFromContext(ps.Context()).SpanContext(); !got.Equal(sc) {
			t.Fatalf("record %d: context holds span %v, want %v", i, got, sc)
		}
		if want {
			recorded++
		}
		ps.Span().End()
	}
	if got := len(rec.Ended()); got != recorded {
		t.Fatalf("%d spans reached the processor, want the %d recorded", got, recorded)
	}
	// About a quarter of the roots: the rule was applied to random ids.
	if roots := recorded - n/3; roots < 10 || roots > 60 {
		t.Fatalf("%d of %d roots sampled at ratio %v", roots, (n+2)/3, ratio)
	}
}

// A new root started inside a sampled root's context gets a trace id of
// its own (the id preset for the sampled root does not leak).
func TestSampledRootDoesNotPresetLaterRoots(t *testing.T) {
	tp := NewSampledProvider(sdktrace.AlwaysSample())
	tr := NewTracer(tp)
	var ps ProcessSpan
	tr.StartProcessSpan(&ps, context.Background(), Record{Topic: "in", Key: "k", Group: "g"})
	_, inner := tp.Tracer("x").Start(ps.Context(), "inner", trace.WithNewRoot())
	if inner.SpanContext().TraceID() == ps.Span().SpanContext().TraceID() {
		t.Fatal("a new root under a sampled root reused its trace id")
	}
}

// SamplerFromEnv reads the variables as the SDK does, and refuses what the
// SDK would reject.
func TestSamplerFromEnv(t *testing.T) {
	for _, tc := range []struct {
		sampler, arg, want string
		ok                 bool
	}{
		{"", "", "ParentBased{root:AlwaysOnSampler,remoteParentSampled:AlwaysOnSampler,remoteParentNotSampled:AlwaysOffSampler,localParentSampled:AlwaysOnSampler,localParentNotSampled:AlwaysOffSampler}", true},
		{"always_off", "", "AlwaysOffSampler", true},
		{"TraceIdRatio", "0.5", "TraceIDRatioBased{0.5}", true},
		{"parentbased_traceidratio", "0.01", "ParentBased{root:TraceIDRatioBased{0.01},remoteParentSampled:AlwaysOnSampler,remoteParentNotSampled:AlwaysOffSampler,localParentSampled:AlwaysOnSampler,localParentNotSampled:AlwaysOffSampler}", true},
		{"traceidratio", "2", "", false},
		{"traceidratio", "x", "", false},
		{"jaeger_remote", "", "", false},
	} {
		t.Setenv("OTEL_TRACES_SAMPLER", tc.sampler)
		t.Setenv("OTEL_TRACES_SAMPLER_ARG", tc.arg)
		s, ok := SamplerFromEnv()
		if ok != tc.ok || ok && s.Description() != tc.want {
			desc := "<nil>"
			if s != nil {
				desc = s.Description()
			}
			t.Errorf("%q %q: %s %v, want %s %v", tc.sampler, tc.arg, desc, ok, tc.want, tc.ok)
		}
	}
}
