package tracing

import (
	"github.com/lovoo/goka"
	"go.opentelemetry.io/otel/propagation"
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
