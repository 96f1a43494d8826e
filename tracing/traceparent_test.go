package tracing_test

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/lovoo/goka"
	"github.com/weftstream/weft/tracing"
	"go.opentelemetry.io/otel/baggage"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
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

// traceparentCases are traceparent values, valid and malformed in the
// ways the W3C specification and the propagator distinguish.
func traceparentCases() []string {
	const tid, sid = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	cases := []string{
		"",
		"-",
		"---",
		"00-" + tid + "-" + sid + "-00",
		"00-" + tid + "-" + sid + "-01",
		"00-" + tid + "-" + sid + "-02",
		"00-" + tid + "-" + sid + "-03",
		"00-" + tid + "-" + sid + "-04",    // reserved flag of version 00
		"00-" + tid + "-" + sid + "-ff",    // reserved flags of version 00
		"00-" + tid + "-" + sid + "-01-",   // an empty field after the flags
		"00-" + tid + "-" + sid + "-01-xy", // a field version 00 does not have
		"00-" + tid + "-" + sid + "-1",
		"00-" + tid + "-" + sid + "-001",
		"00-" + tid + "-" + sid,
		"00-" + tid + "-" + sid + "-",
		"00-" + tid + "-" + sid + "-0g",
		"00-" + tid + "-" + sid + "-0F",
		"00-" + strings.ToUpper(tid) + "-" + sid + "-01",
		"00-" + tid + "-" + strings.ToUpper(sid) + "-01",
		"00-" + tid[1:] + "-" + sid + "-01",
		"00-" + tid + "0-" + sid + "-01",
		"00-" + tid + "-" + sid[1:] + "-01",
		"00-" + tid + "-" + sid + "0-01",
		"00-00000000000000000000000000000000-" + sid + "-01", // zero trace id
		"00-" + tid + "-0000000000000000-01",                 // zero span id
		"00_" + tid + "-" + sid + "-01",
		"0-" + tid + "-" + sid + "-01",
		"000-" + tid + "-" + sid + "-01",
		"01-" + tid + "-" + sid + "-01",
		"01-" + tid + "-" + sid + "-09",          // other flags of a later version
		"01-" + tid + "-" + sid + "-01-more-end", // fields of a later version
		"01-" + tid + "-" + sid + "-01-",
		"cc-" + tid + "-" + sid + "-01-what-the-future-holds",
		"fe-" + tid + "-" + sid + "-ff",
		"ff-" + tid + "-" + sid + "-01", // the forbidden version
		"FE-" + tid + "-" + sid + "-01",
		"0x-" + tid + "-" + sid + "-01",
		" 00-" + tid + "-" + sid + "-01",
		"00-" + tid + "-" + sid + "-01 ",
		"00--" + tid + "-" + sid + "-01",
	}
	// Random changes of a valid value: a byte replaced, removed or added.
	r := rand.New(rand.NewPCG(3, 4))
	const alphabet = "-0123456789abcdefABCDEFgz _"
	for range 3000 {
		b := []byte("00-" + tid + "-" + sid + "-01")
		if r.IntN(4) == 0 {
			b[1] = "0123456789abcdef"[r.IntN(16)]
		}
		for range 1 + r.IntN(2) {
			i, c := r.IntN(len(b)), alphabet[r.IntN(len(alphabet))]
			switch r.IntN(3) {
			case 0:
				b[i] = c
			case 1:
				b = append(b[:i], b[i+1:]...)
			default:
				b = append(b[:i], append([]byte{c}, b[i:]...)...)
			}
		}
		cases = append(cases, string(b))
	}
	return cases
}

// ParseTraceparent reads every value as the propagator's Extract does.
func TestParseTraceparentMatchesPropagator(t *testing.T) {
	valid := 0
	for _, v := range traceparentCases() {
		ctx := tracing.Propagator().Extract(context.Background(), tracing.HeaderCarrier(goka.Headers{tracing.HeaderTraceparent: []byte(v)}))
		want := trace.SpanContextFromContext(ctx)
		got := tracing.ParseTraceparent([]byte(v))
		if !got.Equal(want) || got.IsRemote() != want.IsRemote() {
			t.Fatalf("%q: ParseTraceparent gives %+v, the propagator %+v", v, got, want)
		}
		if want.IsValid() {
			valid++
		}
	}
	if valid < 100 {
		t.Fatalf("only %d of the cases are valid traceparents", valid)
	}
}

// Tracer.Extract gives the context the propagator gives, with and without
// the other headers the propagator reads.
func TestExtractMatchesPropagator(t *testing.T) {
	tr := tracing.NewTracer(tracing.Unexported())
	type ctxKey struct{}
	others := []goka.Headers{
		nil,
		{"other": []byte("x")},
		{"tracestate": []byte("vendor=value")},
		{"tracestate": []byte("")},
		{"baggage": []byte("user=alice")},
		{"baggage": []byte("")},
		{"tracestate": []byte("a=b"), "baggage": []byte("k=v")},
	}
	base := trace.ContextWithRemoteSpanContext(context.WithValue(context.Background(), ctxKey{}, 1),
		tracing.ParseTraceparent([]byte("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")))
	for _, parent := range []context.Context{context.Background(), base} {
		for _, v := range traceparentCases()[:200] {
			for _, o := range others {
				h := goka.Headers{tracing.HeaderTraceparent: []byte(v)}
				for k, x := range o {
					h[k] = x
				}
				want := tracing.Propagator().Extract(parent, tracing.HeaderCarrier(h))
				got := tr.Extract(parent, h)
				wsc, gsc := trace.SpanContextFromContext(want), trace.SpanContextFromContext(got)
				if !gsc.Equal(wsc) || gsc.IsRemote() != wsc.IsRemote() {
					t.Fatalf("%q with %v: span context %+v, the propagator's %+v", v, o, gsc, wsc)
				}
				if g, w := baggage.FromContext(got).String(), baggage.FromContext(want).String(); g != w {
					t.Fatalf("%q with %v: baggage %q, the propagator's %q", v, o, g, w)
				}
				if got.Value(ctxKey{}) != parent.Value(ctxKey{}) {
					t.Fatalf("%q with %v: the parent's values are lost", v, o)
				}
			}
		}
	}
}

// InjectProcessSpan writes the headers Inject writes for the span's
// context, with and without tracestate and baggage, for the Unexported
// provider and the SDK, sampled or not.
func TestInjectProcessSpanMatchesInject(t *testing.T) {
	providers := map[string]trace.TracerProvider{
		"unexported": tracing.Unexported(),
		"sdk":        sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.NeverSample()))),
		"sampled":    tracing.NewSampledProvider(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.5))),
	}
	const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-"
	inputs := []goka.Headers{
		nil,
		{tracing.HeaderTraceparent: []byte(tp + "01")},
		{tracing.HeaderTraceparent: []byte(tp + "00")},
		{tracing.HeaderTraceparent: []byte(tp + "01"), "tracestate": []byte("vendor=value")},
		{tracing.HeaderTraceparent: []byte(tp + "00"), "baggage": []byte("user=alice")},
		{"baggage": []byte("user=alice")},
	}
	for name, p := range providers {
		tr := tracing.NewTracer(p)
		for _, in := range inputs {
			for range 20 {
				var ps tracing.ProcessSpan
				tr.StartProcessSpan(&ps, context.Background(), tracing.Record{Topic: "in", Headers: in})
				want := goka.Headers{}
				tr.Inject(ps.Context(), want)
				var ps2 tracing.ProcessSpan
				ps2 = ps // the same span, its context not made yet where it is made on demand
				got := goka.Headers{}
				buf := tr.InjectProcessSpan(&ps2, got, make([]byte, 0, 8))
				if len(got) != len(want) {
					t.Fatalf("%s, %v: InjectProcessSpan wrote %v, Inject %v", name, in, got, want)
				}
				for k, v := range want {
					if string(got[k]) != string(v) {
						t.Fatalf("%s, %v: InjectProcessSpan wrote %s=%q, Inject %q", name, in, k, got[k], v)
					}
				}
				if v, ok := got[tracing.HeaderTraceparent]; ok && len(buf) > 0 && string(buf) != string(v) {
					t.Fatalf("%s, %v: the returned buffer holds %q, the header %q", name, in, buf, v)
				}
			}
		}
	}
}
