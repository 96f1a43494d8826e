package processors_test

import (
	"fmt"
	"testing"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/weftstream/weft/processors"
	"github.com/weftstream/weft/tracing"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// BenchmarkCoalesceAdd measures the per-record path of a coalesced emit:
// the record's process span (Handle) and Coalescer.Add, with tracing off
// and at 100%. The buffer is replaced every flushEvery records (outside
// the timer), as a flush would empty it.
func BenchmarkCoalesceAdd(b *testing.B) {
	modes := []struct {
		name string
		tp   func() trace.TracerProvider
	}{
		{"off", func() trace.TracerProvider { return tracing.Unexported() }},
		{"100pct", func() trace.TracerProvider {
			return sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()),
				sdktrace.WithBatcher(discardExporter{}, sdktrace.WithMaxQueueSize(1<<16)))
		}},
	}
	const (
		keys       = 1000
		flushEvery = 4096
	)
	headers := make([]goka.Headers, 4096)
	for i := range headers {
		headers[i] = goka.Headers{"traceparent": []byte(fmt.Sprintf("00-%032x-%016x-01", i+1, i+1))}
	}
	keyNames := make([]string, keys)
	for i := range keyNames {
		keyNames[i] = fmt.Sprintf("key-%d", i)
	}
	for _, m := range modes {
		b.Run(m.name, func(b *testing.B) {
			rt := processors.NewRuntime(processors.WithTracerProvider(m.tp()))
			processors.DefineGroup(rt, "bench", goka.Input("in", new(codec.Bytes), nil), processors.Persist(new(codec.Int64)))
			newCo := func() *processors.Coalescer {
				return processors.NewCoalescer(rt, "bench", "out", new(codec.Bytes), []processors.CoalesceOption{processors.FlushEvery(0)})
			}
			co := newCo()
			cb := processors.Handle(rt, func(b []byte) ([]byte, error) { return b, nil }, func(ctx goka.Context, v []byte) error {
				co.Add(ctx, ctx.Key(), v)
				return nil
			})
			ctx := &fakeContext{topic: "in", table: map[string][]byte{}, codec: processors.EnvelopeCodec(new(codec.Int64))}
			payload := []byte(`{"x":1}`)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if i%flushEvery == flushEvery-1 {
					b.StopTimer()
					co = newCo()
					b.StartTimer()
				}
				ctx.key, ctx.offset, ctx.headers = keyNames[i%keys], int64(i), headers[i%len(headers)]
				cb(ctx, payload)
			}
		})
	}
}
