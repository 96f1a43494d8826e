package serve_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/weftstream/weft/internal/kafkatest"
	"github.com/weftstream/weft/kafkaclient"
	"github.com/weftstream/weft/processors"
	"github.com/weftstream/weft/serve"
	"github.com/weftstream/weft/tracing"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// failingExporter fails every batch: its spans count as dropped.
type failingExporter struct{}

func (failingExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error {
	return errors.New("collector down")
}
func (failingExporter) Shutdown(context.Context) error { return nil }

// GET /metrics tells what the processor did with its input: the good
// records processed, the bad ones rejected by reason (counts written down
// from the input below), how long each took (one of them at least
// slowRecord), every table partition ready, and the spans the exporter
// lost, through the same meter provider given to tracing.Setup.
func TestIntegrationMetrics(t *testing.T) {
	const partitions = 4
	const slowRecord = 5 * time.Millisecond
	metrics, err := serve.NewMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := metrics.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	})
	prov, err := tracing.Setup(t.Context(), tracing.WithSpanExporter(failingExporter{}),
		tracing.WithMeterProvider(metrics.MeterProvider()), tracing.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = prov.Shutdown(context.Background()) })

	brokers := kafkatest.Brokers(t)
	k := kafkaclient.Config{Brokers: brokers, Partitions: partitions}
	input, group := kafkatest.Topic(t, "metrics-in"), kafkatest.Group(t, "metrics")
	kafkatest.CreateTopic(t, brokers, input, partitions)
	// Every record adds its value (a decimal number) to its key's sum; a
	// value that is no number is rejected by the decoder (reason decode),
	// a negative one by the handler (reason negative).
	rt := processors.NewRuntime(processors.WithTracerProvider(prov.Tracer))
	decode := func(b []byte) (int64, error) { return strconv.ParseInt(string(b), 10, 64) }
	g := processors.DefineGroup(rt, goka.Group(group),
		goka.Input(goka.Stream(input), new(codec.Bytes), processors.Handle(rt, decode,
			func(ctx goka.Context, n int64) error {
				if n < 0 {
					return processors.Reject("negative", "%d is below zero", n)
				}
				if n == 16 {
					time.Sleep(slowRecord) // the workload: one slow record
				}
				var sum int64
				if v := ctx.Value(); v != nil {
					sum = v.(int64)
				}
				ctx.SetValue(sum + n)
				return nil
			})),
		processors.Persist(new(codec.Int64)),
	)
	stateDir := t.TempDir()
	p, err := processors.NewProcessor(t.Context(), g, processors.WithKafka(k), processors.WithStateDir(stateDir),
		processors.WithRuntime(rt)) // rt traces with prov.Tracer
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("processor: %v", err)
		}
	})
	if err := metrics.Observe(p); err != nil {
		t.Fatal(err)
	}
	s, err := serve.New([]*processors.TableReader{p.TableReader()}, serve.WithMetrics(metrics.Handler()), serve.WithToken("s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)

	// 17 good records, 3 that are no number, 2 negative ones.
	em, err := processors.NewEmitter(t.Context(), input, processors.WithKafka(k), processors.WithTracerProvider(prov.Tracer))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 17 {
		em.Emit(fmt.Sprintf("k%d", i%5), []byte(strconv.Itoa(i)), nil)
	}
	for _, v := range []string{"x", "1.5", ""} {
		em.Emit("k0", []byte(v), nil)
	}
	em.Emit("k1", []byte("-3"), nil)
	em.Emit("k2", []byte("-4"), nil)
	if err := em.Close(); err != nil {
		t.Fatal(err)
	}
	kafkatest.WaitFor(t, 2*time.Minute, "22 records handled", func() bool {
		return rt.Tally().Processed()+rt.Tally().Rejected() == 22
	})
	kafkatest.WaitFor(t, time.Minute, "every partition ready", func() bool {
		return len(p.TableReader().Served()) == partitions
	})
	// The spans end (and their export fails) asynchronously: flush them.
	if err := prov.Tracer.(interface{ ForceFlush(context.Context) error }).ForceFlush(t.Context()); err == nil {
		t.Fatal("flushing through the failing exporter succeeded")
	}
	if prov.DroppedSpans() == 0 {
		t.Fatal("no span counted as dropped by the failing exporter")
	}

	// /metrics needs the bearer token, as the tables do.
	if resp, err := http.Get(srv.URL + "/metrics"); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET /metrics without a token: %v %v", resp.StatusCode, err)
	}
	fams := scrape(t, srv.URL+"/metrics", "s3cret")
	want := []struct {
		name   string
		labels map[string]string
		value  float64
	}{
		{"weft_records_processed_total", map[string]string{"group": group}, 17},
		{"weft_records_replayed_total", map[string]string{"group": group}, 0},
		{"weft_links_dropped_total", map[string]string{"group": group}, 0},
		{"weft_records_rejected_total", map[string]string{"group": group, "reason": "decode"}, 3},
		{"weft_records_rejected_total", map[string]string{"group": group, "reason": "negative"}, 2},
		{"weft_table_partitions_assigned", map[string]string{"group": group, "table": group + "-table"}, partitions},
		{"weft_table_partitions_ready", map[string]string{"group": group, "table": group + "-table"}, partitions},
	}
	for _, w := range want {
		got, ok := sample(fams, w.name, w.labels)
		if !ok || got != w.value {
			t.Errorf("%s%v = %v (found: %v), want %v", w.name, w.labels, got, ok, w.value)
		}
	}
	// Spans dropped, as the span queue counts them (the flush spans of the
	// record cache may still be ending: wait for the two to agree).
	kafkatest.WaitFor(t, 30*time.Second, "weft_spans_dropped_total to match the span queue's count", func() bool {
		n, ok := sample(scrape(t, srv.URL+"/metrics", "s3cret"), "weft_spans_dropped_total", map[string]string{"error_type": tracing.DropExportFailed})
		return ok && n > 0 && n == float64(prov.DroppedSpans())
	})
	checkDurations(t, fams, group, 22, 1, slowRecord)
	if n := len(fams["weft_records_rejected_total"].GetMetric()); n != 2 {
		t.Errorf("%d series of weft_records_rejected_total, want 2 (decode, negative)", n)
	}
	// The record cache flushes every second (the default commit interval).
	kafkatest.WaitFor(t, 30*time.Second, "a record cache flush counted", func() bool {
		n, ok := sample(scrape(t, srv.URL+"/metrics", "s3cret"), "weft_cache_flushes_total", map[string]string{"group": group})
		return ok && n >= 1 && n <= float64(p.CacheFlushes())
	})
	// A lag series for every input partition; everything was processed,
	// so none is behind.
	for i := range partitions {
		lag, ok := sample(fams, "weft_consumer_lag", map[string]string{"group": group, "topic": input, "partition": strconv.Itoa(i)})
		if !ok || lag != 0 {
			t.Errorf("lag of %s/%d = %v (found: %v), want 0", input, i, lag, ok)
		}
	}

	// The record cache holds the five keys k0..k4 (it keeps them after
	// flushing, well within its budget); every partition is restored;
	// every store has files, which the state directory holds.
	fams = scrape(t, srv.URL+"/metrics", "s3cret")
	tl := map[string]string{"group": group, "table": group + "-table"}
	if n, ok := sample(fams, "weft_cache_entries", tl); !ok || n != 5 {
		t.Errorf("weft_cache_entries = %v (found: %v), want 5", n, ok)
	}
	// Every one of the 22 records looked its key up: the first of each of
	// the five keys missed, the other 17 hit.
	for result, want := range map[string]float64{"hit": 17, "miss": 5} {
		attrs := map[string]string{"group": group, "table": group + "-table", "result": result}
		if n, ok := sample(fams, "weft_cache_lookups_total", attrs); !ok || n != want {
			t.Errorf("weft_cache_lookups_total{result=%q} = %v (found: %v), want %v", result, n, ok, want)
		}
	}
	if n, ok := sample(fams, "weft_cache_size_bytes", tl); !ok || n <= 0 {
		t.Errorf("weft_cache_size_bytes = %v (found: %v), want > 0", n, ok)
	}
	var stores float64
	for i := range partitions {
		pl := map[string]string{"group": group, "table": group + "-table", "partition": strconv.Itoa(i)}
		if n, ok := sample(fams, "weft_table_restore_remaining", pl); !ok || n != 0 {
			t.Errorf("weft_table_restore_remaining of partition %d = %v (found: %v), want 0", i, n, ok)
		}
		n, ok := sample(fams, "weft_store_size_bytes", pl)
		if !ok || n <= 0 {
			t.Errorf("weft_store_size_bytes of partition %d = %v (found: %v), want > 0", i, n, ok)
		}
		stores += n
		if d, ok := sample(fams, "weft_consumer_delay_seconds", map[string]string{"group": group, "topic": input, "partition": strconv.Itoa(i)}); !ok || d < 0 || d > 120 {
			t.Errorf("weft_consumer_delay_seconds of %s/%d = %v (found: %v), want 0 to 120 (the records are fresh)", input, i, d, ok)
		}
	}
	if du := dirBytes(t, stateDir); stores > float64(du) {
		t.Errorf("the stores' sizes add up to %v bytes, more than the %d bytes of the state directory", stores, du)
	}
}

// checkDurations checks the histogram weft_process_duration_seconds of
// group: records observations in all (as many as records handled), its
// buckets the fixed powers of two from 1.024 µs, their cumulative counts
// never decreasing, and at least slow of them beyond every bound below
// slowest.
func checkDurations(t *testing.T, fams map[string]*dto.MetricFamily, group string, records, slow uint64, slowest time.Duration) {
	t.Helper()
	fam, ok := fams["weft_process_duration_seconds"]
	if !ok || fam.GetType() != dto.MetricType_HISTOGRAM {
		t.Errorf("weft_process_duration_seconds: no histogram (found: %v, type %v)", ok, fam.GetType())
		return
	}
	var h *dto.Histogram
	for _, m := range fam.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "group" && l.GetValue() == group {
				h = m.GetHistogram()
			}
		}
	}
	if h == nil {
		t.Errorf("weft_process_duration_seconds has no series of group %q", group)
		return
	}
	if h.GetSampleCount() != records {
		t.Errorf("weft_process_duration_seconds_count = %d, want %d (the records handled)", h.GetSampleCount(), records)
	}
	if min := slowest.Seconds() * float64(slow); h.GetSampleSum() < min {
		t.Errorf("weft_process_duration_seconds_sum = %v, want at least %v", h.GetSampleSum(), min)
	}
	var prev uint64
	bound := 1.024e-6
	finite := 0
	for _, b := range h.GetBucket() {
		c := b.GetCumulativeCount()
		if c < prev || c > records {
			t.Errorf("bucket le=%v counts %d after %d, of %d records: not cumulative", b.GetUpperBound(), c, prev, records)
		}
		prev = c
		if math.IsInf(b.GetUpperBound(), 1) {
			continue
		}
		if b.GetUpperBound() != bound {
			t.Errorf("bucket %d: le=%v, want %v", finite, b.GetUpperBound(), bound)
		}
		if b.GetUpperBound() < slowest.Seconds() && c > records-slow {
			t.Errorf("bucket le=%v counts %d records, but %d of the %d took at least %v", b.GetUpperBound(), c, slow, records, slowest)
		}
		bound *= 2
		finite++
	}
	if finite != processors.LatencyBuckets {
		t.Errorf("%d finite buckets, want %d", finite, processors.LatencyBuckets)
	}
}

// dirBytes is the size of the regular files under dir.
func dirBytes(t *testing.T, dir string) int64 {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if info, ierr := d.Info(); ierr == nil && info.Mode().IsRegular() {
			n += info.Size()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// scrape GETs url with a bearer token and parses the Prometheus text.
func scrape(t *testing.T, url, token string) map[string]*dto.MetricFamily {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: not Prometheus text: %v", url, err)
	}
	return fams
}

// sample returns the value of the series of name whose labels include
// labels.
func sample(fams map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	for _, m := range fams[name].GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		match := true
		for k, v := range labels {
			match = match && have[k] == v
		}
		if !match {
			continue
		}
		switch {
		case m.GetCounter() != nil:
			return m.GetCounter().GetValue(), true
		case m.GetGauge() != nil:
			return m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}
