package serve

import (
	"context"
	"sync"
	"time"

	"github.com/weftstream/weft/processors"
	"github.com/weftstream/weft/tracing"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// MetricProcessDuration is the histogram of the processing duration of
// every input record, by group: Prometheus sees it as
// weft_process_duration_seconds (_bucket, _sum, _count).
const MetricProcessDuration = "weft.process.duration"

// durations produces weft.process.duration from the processors' Latency
// histograms, which count every record lock-free on its path. The OTel
// metric API has no observable (pre-aggregated) histogram, and a
// synchronous one would cost every record an attribute-set lookup and a
// lock; an sdkmetric.Producer hands the SDK's reader histograms aggregated
// elsewhere, so the Prometheus exporter reads the counts themselves when
// scraped.
type durations struct {
	mu      sync.Mutex
	sources []durationSource
}

// durationSource is the Latency of one observed group.
type durationSource struct {
	latency *processors.Latency
	attrs   attribute.Set // group
	start   time.Time     // when observed: the start of its cumulative series
}

// add observes the processing durations of group.
func (d *durations) add(l *processors.Latency, group string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.sources = append(d.sources, durationSource{latency: l,
		attrs: attribute.NewSet(attribute.String("group", group)), start: time.Now()})
}

// clear stops observing every group.
func (d *durations) clear() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.sources = nil
}

// Produce implements sdkmetric.Producer: a cumulative histogram in
// seconds per observed group.
func (d *durations) Produce(context.Context) ([]metricdata.ScopeMetrics, error) {
	d.mu.Lock()
	sources := d.sources
	d.mu.Unlock()
	if len(sources) == 0 {
		return nil, nil
	}
	bounds := make([]float64, processors.LatencyBuckets)
	for i, b := range processors.LatencyBounds() {
		bounds[i] = b.Seconds()
	}
	now := time.Now()
	points := make([]metricdata.HistogramDataPoint[float64], 0, len(sources))
	for _, s := range sources {
		snap := s.latency.Snapshot()
		points = append(points, metricdata.HistogramDataPoint[float64]{
			Attributes: s.attrs, StartTime: s.start, Time: now,
			Count: snap.Count, Bounds: bounds, BucketCounts: snap.Counts, Sum: snap.Sum.Seconds(),
		})
	}
	return []metricdata.ScopeMetrics{{
		Scope: instrumentation.Scope{Name: tracing.ScopeName},
		Metrics: []metricdata.Metrics{{
			Name: MetricProcessDuration, Unit: "s",
			Description: "Duration of the processing of an input record, from the start of weft's callback to its end",
			Data:        metricdata.Histogram[float64]{Temporality: metricdata.CumulativeTemporality, DataPoints: points},
		}},
	}}, nil
}
