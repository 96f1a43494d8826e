package serve

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/lovoo/goka"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/weftstream/weft/processors"
	"github.com/weftstream/weft/tracing"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
)

// Metric names (OTel); Prometheus sees them with dots as underscores and
// counters with the suffix _total (weft_records_processed_total).
const (
	MetricRecordsProcessed = "weft.records.processed"
	MetricRecordsRejected  = "weft.records.rejected"
	MetricRecordsReplayed  = "weft.records.replayed"
	// MetricLinksDropped counts contributors of sampled traces that a
	// table version or coalesced output could not link (its bound was
	// reached; processors.Tally.LinksDropped).
	MetricLinksDropped       = "weft.links.dropped"
	MetricPartitionsAssigned = "weft.table.partitions.assigned"
	MetricPartitionsReady    = "weft.table.partitions.ready"
	MetricCacheFlushes       = "weft.cache.flushes"
	MetricConsumerLag        = "weft.consumer.lag"
	MetricConsumerDelay      = "weft.consumer.delay"
	MetricCacheSize          = "weft.cache.size"
	MetricCacheEntries       = "weft.cache.entries"
	MetricStoreSize          = "weft.store.size"
	MetricRestoreRemaining   = "weft.table.restore.remaining"
	// MetricCacheLookups counts records' lookups of their key in the
	// record cache, by result (hit, miss): the hit rate.
	MetricCacheLookups = "weft.cache.lookups"
)

// Metrics is the OpenTelemetry meter provider of a weft process, exported
// in the Prometheus text format through a registry of its own (no global
// state): serve its Handler with WithMetrics. Make one per process, give
// its MeterProvider to tracing.Setup (tracing.WithMeterProvider) so that
// weft.spans.dropped is exported too, and Observe the processors.
//
// Every weft metric is observed when scraped from counts the processors
// keep anyway; the only one kept for it on the path of a record is the
// processing duration (processors.Latency: two clock reads and two atomic
// adds, no allocation).
type Metrics struct {
	provider  *sdkmetric.MeterProvider
	handler   http.Handler
	regs      []metric.Registration
	durations *durations // weft.process.duration (duration.go)
}

// NewMetrics returns the meter provider and its Prometheus handler; extra
// readers (e.g. the one OTEL_METRICS_EXPORTER names) read the same
// metrics, except weft.process.duration, which only the Prometheus handler
// serves (a reader takes the producer of that histogram when it is made,
// and autoexport attaches producers only through a process-wide registry).
// res describes the process (nil: resource.Default()).
func NewMetrics(res *resource.Resource, extra ...sdkmetric.Reader) (*Metrics, error) {
	reg := prometheus.NewRegistry()
	durs := &durations{}
	exp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithProducer(durs))
	if err != nil {
		return nil, fmt.Errorf("create the Prometheus exporter: %w", err)
	}
	opts := []sdkmetric.Option{sdkmetric.WithReader(exp)}
	for _, r := range extra {
		opts = append(opts, sdkmetric.WithReader(r))
	}
	if res != nil {
		opts = append(opts, sdkmetric.WithResource(res))
	}
	return &Metrics{
		provider:  sdkmetric.NewMeterProvider(opts...),
		handler:   promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}),
		durations: durs,
	}, nil
}

// MeterProvider returns the provider whose metrics Handler serves.
func (m *Metrics) MeterProvider() metric.MeterProvider { return m.provider }

// Handler serves the metrics in the Prometheus text exposition format.
func (m *Metrics) Handler() http.Handler { return m.handler }

// Shutdown stops observing and shuts the provider (and its readers) down.
func (m *Metrics) Shutdown(ctx context.Context) error {
	var errs []error
	for _, r := range m.regs {
		errs = append(errs, r.Unregister())
	}
	m.regs = nil
	m.durations.clear()
	errs = append(errs, m.provider.Shutdown(ctx))
	return errors.Join(errs...)
}

// observed is one processor and the attributes of its series.
type observed struct {
	p      *processors.Processor
	tally  *processors.Tally
	table  *processors.TableReader // nil for a stateless group
	group  string
	attrs  metric.MeasurementOption // group
	tattrs metric.MeasurementOption // group, table
}

// Observe registers the metrics of procs, read when scraped:
//
//   - weft.records.processed, weft.records.replayed (group) and
//     weft.records.rejected (group, reason): the processor's Tally;
//   - weft.links.dropped (group): contributors of sampled traces not
//     linked because their version or coalesced output was full (Tally);
//   - weft.process.duration (group): the histogram of the processing
//     duration of every input record handled (processed, replayed or
//     rejected), in seconds, from the processor's Latency;
//   - weft.table.partitions.assigned and weft.table.partitions.ready
//     (group, table): the table partitions this instance holds, and those
//     restored and answering queries;
//   - weft.cache.flushes (group, table): the record cache's flush cycles;
//   - weft.cache.size and weft.cache.entries (group, table): the bytes
//     (estimated, what the budget bounds) and keys the record cache holds;
//   - weft.store.size (group, table, partition): the bytes on disk of each
//     partition's store open here;
//   - weft.consumer.lag (group, topic, partition): records of an input
//     partition not processed yet, from goka's stats (the high watermark
//     is sampled by goka every few seconds);
//   - weft.consumer.delay (group, topic, partition): how old (by its
//     Kafka timestamp) the last record processed of an input partition
//     was when it was processed, from goka's stats;
//   - weft.table.restore.remaining (group, table, partition): changelog
//     records a restoring partition has still to restore (0 once
//     restored), from goka's stats.
func (m *Metrics) Observe(procs ...*processors.Processor) error {
	meter := m.provider.Meter(tracing.ScopeName)
	processed, err1 := meter.Int64ObservableCounter(MetricRecordsProcessed, metric.WithUnit("{record}"),
		metric.WithDescription("Input records processed"))
	rejected, err2 := meter.Int64ObservableCounter(MetricRecordsRejected, metric.WithUnit("{record}"),
		metric.WithDescription("Input records rejected (sent to the dead-letter topic), by reason"))
	replayed, err3 := meter.Int64ObservableCounter(MetricRecordsReplayed, metric.WithUnit("{record}"),
		metric.WithDescription("Redelivered input records skipped because the state already includes them"))
	assigned, err4 := meter.Int64ObservableGauge(MetricPartitionsAssigned, metric.WithUnit("{partition}"),
		metric.WithDescription("Table partitions assigned to this instance (restored or restoring)"))
	ready, err5 := meter.Int64ObservableGauge(MetricPartitionsReady, metric.WithUnit("{partition}"),
		metric.WithDescription("Table partitions restored on this instance and answering queries"))
	flushes, err6 := meter.Int64ObservableCounter(MetricCacheFlushes, metric.WithUnit("{flush}"),
		metric.WithDescription("Flush cycles of the record cache to the store and changelog"))
	lag, err7 := meter.Int64ObservableGauge(MetricConsumerLag, metric.WithUnit("{record}"),
		metric.WithDescription("Records of an input partition not processed yet"))
	delay, err8 := meter.Float64ObservableGauge(MetricConsumerDelay, metric.WithUnit("s"),
		metric.WithDescription("Age (by its Kafka timestamp) of the last record processed of an input partition when it was processed"))
	cacheSize, err9 := meter.Int64ObservableGauge(MetricCacheSize, metric.WithUnit("By"),
		metric.WithDescription("Bytes (estimated) the record cache holds"))
	cacheEntries, err10 := meter.Int64ObservableGauge(MetricCacheEntries, metric.WithUnit("{key}"),
		metric.WithDescription("Keys the record cache holds"))
	storeSize, err11 := meter.Int64ObservableGauge(MetricStoreSize, metric.WithUnit("By"),
		metric.WithDescription("Bytes on disk of a table partition's store"))
	restore, err12 := meter.Int64ObservableGauge(MetricRestoreRemaining, metric.WithUnit("{record}"),
		metric.WithDescription("Changelog records a restoring table partition has still to restore"))
	lookups, err13 := meter.Int64ObservableCounter(MetricCacheLookups, metric.WithUnit("{lookup}"),
		metric.WithDescription("Lookups of records' keys in the record cache, by result (hit: cached, miss: read from the store)"))
	linksDropped, err14 := meter.Int64ObservableCounter(MetricLinksDropped, metric.WithUnit("{link}"),
		metric.WithDescription("Contributors of sampled traces not linked by the version or coalesced output they made, because it listed as many as it may"))
	if err := errors.Join(err1, err2, err3, err4, err5, err6, err7, err8, err9, err10, err11, err12, err13, err14); err != nil {
		return fmt.Errorf("create the metrics: %w", err)
	}
	var obs []observed
	for _, p := range procs {
		if p == nil {
			continue
		}
		o := observed{p: p, tally: p.Tally(), table: p.TableReader(), group: string(p.Group())}
		o.attrs = metric.WithAttributeSet(attribute.NewSet(attribute.String("group", o.group)))
		if o.table != nil {
			o.tattrs = metric.WithAttributeSet(attribute.NewSet(attribute.String("group", o.group), attribute.String("table", o.table.Topic())))
		}
		obs = append(obs, o)
		if l := p.Latency(); l != nil {
			m.durations.add(l, o.group)
		}
	}
	reg, err := meter.RegisterCallback(func(ctx context.Context, ob metric.Observer) error {
		for _, o := range obs {
			if t := o.tally; t != nil {
				ob.ObserveInt64(processed, t.Processed(), o.attrs)
				ob.ObserveInt64(replayed, t.Replayed(), o.attrs)
				ob.ObserveInt64(linksDropped, t.LinksDropped(), o.attrs)
				for reason, n := range t.RejectedByReason() {
					ob.ObserveInt64(rejected, n, metric.WithAttributes(attribute.String("group", o.group), attribute.String("reason", reason)))
				}
			}
			if o.table != nil {
				ob.ObserveInt64(assigned, int64(len(o.table.Assigned())), o.tattrs)
				ob.ObserveInt64(ready, int64(len(o.table.Served())), o.tattrs)
				ob.ObserveInt64(flushes, o.p.CacheFlushes(), o.tattrs)
				ob.ObserveInt64(cacheSize, o.p.CacheBytes(), o.tattrs)
				ob.ObserveInt64(cacheEntries, o.p.CacheEntries(), o.tattrs)
				hits, misses := o.p.CacheLookups()
				ob.ObserveInt64(lookups, hits, metric.WithAttributes(attribute.String("group", o.group), attribute.String("table", o.table.Topic()), attribute.String("result", "hit")))
				ob.ObserveInt64(lookups, misses, metric.WithAttributes(attribute.String("group", o.group), attribute.String("table", o.table.Topic()), attribute.String("result", "miss")))
				for p, n := range o.table.StoreBytes() {
					ob.ObserveInt64(storeSize, n, o.partitionAttrs(p))
				}
			}
			observeStats(ctx, ob, statsInstruments{lag: lag, delay: delay, restore: restore}, o)
		}
		return nil
	}, processed, rejected, replayed, assigned, ready, flushes, lag, delay, cacheSize, cacheEntries, storeSize, restore, lookups, linksDropped)
	if err != nil {
		return fmt.Errorf("register the metrics callback: %w", err)
	}
	m.regs = append(m.regs, reg)
	return nil
}

// statsInstruments are the metrics read from goka's stats.
type statsInstruments struct {
	lag, restore metric.Int64ObservableGauge
	delay        metric.Float64ObservableGauge
}

// partitionAttrs are the attributes of a table partition's series.
func (o observed) partitionAttrs(p int32) metric.MeasurementOption {
	return metric.WithAttributes(attribute.String("group", o.group), attribute.String("table", o.table.Topic()), attribute.Int("partition", int(p)))
}

// observeStats observes, from goka's stats, the lag and delay of every
// input partition the processor consumes now and the restore progress of
// its table partitions. goka's OffsetLag is the high watermark (the next
// offset to be written) minus the offset of the last record processed:
// one when caught up.
func observeStats(ctx context.Context, ob metric.Observer, ins statsInstruments, o observed) {
	gp := o.p.Goka()
	if gp == nil {
		return
	}
	stats := gp.StatsWithContext(ctx)
	if stats == nil {
		return
	}
	for partition, ps := range stats.Group {
		if ps == nil {
			continue
		}
		for topic, in := range ps.Input {
			if in == nil {
				continue
			}
			attrs := metric.WithAttributes(attribute.String("group", o.group), attribute.String("topic", topic), attribute.Int("partition", int(partition)))
			ob.ObserveInt64(ins.lag, max(in.OffsetLag-1, 0), attrs)
			ob.ObserveFloat64(ins.delay, max(in.Delay.Seconds(), 0), attrs)
		}
		if ts := ps.TableStats; ts != nil && o.table != nil {
			var remaining int64
			if ts.Status == goka.PartitionRecovering && ts.Recovery != nil {
				remaining = max(ts.Recovery.Hwm-(ts.Recovery.Offset+1), 0)
			}
			ob.ObserveInt64(ins.restore, remaining, o.partitionAttrs(partition))
		}
	}
}
