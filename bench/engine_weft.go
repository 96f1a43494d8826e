package main

import (
	"context"
	"fmt"
	"time"

	"github.com/lovoo/goka/codec"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/weftstream/weft/kafkaclient"
	"github.com/weftstream/weft/processors"
	"github.com/weftstream/weft/topology"
	"github.com/weftstream/weft/tracing"
)

// traceRatio is the sampling ratio of weft-1pct.
const traceRatio = 0.01

// weftTopology is the workload as weft users write it: count with the Go
// DSL (what a YAML `count: {}` pipeline compiles to), bank as
// testdata/cqrs/bank.yaml.
func weftTopology(s childSpec) (*topology.Topology, error) {
	switch s.Workload {
	case workloadCount:
		b := topology.New(s.App)
		b.Stream(s.Input, new(codec.Bytes)).GroupByKey().Count("counts")
		return b.Build()
	case workloadBank:
		return loadBankYAML(s.BankYAML, s.App, s.Input)
	}
	return nil, fmt.Errorf("weft: no workload %q", s.Workload)
}

// runWeft compiles the workload's topology and runs it like `weft run`:
// engineWeft with tracing off (the runtime's default, never-sampling
// provider), engineWeft1 and engineWeft100 with an SDK tracer provider
// (1% parent-based ratio sampler, or always sample), default batch span
// processor, and an exporter that discards the spans.
func runWeft(ctx context.Context, s childSpec, timeout time.Duration) (childResult, error) {
	top, err := weftTopology(s)
	if err != nil {
		return childResult{}, err
	}
	kcfg := kafkaclient.Config{Brokers: s.Brokers}
	exp := new(discardExporter)
	var tp *tracing.SampledProvider
	opts := []processors.Option{processors.WithKafka(kcfg)}
	switch s.Engine {
	// As weft run builds it (tracing.Setup with OTEL_TRACES_SAMPLER): a
	// provider that knows its sampler. The batch span processor blocks
	// instead of dropping when its queue is full: every span is exported,
	// and its whole cost is measured.
	case engineWeft1:
		tp = tracing.NewSampledProvider(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(traceRatio)),
			sdktrace.WithBatcher(exp, sdktrace.WithBlocking()))
	case engineWeft100:
		tp = tracing.NewSampledProvider(sdktrace.AlwaysSample(), sdktrace.WithBatcher(exp, sdktrace.WithBlocking()))
	}
	if tp != nil {
		opts = append(opts, processors.WithTracerProvider(tp))
	}
	c, err := topology.Compile(top, topology.WithProcessorOptions(opts...))
	if err != nil {
		return childResult{}, fmt.Errorf("weft: compile: %w", err)
	}
	if len(c.Groups) != 1 || c.Groups[0].Table == "" {
		return childResult{}, fmt.Errorf("weft: want one group with a table, got:\n%s", c)
	}
	res, err := runTopology(ctx, kcfg, c, s.Events, s.StateDir, timeout)
	if err != nil {
		return childResult{}, fmt.Errorf("weft: %w", err)
	}
	stopStart := time.Now()
	if tp != nil {
		// Exports what the batch span processor still holds.
		if err := tp.Shutdown(ctx); err != nil {
			return childResult{}, fmt.Errorf("weft: shut down tracer provider: %w", err)
		}
	}
	out := childResult{
		Seen:     int64(s.Events),
		Table:    c.Groups[0].Table,
		Spans:    exp.spans.Load(),
		Links:    exp.links.Load(),
		RunNanos: int64(res.elapsed - res.stopping),
		StopNs:   int64(res.stopping + time.Since(stopStart)),
	}
	if tp != nil && out.Spans == 0 {
		return out, fmt.Errorf("weft: tracing on, but no span was exported")
	}
	return out, nil
}
