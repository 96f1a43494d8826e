package tracing

import (
	"github.com/lovoo/goka"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// HeaderCarrier adapts goka.Headers (Kafka record headers) to OTel's
// propagation.TextMapCarrier. A nil HeaderCarrier reads as empty; Set on
// it is a no-op, so inject into a map made by the caller.
type HeaderCarrier goka.Headers

var _ propagation.TextMapCarrier = HeaderCarrier(nil)

// Get returns the value of a header, or "".
func (c HeaderCarrier) Get(key string) string {
	if v, ok := c[key]; ok {
		return string(v)
	}
	return ""
}

// Set stores a header.
func (c HeaderCarrier) Set(key, value string) {
	if c != nil {
		c[key] = []byte(value)
	}
}

// Keys lists the header names.
func (c HeaderCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// Propagator is the propagator weft uses on Kafka headers: W3C
// traceparent/tracestate and baggage.
func Propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// HeaderTraceparent is the W3C Trace Context header Propagator writes.
const HeaderTraceparent = "traceparent"

// AppendTraceparent appends the traceparent value of sc to dst, as
// Propagator's Inject writes it for a context holding only sc (version
// 00, trace id, span id, the sampled and random flags), without the
// carrier's allocations.
func AppendTraceparent(dst []byte, sc trace.SpanContext) []byte {
	const hexDigits = "0123456789abcdef"
	tid, sid := sc.TraceID(), sc.SpanID()
	dst = append(dst, '0', '0', '-')
	for _, b := range tid {
		dst = append(dst, hexDigits[b>>4], hexDigits[b&0xf])
	}
	dst = append(dst, '-')
	for _, b := range sid {
		dst = append(dst, hexDigits[b>>4], hexDigits[b&0xf])
	}
	f := byte(sc.TraceFlags() & (trace.FlagsSampled | trace.FlagsRandom))
	return append(dst, '-', hexDigits[f>>4], hexDigits[f&0xf])
}
