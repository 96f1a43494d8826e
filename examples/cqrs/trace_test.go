package cqrs_test

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/weftstream/weft/internal/kafkatest"
	"github.com/weftstream/weft/processors"
	"github.com/weftstream/weft/tracing"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// traceOf publishes value to topic (keyed by key) inside a new root span,
// waits until the trace has the spans named hops (after the root), and
// returns them in that order: exactly one span per name.
func (a *app) traceOf(topic, key, value string, hops ...string) (root trace.SpanContext, spans []sdktrace.ReadOnlySpan) {
	a.t.Helper()
	ctx, span := a.tp.Tracer("cqrs-test").Start(context.Background(), "client request")
	a.publish(ctx, topic, key, value)
	span.End()
	root = span.SpanContext()
	kafkatest.WaitFor(a.t, timeout, "the spans of the trace", func() bool {
		return len(a.inTrace(root.TraceID())) >= len(hops)+1
	})
	byName := map[string][]sdktrace.ReadOnlySpan{}
	for _, s := range a.inTrace(root.TraceID()) {
		byName[s.Name()] = append(byName[s.Name()], s)
	}
	for _, h := range hops {
		if len(byName[h]) != 1 {
			a.t.Fatalf("%d spans %q in the trace, want 1 (trace: %v)", len(byName[h]), h, names(a.inTrace(root.TraceID())))
		}
		spans = append(spans, byName[h][0])
	}
	return root, spans
}

func (a *app) inTrace(id trace.TraceID) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range a.spans.Ended() {
		if s.SpanContext().TraceID() == id {
			out = append(out, s)
		}
	}
	return out
}

func names(spans []sdktrace.ReadOnlySpan) []string {
	out := make([]string, len(spans))
	for i, s := range spans {
		out[i] = s.Name()
	}
	return out
}

// checkChain checks that each span is the child of the one before, the
// first the child of root, all in root's trace, and that the process spans
// are consumer spans without errors.
func checkChain(t *testing.T, root trace.SpanContext, chain []sdktrace.ReadOnlySpan) {
	t.Helper()
	parent := root
	parentName := "the root span"
	for _, s := range chain {
		if s.SpanContext().TraceID() != root.TraceID() {
			t.Errorf("%s is in trace %s, want %s", s.Name(), s.SpanContext().TraceID(), root.TraceID())
		}
		if s.Parent().SpanID() != parent.SpanID() {
			t.Errorf("%s has parent %s, want %s (%s)", s.Name(), s.Parent().SpanID(), parent.SpanID(), parentName)
		}
		if s.Status().Code == 1 /* codes.Error */ {
			t.Errorf("%s has status Error: %s", s.Name(), s.Status().Description)
		}
		parent, parentName = s.SpanContext(), s.Name()
	}
}

// checkWriter checks that a stored value names span as its writer.
func checkWriter(t *testing.T, what string, st *processors.Stored, span sdktrace.ReadOnlySpan) {
	t.Helper()
	if st == nil {
		t.Fatalf("%s: no value", what)
	}
	if w := processors.SpanContextOf(st.Meta.Writer); w.SpanID() != span.SpanContext().SpanID() || w.TraceID() != span.SpanContext().TraceID() {
		t.Errorf("%s was written by span %s/%s, want %s (%s)", what, w.TraceID(), w.SpanID(), span.SpanContext().SpanID(), span.Name())
	}
}

// span is the ended span with the given id, or nil.
func (a *app) span(id trace.SpanID) sdktrace.ReadOnlySpan {
	for _, s := range a.spans.Ended() {
		if s.SpanContext().SpanID() == id {
			return s
		}
	}
	return nil
}

// spansNamed counts the ended spans called name.
func (a *app) spansNamed(name string) int {
	n := 0
	for _, s := range a.spans.Ended() {
		if s.Name() == name {
			n++
		}
	}
	return n
}

// traceparentOf is the span context in a record's traceparent header.
func traceparentOf(t *testing.T, r *kgo.Record) trace.SpanContext {
	t.Helper()
	ctx := propagation.TraceContext{}.Extract(context.Background(), propagation.MapCarrier{"traceparent": header(r, "traceparent")})
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		t.Fatalf("record %s has no valid traceparent (%q)", r.Key, header(r, "traceparent"))
	}
	return sc
}

// linkKind is the weft.link.kind attribute of a link.
func linkKind(l sdktrace.Link) string {
	for _, kv := range l.Attributes {
		if kv.Key == tracing.AttrLinkKind {
			return kv.Value.AsString()
		}
	}
	return ""
}
