package tracing

import (
	"context"
	"os"
	"strconv"
	"strings"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// SampledProvider is an OTel SDK tracer provider built with a sampler that
// weft knows (NewSampledProvider), so that process spans can be sampled
// before the SDK is asked for them: a record the sampler drops gets a
// non-recording span that weft makes without allocating, exactly as the
// SDK would make it (the parent's trace id, or a new one, a new span id,
// the sampled flag cleared, the sampler's tracestate); only records the
// sampler keeps cost an SDK span. At a 1% ratio that takes the tracer's
// cost off 99% of the records.
type SampledProvider struct {
	*sdktrace.TracerProvider
	sampler sdktrace.Sampler
}

// NewSampledProvider returns an SDK tracer provider that samples with
// sampler, configured further by opts (span processors, resource; a
// sampler or ID generator among them is overridden).
func NewSampledProvider(sampler sdktrace.Sampler, opts ...sdktrace.TracerProviderOption) *SampledProvider {
	opts = append(opts[:len(opts):len(opts)], sdktrace.WithSampler(sampler), sdktrace.WithIDGenerator(presetIDs{}))
	return &SampledProvider{TracerProvider: sdktrace.NewTracerProvider(opts...), sampler: sampler}
}

// presampled is the sampling decision taken before a process span is
// started.
type presampled struct {
	drop bool
	sc   trace.SpanContext // with drop: the span's context
	// root is the trace id of a sampled span without a parent: the SDK
	// must give it this one (presetIDs), the id the sampler decided on.
	root trace.TraceID
}

// presample decides for a process span that starts in ctx (whose span
// context is parent) what the SDK would: sampler.ShouldSample with the
// parent's trace id or a new one.
func presample(sampler sdktrace.Sampler, ctx context.Context, parent trace.SpanContext, name string) presampled {
	var d presampled
	tid := parent.TraceID()
	if !tid.IsValid() {
		tid = newTraceID()
		d.root = tid
	}
	res := sampler.ShouldSample(sdktrace.SamplingParameters{
		ParentContext: ctx, TraceID: tid, Name: name, Kind: trace.SpanKindConsumer})
	if res.Decision != sdktrace.Drop {
		return d
	}
	d.drop = true
	d.sc = trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: newSpanID(),
		TraceFlags: parent.TraceFlags() &^ trace.FlagsSampled, TraceState: res.Tracestate})
	return d
}

// presetTraceIDKey carries, in the context of a sampled root span's
// start, the trace id presample decided on, for presetIDs.
type presetTraceIDKey struct{}

// presetIDs is the ID generator of a SampledProvider: random ids (like the
// SDK's), except the trace id presample sampled a root span with.
type presetIDs struct{}

func (presetIDs) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	if tid, ok := ctx.Value(presetTraceIDKey{}).(trace.TraceID); ok && tid.IsValid() {
		return tid, newSpanID()
	}
	return newTraceID(), newSpanID()
}

func (presetIDs) NewSpanID(context.Context, trace.TraceID) trace.SpanID { return newSpanID() }

// SamplerFromEnv returns the sampler OTEL_TRACES_SAMPLER and
// OTEL_TRACES_SAMPLER_ARG name, as the OTel SDK reads them (default
// parentbased_always_on); ok is false for a value the SDK would reject
// (which it reports, and replaces by its default), which weft then leaves
// to the SDK.
func SamplerFromEnv() (s sdktrace.Sampler, ok bool) {
	name := strings.ToLower(strings.TrimSpace(os.Getenv("OTEL_TRACES_SAMPLER")))
	arg := strings.TrimSpace(os.Getenv("OTEL_TRACES_SAMPLER_ARG"))
	ratio := func() (sdktrace.Sampler, bool) {
		if arg == "" {
			return sdktrace.TraceIDRatioBased(1), true
		}
		v, err := strconv.ParseFloat(arg, 64)
		if err != nil || v < 0 || v > 1 {
			return nil, false
		}
		return sdktrace.TraceIDRatioBased(v), true
	}
	switch name {
	case "", "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), true
	case "always_on":
		return sdktrace.AlwaysSample(), true
	case "always_off":
		return sdktrace.NeverSample(), true
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), true
	case "traceidratio":
		return ratio()
	case "parentbased_traceidratio":
		r, ok := ratio()
		if !ok {
			return nil, false
		}
		return sdktrace.ParentBased(r), true
	}
	return nil, false
}
