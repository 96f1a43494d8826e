package processors_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/weftstream/weft/processors"
	"github.com/weftstream/weft/tracing"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// fakeContext is the goka.Context of one record, with the key's table
// value kept in memory as the envelope codec stores it.
type fakeContext struct {
	topic   goka.Stream
	key     string
	offset  int64
	headers goka.Headers
	table   map[string][]byte
	codec   goka.Codec
	emitted int
}

func (c *fakeContext) Topic() goka.Stream                          { return c.topic }
func (c *fakeContext) Key() string                                 { return c.key }
func (c *fakeContext) Partition() int32                            { return 0 }
func (c *fakeContext) Offset() int64                               { return c.offset }
func (c *fakeContext) Group() goka.Group                           { return "bench" }
func (c *fakeContext) Headers() goka.Headers                       { return c.headers }
func (c *fakeContext) Timestamp() time.Time                        { return time.Unix(1700000000, 0) }
func (c *fakeContext) Join(goka.Table) any                         { return nil }
func (c *fakeContext) Lookup(goka.Table, string) any               { return nil }
func (c *fakeContext) Fail(err error)                              { panic(err) }
func (c *fakeContext) Context() context.Context                    { return context.Background() }
func (c *fakeContext) DeferCommit() func(error)                    { return func(error) {} }
func (c *fakeContext) Delete(...goka.ContextOption)                { delete(c.table, c.key) }
func (c *fakeContext) Loopback(string, any, ...goka.ContextOption) {}
func (c *fakeContext) Emit(goka.Stream, string, any, ...goka.ContextOption) {
	c.emitted++
}

func (c *fakeContext) Value() any {
	data, ok := c.table[c.key]
	if !ok {
		return nil
	}
	v, err := c.codec.Decode(data)
	if err != nil {
		panic(err)
	}
	return v
}

func (c *fakeContext) SetValue(v any, _ ...goka.ContextOption) {
	data, err := c.codec.Encode(v)
	if err != nil {
		panic(err)
	}
	c.table[c.key] = data
}

type discardExporter struct{}

func (discardExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardExporter) Shutdown(context.Context) error                             { return nil }

// BenchmarkHandle measures weft's per-record work around a counting
// handler (process span, envelope decode/encode, previous_value link,
// effectively-once check) without Kafka, with tracing off, at 100% and at
// 1% (parent-based; 1% of the input traces carry the sampled flag, as an
// upstream 1% sampler would set it).
func BenchmarkHandle(b *testing.B) {
	modes := []struct {
		name string
		tp   func() trace.TracerProvider
	}{
		{"off", func() trace.TracerProvider { return tracing.Unexported() }},
		{"100pct", func() trace.TracerProvider {
			return sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()),
				sdktrace.WithBatcher(discardExporter{}, sdktrace.WithMaxQueueSize(1<<16)))
		}},
		{"1pct", func() trace.TracerProvider {
			return sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.01))),
				sdktrace.WithBatcher(discardExporter{}, sdktrace.WithMaxQueueSize(1<<16)))
		}},
	}
	const keys = 1000
	headers := make([]goka.Headers, 4096)
	for i := range headers {
		flags := "00"
		if i%100 == 0 {
			flags = "01"
		}
		headers[i] = goka.Headers{"traceparent": []byte(fmt.Sprintf("00-%032x-%016x-%s", i+1, i+1, flags))}
	}
	for _, m := range modes {
		b.Run(m.name, func(b *testing.B) {
			rt := processors.NewRuntime(processors.WithTracerProvider(m.tp()))
			processors.DefineGroup(rt, "bench", goka.Input("in", new(codec.Bytes), nil), processors.Persist(new(codec.Int64)))
			cb := processors.Handle(rt, func(b []byte) ([]byte, error) { return b, nil }, func(ctx goka.Context, _ []byte) error {
				var n int64
				if v := ctx.Value(); v != nil {
					n = v.(int64)
				}
				ctx.SetValue(n + 1)
				return nil
			})
			ctx := &fakeContext{topic: "in", table: map[string][]byte{}, codec: processors.EnvelopeCodec(new(codec.Int64))}
			keyNames := make([]string, keys)
			for i := range keyNames {
				keyNames[i] = fmt.Sprintf("key-%d", i)
			}
			payload := []byte(`{"x":1}`)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				ctx.key, ctx.offset, ctx.headers = keyNames[i%keys], int64(i), headers[i%len(headers)]
				cb(ctx, payload)
			}
		})
	}
}
