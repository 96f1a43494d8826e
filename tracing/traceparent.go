package tracing

import (
	"bytes"

	"github.com/lovoo/goka"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/trace"
)

// The headers Propagator reads besides HeaderTraceparent.
const (
	headerTracestate = "tracestate"
	headerBaggage    = "baggage"
)

// ParseTraceparent returns the remote span context of a W3C traceparent
// header value as Propagator's Extract reads it from headers that hold no
// tracestate (so the span context has none): version 00 exactly as the
// specification says, a later version (up to fe) by its version 00 fields,
// the flags reduced to sampled and random. A malformed value gives the
// invalid span context. It is the counterpart of AppendTraceparent and
// does not allocate.
func ParseTraceparent(h []byte) trace.SpanContext {
	if len(h) == 0 {
		return trace.SpanContext{}
	}
	var ver [1]byte
	if !parseHexPart(ver[:], &h, 2) || ver[0] > 254 {
		return trace.SpanContext{}
	}
	var scc trace.SpanContextConfig
	if !parseHexPart(scc.TraceID[:], &h, 32) || !parseHexPart(scc.SpanID[:], &h, 16) {
		return trace.SpanContext{}
	}
	var flags [1]byte
	if !parseHexPart(flags[:], &h, 2) {
		return trace.SpanContext{}
	}
	if ver[0] == 0 && (len(h) != 0 || flags[0] > 3) {
		// Version 00 has no further fields and no other flags.
		return trace.SpanContext{}
	}
	scc.TraceFlags = trace.TraceFlags(flags[0]) & (trace.FlagsSampled | trace.FlagsRandom)
	scc.Remote = true
	sc := trace.NewSpanContext(scc)
	if !sc.IsValid() {
		return trace.SpanContext{}
	}
	return sc
}

// parseHexPart decodes the part of *h before the next '-' (all of it if
// there is none) into dst, which it must fill with n lower-case hex
// digits, and leaves the rest after the '-' in *h.
func parseHexPart(dst []byte, h *[]byte, n int) bool {
	part, rest := *h, []byte(nil)
	if i := bytes.IndexByte(part, '-'); i >= 0 {
		part, rest = part[:i], part[i+1:]
	}
	*h = rest
	if len(part) != n {
		return false
	}
	for i := 0; i < n; i += 2 {
		hi, ok1 := hexValue(part[i])
		lo, ok2 := hexValue(part[i+1])
		if !ok1 || !ok2 {
			return false
		}
		dst[i/2] = hi<<4 | lo
	}
	return true
}

// hexValue is the value of a lower-case hex digit.
func hexValue(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// traceparentOnly returns the span context Propagator's Extract finds in
// headers when it reads nothing but their traceparent (ok: there is no
// tracestate and no baggage header), the invalid one if that is missing
// or malformed.
func traceparentOnly(headers goka.Headers) (sc trace.SpanContext, ok bool) {
	if _, found := headers[headerTracestate]; found {
		return sc, false
	}
	if _, found := headers[headerBaggage]; found {
		return sc, false
	}
	return ParseTraceparent(headers[HeaderTraceparent]), true
}

// InjectProcessSpan writes into headers (non-nil) what
// Inject(p.Context(), headers) writes. When the span context has no
// tracestate and the context no baggage, which is the usual case, it
// appends the traceparent value to buf and stores that part of buf as the
// header, without making p's context, and returns buf (the caller must not
// change the part it stored); otherwise it returns buf as it was.
func (t *Tracer) InjectProcessSpan(p *ProcessSpan, headers goka.Headers, buf []byte) []byte {
	sc := p.span.SpanContext()
	ctx := p.ctx
	if ctx == nil {
		ctx = p.parent // the same baggage: a span does not change it
	}
	if sc.TraceState().Len() != 0 || baggage.FromContext(ctx).Len() != 0 {
		t.Inject(p.Context(), headers)
		return buf
	}
	if !sc.IsValid() {
		return buf
	}
	n := len(buf)
	buf = AppendTraceparent(buf, sc)
	headers[HeaderTraceparent] = buf[n:len(buf):len(buf)]
	return buf
}
