package tracing

import (
	"context"
	"strings"
	"testing"

	"github.com/lovoo/goka"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

func recorder() (*tracetest.SpanRecorder, *Tracer) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	return rec, NewTracer(tp)
}

const (
	traceID = "0af7651916cd43dd8448eb211c80319c"
	spanID  = "b7ad6b7169203331"
)

func TestProcessSpanIsChildOfTraceparent(t *testing.T) {
	rec, tr := recorder()
	h := goka.Headers{
		"traceparent": []byte("00-" + traceID + "-" + spanID + "-01"),
		"baggage":     []byte("tenant=acme"),
	}
	ctx, span := tr.StartProcess(context.Background(), Record{Topic: "bank-events", Partition: 3, Offset: 42, Key: "acc-1", Group: "bank", Headers: h})
	if got := baggage.FromContext(ctx).Member("tenant").Value(); got != "acme" {
		t.Errorf("baggage tenant = %q", got)
	}
	out := goka.Headers{}
	tr.Inject(ctx, out)
	span.End()

	s := rec.Ended()[0]
	if s.Name() != "process bank-events" || s.SpanKind() != trace.SpanKindConsumer {
		t.Fatalf("span %q kind %v", s.Name(), s.SpanKind())
	}
	if s.Parent().TraceID().String() != traceID || s.Parent().SpanID().String() != spanID || !s.Parent().IsRemote() {
		t.Fatalf("parent = %v", s.Parent())
	}
	want := map[attribute.Key]string{
		"messaging.system":                   "kafka",
		"messaging.operation.type":           "process",
		"messaging.destination.name":         "bank-events",
		"messaging.destination.partition.id": "3",
		"messaging.kafka.offset":             "42",
		"messaging.kafka.message.key":        "acc-1",
		"messaging.consumer.group.name":      "bank",
	}
	got := map[attribute.Key]string{}
	for _, kv := range s.Attributes() {
		got[kv.Key] = kv.Value.Emit()
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("attribute %s = %q, want %q", k, got[k], v)
		}
	}
	// The injected header names this span, in the same trace.
	tp := string(out["traceparent"])
	if !strings.HasPrefix(tp, "00-"+traceID+"-"+s.SpanContext().SpanID().String()) {
		t.Errorf("injected traceparent %q, want trace %s span %s", tp, traceID, s.SpanContext().SpanID())
	}
	if string(out["baggage"]) != "tenant=acme" {
		t.Errorf("baggage not propagated: %q", out["baggage"])
	}
}

func TestBadTraceparentGivesNewRoot(t *testing.T) {
	huge := strings.Repeat("x", 1<<20)
	for name, h := range map[string]goka.Headers{
		"missing":   nil,
		"malformed": {"traceparent": []byte("not-a-traceparent")},
		"all zero":  {"traceparent": []byte("00-00000000000000000000000000000000-0000000000000000-01")},
		"huge":      {"traceparent": []byte(huge), "tracestate": []byte(huge), "baggage": []byte(huge)},
		"binary":    {"traceparent": {0xff, 0x00, 0xfe}},
	} {
		t.Run(name, func(t *testing.T) {
			rec, tr := recorder()
			_, span := tr.StartProcess(context.Background(), Record{Topic: "t", Headers: h})
			span.End()
			s := rec.Ended()[0]
			if s.Parent().IsValid() {
				t.Fatalf("parent %v, want a new root", s.Parent())
			}
			if !s.SpanContext().IsValid() {
				t.Fatal("span context invalid")
			}
		})
	}
}

func TestStartSendInjects(t *testing.T) {
	rec, tr := recorder()
	h := goka.Headers{}
	_, span := tr.StartSend(context.Background(), "commands", "k", h)
	span.End()
	s := rec.Ended()[0]
	if s.Name() != "send commands" || s.SpanKind() != trace.SpanKindProducer {
		t.Fatalf("span %q kind %v", s.Name(), s.SpanKind())
	}
	if !strings.Contains(string(h["traceparent"]), s.SpanContext().SpanID().String()) {
		t.Fatalf("traceparent %q does not name the send span", h["traceparent"])
	}
}

func TestLink(t *testing.T) {
	l := Link(trace.SpanContext{}, LinkPreviousValue, AttrStateVersion.Int64(4))
	if len(l.Attributes) != 2 || l.Attributes[0].Value.AsString() != "previous_value" || l.Attributes[1].Value.AsInt64() != 4 {
		t.Fatalf("link attributes %v", l.Attributes)
	}
}

func TestSetupFromEnvironment(t *testing.T) {
	t.Setenv("OTEL_TRACES_EXPORTER", "")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	p, err := Setup(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if p.TracingEnabled {
		t.Fatal("tracing enabled without any exporter configured")
	}
	t.Setenv("OTEL_TRACES_EXPORTER", "console")
	t.Setenv("OTEL_SERVICE_NAME", "bank-projector")
	p, err = Setup(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !p.TracingEnabled {
		t.Fatal("OTEL_TRACES_EXPORTER=console did not enable tracing")
	}
	if err := p.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Setenv("OTEL_TRACES_EXPORTER", "carrier-pigeon")
	if _, err := Setup(t.Context()); err == nil {
		t.Fatal("unknown exporter accepted")
	}
}

func TestWithSamplerSharesTheExportPipeline(t *testing.T) {
	t.Setenv("OTEL_TRACES_EXPORTER", "console")
	p, err := Setup(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown(t.Context())
	_, never := p.WithSampler(sdktrace.NeverSample()).Tracer("t").Start(context.Background(), "x")
	_, always := p.WithSampler(sdktrace.AlwaysSample()).Tracer("t").Start(context.Background(), "y")
	if never.IsRecording() || !always.IsRecording() {
		t.Fatalf("recording: never-sampler %v, always-sampler %v", never.IsRecording(), always.IsRecording())
	}
	t.Setenv("OTEL_TRACES_EXPORTER", "none")
	off, err := Setup(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, s := off.WithSampler(sdktrace.AlwaysSample()).Tracer("t").Start(context.Background(), "z"); s.IsRecording() {
		t.Fatal("a sampler without an exporter records spans")
	}
}

// Without an exporter a span continues its parent with a new span id and
// the parent's flags and tracestate; a root is a new unsampled trace.
func TestUnexportedKeepsParentFlags(t *testing.T) {
	tr := NewTracer(Unexported())
	for _, flags := range []string{"01", "00"} {
		h := goka.Headers{
			"traceparent": []byte("00-" + traceID + "-" + spanID + "-" + flags),
			"tracestate":  []byte("vendor=x"),
		}
		ctx, span := tr.StartProcess(context.Background(), Record{Topic: "t", Headers: h})
		if span.IsRecording() {
			t.Fatal("unexported span records")
		}
		sc := span.SpanContext()
		if sc.TraceID().String() != traceID || sc.SpanID().String() == spanID || !sc.SpanID().IsValid() || sc.IsRemote() {
			t.Fatalf("flags %s: span context %v, want trace %s with a new local span id", flags, sc, traceID)
		}
		out := goka.Headers{}
		tr.Inject(ctx, out)
		if want := "00-" + traceID + "-" + sc.SpanID().String() + "-" + flags; string(out["traceparent"]) != want {
			t.Errorf("forwarded traceparent %q, want %q", out["traceparent"], want)
		}
		if string(out["tracestate"]) != "vendor=x" {
			t.Errorf("tracestate %q not forwarded", out["tracestate"])
		}
		// A child of the process span (e.g. a flush) stays in the trace.
		_, child := tr.Start(ctx, "flush")
		if c := child.SpanContext(); c.TraceID() != sc.TraceID() || c.SpanID() == sc.SpanID() || c.TraceFlags() != sc.TraceFlags() {
			t.Errorf("child %v of %v", c, sc)
		}
		_, root := tr.Start(ctx, "new", trace.WithNewRoot())
		if r := root.SpanContext(); r.TraceID() == sc.TraceID() || r.IsSampled() || !r.IsValid() {
			t.Errorf("WithNewRoot gave %v", r)
		}
	}
	_, a := tr.StartProcess(context.Background(), Record{Topic: "t"})
	_, b := tr.StartProcess(context.Background(), Record{Topic: "t"})
	if !a.SpanContext().IsValid() || a.SpanContext().IsSampled() || a.SpanContext().TraceID() == b.SpanContext().TraceID() {
		t.Fatalf("roots %v and %v: want distinct unsampled traces", a.SpanContext(), b.SpanContext())
	}
}
