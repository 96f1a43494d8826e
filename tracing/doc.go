// Package tracing is weft's OpenTelemetry glue: W3C trace context and
// baggage propagation through Kafka record headers (a carrier over
// goka.Headers driven by OTel's propagator API), consumer and producer span
// helpers with the OTel messaging attributes, the link kinds weft uses to
// tie state to the spans that wrote it, and tracer-provider setup from the
// standard OTEL_* environment variables, with an export queue that counts
// and reports every span it drops. Without an exporter, spans are not
// recorded but carry their parent's sampling decision on (Unexported).
//
// It knows nothing about topologies or state stores: callers hand it record
// metadata and span contexts.
package tracing
