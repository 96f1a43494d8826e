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
// testdata/cqrs/bank.yaml, join and window with the Go DSL and the Go
// codecs and functions goka-leveldb uses.
func weftTopology(s childSpec) (*topology.Topology, error) {
	switch s.Workload {
	case workloadCount:
		b := topology.New(s.App)
		b.Stream(s.Input, new(codec.Bytes)).GroupByKey().Count("counts")
		return b.Build()
	case workloadBank:
		return loadBankYAML(s.BankYAML, s.App, s.Input)
	case workloadJoin:
		// A stream-table join (a lookup of the customer table, as YAML's
		// `join: {table: customers, ...}`), then an aggregation per key.
		b := topology.New(s.App)
		customers := b.Table(s.Customers, jsonCodec[customer]{})
		b.Stream(s.Input, jsonCodec[order]{}).
			Join("enrich", customers, func(_ string, v, other any) (any, error) {
				o, _ := v.(*order)
				c, _ := other.(*customer)
				return joinOrder(o, c)
			}).
			GroupByKey().
			Aggregate("totals", func() any { return new(customerTotal) }, func(_ string, v, agg any) (any, error) {
				e, ok := v.(*enrichedOrder)
				if !ok {
					return nil, fmt.Errorf("joined value %T, want *enrichedOrder", v)
				}
				cur, _ := agg.(*customerTotal)
				return addOrder(cur, e), nil
			}, jsonCodec[customerTotal]{})
		return b.Build()
	case workloadWindow:
		// Event time from the value; tumbling windows (YAML: `window:
		// {size: 1m, grace: 1h}`), then count (`count: {}`).
		b := topology.New(s.App)
		b.Stream(s.Input, jsonCodec[windowEvent]{}, topology.WithTimestampExtractor(func(_ string, v any) (time.Time, error) {
			e, ok := v.(*windowEvent)
			if !ok {
				return time.Time{}, fmt.Errorf("value %T, want *windowEvent", v)
			}
			return time.UnixMilli(e.TS), nil
		})).
			GroupByKey().
			WindowedBy("minutes", topology.Tumbling(windowSize, windowGrace)).
			Count("window-counts")
		return b.Build()
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
	table, err := resultTable(c)
	if err != nil {
		return childResult{}, fmt.Errorf("weft: %w", err)
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
		Seen:        int64(s.Events),
		Table:       table,
		Spans:       exp.spans.Load(),
		Links:       exp.links.Load(),
		CacheHits:   res.cacheHits,
		CacheMisses: res.cacheMisses,
		RunNanos:    int64(res.elapsed - res.stopping),
		StopNs:      int64(res.stopping + time.Since(stopStart)),
	}
	if tp != nil && out.Spans == 0 {
		return out, fmt.Errorf("weft: tracing on, but no span was exported")
	}
	return out, nil
}

// resultTable is the table topic of the compiled workload: its only group
// with a table (window has a second group, without one, that feeds the
// aggregation's repartition topic).
func resultTable(c *topology.Compiled) (string, error) {
	var tables []string
	for _, g := range c.Groups {
		if g.Table != "" {
			tables = append(tables, g.Table)
		}
	}
	if len(tables) != 1 {
		return "", fmt.Errorf("want one group with a table, got:\n%s", c)
	}
	return tables[0], nil
}
