package tracing

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// gateExporter holds every export until release is closed.
type gateExporter struct {
	entered chan struct{} // gets a value when the first export starts
	release chan struct{}
	fail    error

	mu       sync.Mutex
	exported int
}

func newGateExporter() *gateExporter {
	return &gateExporter{entered: make(chan struct{}, 1), release: make(chan struct{})}
}

func (e *gateExporter) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	select {
	case e.entered <- struct{}{}:
	default:
	}
	<-e.release
	if e.fail != nil {
		return e.fail
	}
	e.mu.Lock()
	e.exported += len(spans)
	e.mu.Unlock()
	return nil
}

func (e *gateExporter) Shutdown(context.Context) error { return nil }

func (e *gateExporter) count() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.exported
}

// logRecorder is a slog.Handler keeping the records it handles.
type logRecorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r.Clone())
	return nil
}
func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logRecorder) WithGroup(string) slog.Handler      { return h }

// warnings returns the "spans dropped" warnings as their int64 attributes.
func (h *logRecorder) warnings() []map[string]int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []map[string]int64
	for _, r := range h.records {
		if r.Level != slog.LevelWarn || r.Message != "spans dropped" {
			continue
		}
		m := map[string]int64{}
		r.Attrs(func(a slog.Attr) bool {
			if a.Value.Kind() == slog.KindInt64 {
				m[a.Key] = a.Value.Int64()
			}
			return true
		})
		out = append(out, m)
	}
	return out
}

// droppedMetric returns the MetricSpansDropped sums by error.type.
func droppedMetric(t *testing.T, r *sdkmetric.ManualReader) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != MetricSpansDropped {
				continue
			}
			sum, ok := m.Data.(metricdata.Sum[int64])
			if !ok || !sum.IsMonotonic {
				t.Fatalf("%s is a %T, want a monotonic int64 sum", m.Name, m.Data)
			}
			for _, dp := range sum.DataPoints {
				v, _ := dp.Attributes.Value(attribute.Key("error.type"))
				out[v.AsString()] += dp.Value
			}
		}
	}
	return out
}

type queueTest struct {
	p      *Providers
	exp    *gateExporter
	logs   *logRecorder
	reader *sdkmetric.ManualReader
}

func setupQueue(t *testing.T, queue int, opts ...SetupOption) *queueTest {
	t.Helper()
	q := &queueTest{exp: newGateExporter(), logs: &logRecorder{}, reader: sdkmetric.NewManualReader()}
	opts = append([]SetupOption{
		WithSpanExporter(q.exp), WithSpanQueueSize(queue), WithLogger(slog.New(q.logs)),
		WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(q.reader))),
		WithDropWarningInterval(10 * time.Millisecond),
	}, opts...)
	p, err := Setup(t.Context(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	q.p = p
	return q
}

// endSpans ends n sampled spans.
func (q *queueTest) endSpans(n int) {
	tr := q.p.Tracer.Tracer("test")
	for range n {
		_, s := tr.Start(context.Background(), "s")
		s.End()
	}
}

// With the exporter stuck on a full batch of a 4-span queue, every further
// span is dropped, counted in the metric, and logged.
func TestDroppedSpansAreCountedAndLogged(t *testing.T) {
	const queue, n = 4, 100
	q := setupQueue(t, queue)
	q.endSpans(queue) // one full batch: the exporter holds it
	<-q.exp.entered
	q.endSpans(n - queue) // the queue holds the 4 spans in export: all dropped

	deadline := time.Now().Add(5 * time.Second)
	for len(q.logs.warnings()) == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	close(q.exp.release)
	if err := q.p.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}

	exported := q.exp.count()
	if exported != queue {
		t.Fatalf("exported %d spans, want %d", exported, queue)
	}
	if got, want := q.p.DroppedSpans(), int64(n-exported); got != want || want != n-queue {
		t.Fatalf("DroppedSpans() = %d, want %d (n - exported)", got, want)
	}
	if got := droppedMetric(t, q.reader); got[DropQueueFull] != n-queue || got[DropExportFailed] != 0 {
		t.Fatalf("%s = %v, want %s=%d", MetricSpansDropped, got, DropQueueFull, n-queue)
	}
	ws := q.logs.warnings()
	if len(ws) == 0 {
		t.Fatal("no warning logged")
	}
	var logged int64
	for _, w := range ws {
		logged += w["queue_full"]
	}
	if logged != n-queue || ws[len(ws)-1]["total"] != n-queue {
		t.Fatalf("warnings %v: queue_full sums to %d, want %d", ws, logged, n-queue)
	}
}

// In blocking mode ending a span waits for room: nothing is dropped.
func TestBlockingSpanQueueDropsNothing(t *testing.T) {
	const queue, n = 4, 100
	q := setupQueue(t, queue, WithBlockingSpanQueue(true))
	q.endSpans(queue)
	<-q.exp.entered
	done := make(chan struct{})
	go func() {
		q.endSpans(n - queue) // blocks until the exporter is released
		close(done)
	}()
	close(q.exp.release)
	<-done
	if err := q.p.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := q.exp.count(); got != n {
		t.Fatalf("exported %d spans, want %d", got, n)
	}
	if q.p.DroppedSpans() != 0 || len(q.logs.warnings()) != 0 {
		t.Fatalf("blocking mode dropped %d spans, warnings %v", q.p.DroppedSpans(), q.logs.warnings())
	}
	if got := droppedMetric(t, q.reader); got[DropQueueFull] != 0 {
		t.Fatalf("%s = %v in blocking mode", MetricSpansDropped, got)
	}
}

// Spans of a batch the exporter fails are counted as export_failed.
func TestFailedExportsAreCounted(t *testing.T) {
	q := setupQueue(t, 16)
	q.exp.fail = errors.New("collector unavailable")
	close(q.exp.release)
	q.endSpans(3)
	// The SDK hands the export's error to otel.Handle, not to Shutdown.
	if err := q.p.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := droppedMetric(t, q.reader); got[DropExportFailed] != 3 || got[DropQueueFull] != 0 {
		t.Fatalf("%s = %v, want %s=3", MetricSpansDropped, got, DropExportFailed)
	}
	ws := q.logs.warnings()
	if len(ws) != 1 || ws[0]["export_failed"] != 3 {
		t.Fatalf("warnings %v, want one with export_failed=3", ws)
	}
}

func TestSpanQueueSettingsFromEnvironment(t *testing.T) {
	exp := newGateExporter()
	close(exp.release)
	t.Setenv("OTEL_BSP_MAX_QUEUE_SIZE", "7")
	t.Setenv("WEFT_TRACES_BLOCKING", "")
	p, err := Setup(t.Context(), WithSpanExporter(exp))
	if err != nil {
		t.Fatal(err)
	}
	if p.spans.limit != 7 {
		t.Errorf("queue bound %d, want 7 from OTEL_BSP_MAX_QUEUE_SIZE", p.spans.limit)
	}
	p.Shutdown(t.Context())
	t.Setenv("WEFT_TRACES_BLOCKING", "true")
	if p, err = Setup(t.Context(), WithSpanExporter(exp)); err != nil {
		t.Fatal(err)
	}
	if p.spans.limit != 0 || !p.spans.drops.blocking {
		t.Errorf("WEFT_TRACES_BLOCKING=true: limit %d, blocking %v", p.spans.limit, p.spans.drops.blocking)
	}
	p.Shutdown(t.Context())
	t.Setenv("OTEL_BSP_MAX_QUEUE_SIZE", "")
	t.Setenv("WEFT_TRACES_BLOCKING", "")
	if p, err = Setup(t.Context(), WithSpanExporter(exp)); err != nil {
		t.Fatal(err)
	}
	if p.spans.limit != DefaultSpanQueueSize {
		t.Errorf("default queue bound %d, want %d", p.spans.limit, DefaultSpanQueueSize)
	}
	p.Shutdown(t.Context())
	for name, env := range map[string][2]string{
		"queue size": {"OTEL_BSP_MAX_QUEUE_SIZE", "lots"},
		"zero queue": {"OTEL_BSP_MAX_QUEUE_SIZE", "0"},
		"batch size": {"OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "-1"},
		"blocking":   {"WEFT_TRACES_BLOCKING", "maybe"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv(env[0], env[1])
			if _, err := Setup(t.Context(), WithSpanExporter(exp)); err == nil || !strings.Contains(err.Error(), env[0]) {
				t.Fatalf("%s=%s: error %v, want one naming the variable", env[0], env[1], err)
			}
		})
	}
}
