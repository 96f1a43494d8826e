package tracing

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
)

// MetricSpansDropped is the counter of spans weft ended but did not
// export, with error.type queue_full (the span queue was full) or
// export_failed (the exporter returned an error for the batch).
const MetricSpansDropped = "weft.spans.dropped"

// DefaultDropWarningInterval is how often, at most, weft logs a warning
// with the number of spans dropped since the previous one.
const DefaultDropWarningInterval = 10 * time.Second

// Values of error.type on MetricSpansDropped.
const (
	DropQueueFull    = "queue_full"
	DropExportFailed = "export_failed"
)

// spanQueue is the span processor weft exports through: the OTel SDK's
// BatchSpanProcessor, with every span it loses counted.
//
// The SDK's processor drops a span silently when its queue is full: it
// counts drops in an unexported field, and reports them only through its
// experimental self-observability (OTEL_GO_X_OBSERVABILITY, on the global
// meter provider), which weft must not depend on. So spanQueue keeps the
// SDK's queue and batching but makes the drop decision itself, exactly:
// it counts the spans handed to the SDK and not yet through the exporter
// (pending: the SDK's queue plus the batch being exported, decremented by
// exportCounter when ExportSpans returns) and drops a span when pending
// would exceed the queue size. The SDK processor runs in blocking mode with
// a queue of that size, so it never drops or waits itself: pending never
// exceeds its capacity. In blocking mode spanQueue admits every span, and
// the SDK waits for room, slowing the caller to the exporter's pace.
// Spans in a batch the exporter fails are counted as export_failed.
//
// Each loss adds to the MetricSpansDropped counter and to a tally that a
// goroutine logs as a warning at most once per interval (and once more at
// Shutdown), so that nothing is lost silently.
type spanQueue struct {
	bsp     sdktrace.SpanProcessor
	limit   int64 // admission bound; 0 in blocking mode
	pending atomic.Int64
	stopped atomic.Bool
	drops   *dropTally
}

var _ sdktrace.SpanProcessor = (*spanQueue)(nil)

// spanQueueConfig configures newSpanQueue.
type spanQueueConfig struct {
	queueSize, batchSize int
	blocking             bool
	warnEvery            time.Duration
	log                  *slog.Logger
	meter                metric.Meter
}

// newSpanQueue returns the processor exporting through exp.
func newSpanQueue(exp sdktrace.SpanExporter, cfg spanQueueConfig) (*spanQueue, error) {
	drops, err := newDropTally(cfg)
	if err != nil {
		return nil, err
	}
	q := &spanQueue{drops: drops}
	if !cfg.blocking {
		q.limit = int64(cfg.queueSize)
	}
	q.bsp = sdktrace.NewBatchSpanProcessor(&exportCounter{exp: exp, q: q},
		sdktrace.WithMaxQueueSize(cfg.queueSize),
		sdktrace.WithMaxExportBatchSize(min(cfg.batchSize, cfg.queueSize)),
		sdktrace.WithBlocking())
	drops.start()
	return q, nil
}

// OnStart does nothing (the SDK's batch processor does nothing either).
func (q *spanQueue) OnStart(context.Context, sdktrace.ReadWriteSpan) {}

// OnEnd hands a sampled span to the SDK's queue, or counts it as dropped
// when the queue is full (not in blocking mode).
func (q *spanQueue) OnEnd(s sdktrace.ReadOnlySpan) {
	// The SDK ignores unsampled spans and spans ended after Shutdown.
	if !s.SpanContext().IsSampled() || q.stopped.Load() {
		return
	}
	if q.limit > 0 && q.pending.Add(1) > q.limit {
		q.pending.Add(-1)
		q.drops.add(dropQueueFull, 1)
		return
	}
	q.bsp.OnEnd(s)
}

// ForceFlush exports the queued spans.
func (q *spanQueue) ForceFlush(ctx context.Context) error { return q.bsp.ForceFlush(ctx) }

// Shutdown exports the queued spans, stops the exporter and logs the
// spans dropped since the last warning.
func (q *spanQueue) Shutdown(ctx context.Context) error {
	q.stopped.Store(true)
	err := q.bsp.Shutdown(ctx)
	q.drops.stop()
	return err
}

// exportCounter wraps the exporter: spans leave the pending count when
// ExportSpans returns, and a failed batch counts as dropped.
type exportCounter struct {
	exp sdktrace.SpanExporter
	q   *spanQueue
}

func (e *exportCounter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	err := e.exp.ExportSpans(ctx, spans)
	if e.q.limit > 0 {
		e.q.pending.Add(-int64(len(spans)))
	}
	if err != nil {
		e.q.drops.add(dropExportFailed, int64(len(spans)))
	}
	return err
}

func (e *exportCounter) Shutdown(ctx context.Context) error { return e.exp.Shutdown(ctx) }

// The kinds of loss, indexes into dropTally's counts.
const (
	dropQueueFull = iota
	dropExportFailed
	dropKinds
)

// dropTally counts dropped spans: in total, since the last warning, and in
// the MetricSpansDropped counter.
type dropTally struct {
	total, since [dropKinds]atomic.Int64
	counter      metric.Int64Counter
	attrs        [dropKinds][]metric.AddOption
	blocking     bool
	every        time.Duration
	log          *slog.Logger
	done         chan struct{}
	wg           sync.WaitGroup
	stopOnce     sync.Once
}

func newDropTally(cfg spanQueueConfig) (*dropTally, error) {
	c, err := cfg.meter.Int64Counter(MetricSpansDropped, metric.WithUnit("{span}"),
		metric.WithDescription("Spans ended but not exported: error.type=queue_full when the span queue was full, export_failed when the exporter failed."))
	if err != nil {
		return nil, fmt.Errorf("create the %s counter: %w", MetricSpansDropped, err)
	}
	d := &dropTally{counter: c, blocking: cfg.blocking, every: cfg.warnEvery, log: cfg.log, done: make(chan struct{})}
	for kind, name := range [dropKinds]string{DropQueueFull, DropExportFailed} {
		d.attrs[kind] = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(semconv.ErrorTypeKey.String(name)))}
	}
	return d, nil
}

func (d *dropTally) add(kind int, n int64) {
	d.total[kind].Add(n)
	d.since[kind].Add(n)
	d.counter.Add(context.Background(), n, d.attrs[kind]...)
}

// dropped returns the number of spans dropped so far.
func (d *dropTally) dropped() int64 {
	var n int64
	for i := range d.total {
		n += d.total[i].Load()
	}
	return n
}

func (d *dropTally) start() {
	d.wg.Go(func() {
		t := time.NewTicker(d.every)
		defer t.Stop()
		for {
			select {
			case <-d.done:
				return
			case <-t.C:
				d.warn()
			}
		}
	})
}

// stop ends the warning goroutine and logs what it has not logged yet.
func (d *dropTally) stop() {
	d.stopOnce.Do(func() {
		close(d.done)
		d.wg.Wait()
		d.warn()
	})
}

// warn logs the spans dropped since the last warning, if any.
func (d *dropTally) warn() {
	full, failed := d.since[dropQueueFull].Swap(0), d.since[dropExportFailed].Swap(0)
	if full == 0 && failed == 0 {
		return
	}
	hint := "the trace collector does not keep up: raise OTEL_BSP_MAX_QUEUE_SIZE, or set WEFT_TRACES_BLOCKING=true to slow processing down instead of dropping spans"
	if full == 0 {
		hint = "the trace exporter failed; see its error"
	}
	d.log.Warn("spans dropped", "queue_full", full, "export_failed", failed,
		"total", d.dropped(), "blocking", d.blocking, "hint", hint)
}
