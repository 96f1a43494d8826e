package main

import (
	"context"
	"sync/atomic"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// discardExporter is a trace exporter that drops every span after counting
// it, so that a benchmark measures weft's and the SDK's cost of producing
// spans and not an exporter's network I/O.
type discardExporter struct {
	spans atomic.Int64
	links atomic.Int64
}

var _ sdktrace.SpanExporter = (*discardExporter)(nil)

func (e *discardExporter) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	var links int
	for _, s := range spans {
		links += len(s.Links())
	}
	e.spans.Add(int64(len(spans)))
	e.links.Add(int64(links))
	return nil
}

func (e *discardExporter) Shutdown(context.Context) error { return nil }
