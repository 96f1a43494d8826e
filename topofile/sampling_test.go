package topofile_test

import (
	"fmt"
	"testing"

	"github.com/weftstream/weft/processors"
	"github.com/weftstream/weft/topofile"
	"github.com/weftstream/weft/topology"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// A stream's sample ratio applies to the traces its records start: clicks
// at 0 are processed but not traced (nor is the table group downstream,
// which follows the parent's decision), orders keep the topology's
// sampler (parent-based, always on: the default of OTEL_TRACES_SAMPLER).
func TestStreamSampleRatio(t *testing.T) {
	f, err := topofile.Load("sampled.yaml", []byte(`app: shop
streams:
  clicks: {topic: clicks, sample_ratio: 0}
  orders: {topic: orders}
pipelines:
  - name: clicks-per-user
    from: clicks
    steps:
      - group_by: "value.user"
      - count: {}
  - name: orders-per-user
    from: orders
    steps:
      - group_by_key: {}
      - count: {}
`))
	if err != nil {
		t.Fatal(err)
	}
	spans := tracetest.NewSpanRecorder()
	provider := func(s sdktrace.Sampler) trace.TracerProvider {
		return sdktrace.NewTracerProvider(sdktrace.WithSampler(s), sdktrace.WithSpanProcessor(spans))
	}
	c, err := topology.Compile(f.Topology,
		topology.WithProcessorOptions(processors.WithTracerProvider(provider(sdktrace.ParentBased(sdktrace.AlwaysSample())))),
		topology.WithSampledProviders(func(r float64) trace.TracerProvider {
			return provider(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(r)))
		}))
	if err != nil {
		t.Fatal(err)
	}
	tt := runOnTester(t, c)
	for i := range 20 {
		tt.Consume("clicks", fmt.Sprint("c", i), []byte(`{"user":"ann"}`))
		tt.Consume("orders", "ann", []byte(`{}`))
	}
	if v := tt.TableValue("shop-clicks-per-user-table", "ann"); v == nil || v.(*processors.Stored).Value != int64(20) {
		t.Fatalf("clicks counted: %v, want 20", v)
	}
	byName := map[string]int{}
	for _, s := range spans.Ended() {
		byName[s.Name()]++
	}
	want := map[string]int{"process orders": 20}
	if fmt.Sprint(byName) != fmt.Sprint(want) {
		t.Errorf("spans %v, want %v", byName, want)
	}
}
