package tracing

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
)

// ProcessSpan is the span "process <topic>" of one consumed record, started
// by Tracer.StartProcessSpan, with the context of that span made only when
// something asks for it. A processor embeds one in its per-record state:
// with the Unexported tracer provider (no exporter) the span lives inside
// the ProcessSpan, so starting it allocates nothing, and a record whose
// callback never asks for its context (a count folded into the record
// cache) costs no context either.
type ProcessSpan struct {
	// parent is the record's context, the span's parent; with the
	// Unexported provider it can lack the record's span context, which
	// the span's own replaces in Context anyway.
	parent context.Context
	span   trace.Span
	ctx    context.Context // parent with span; nil until Context
	local  localSpan       // the span, when it records nothing (Unexported, or sampled out)
}

// Span returns the span.
func (p *ProcessSpan) Span() trace.Span { return p.span }

// Context returns the context of the span (a child of the record's).
func (p *ProcessSpan) Context() context.Context {
	if p.ctx == nil {
		p.ctx = trace.ContextWithSpan(p.parent, p.span)
	}
	return p.ctx
}

// StartProcessSpan is StartProcess into p, which must be zero or reused
// for a new record. Without options it allocates nothing with the
// Unexported provider, nor for a record that a SampledProvider's sampler
// drops: the non-recording span is then p's own.
func (t *Tracer) StartProcessSpan(p *ProcessSpan, ctx context.Context, rec Record, opts ...trace.SpanStartOption) {
	if t.unexported && len(opts) == 0 {
		if sc, ok := traceparentOnly(rec.Headers); ok {
			// The record's context holds nothing but its span context,
			// which the span's own replaces in p's context: p's parent
			// can be ctx itself.
			if !sc.IsValid() {
				sc = trace.SpanContextFromContext(ctx)
			}
			p.startLocal(ctx, unexportedChild(sc))
			return
		}
		ctx = t.Extract(ctx, rec.Headers)
		p.startLocal(ctx, unexportedChild(trace.SpanContextFromContext(ctx)))
		return
	}
	if t.sampler != nil && len(opts) == 0 {
		ctx = t.Extract(ctx, rec.Headers)
		d := presample(t.sampler, ctx, trace.SpanContextFromContext(ctx), t.processSpan(rec).name)
		if d.drop {
			p.startLocal(ctx, d.sc)
			return
		}
		sctx := ctx
		if d.root.IsValid() {
			sctx = context.WithValue(ctx, presetTraceIDKey{}, d.root)
		}
		rec.Headers = nil // extracted already
		_, span := t.StartProcess(sctx, rec)
		// The span's context is made from ctx, without the preset id:
		// a new root started under it must get a trace id of its own.
		*p = ProcessSpan{parent: ctx, span: span}
		return
	}
	sctx, span := t.StartProcess(ctx, rec, opts...)
	*p = ProcessSpan{parent: ctx, span: span, ctx: sctx}
}

// startLocal makes p's span its own non-recording one with context sc, a
// child of ctx.
func (p *ProcessSpan) startLocal(ctx context.Context, sc trace.SpanContext) {
	*p = ProcessSpan{parent: ctx}
	p.local.sc = sc
	p.span = &p.local
}

// unexportedChild is the span context of a non-recording child of parent
// (see Unexported): the parent's trace id, flags and state with a new span
// id, or a new unsampled root.
func unexportedChild(parent trace.SpanContext) trace.SpanContext {
	cfg := trace.SpanContextConfig{SpanID: newSpanID()}
	if parent.IsValid() {
		cfg.TraceID, cfg.TraceFlags, cfg.TraceState = parent.TraceID(), parent.TraceFlags(), parent.TraceState()
	} else {
		cfg.TraceID = newTraceID()
	}
	return trace.NewSpanContext(cfg)
}

// localSpan is a span that records nothing and carries a span context,
// like the trace package's own non-recording span.
type localSpan struct {
	embedded.Span
	sc trace.SpanContext
}

var _ trace.Span = (*localSpan)(nil)

func (*localSpan) End(...trace.SpanEndOption)              {}
func (*localSpan) AddEvent(string, ...trace.EventOption)   {}
func (*localSpan) AddLink(trace.Link)                      {}
func (*localSpan) IsRecording() bool                       { return false }
func (*localSpan) RecordError(error, ...trace.EventOption) {}
func (s *localSpan) SpanContext() trace.SpanContext        { return s.sc }
func (*localSpan) SetStatus(codes.Code, string)            {}
func (*localSpan) SetName(string)                          {}
func (*localSpan) SetAttributes(...attribute.KeyValue)     {}
func (*localSpan) TracerProvider() trace.TracerProvider    { return Unexported() }
