package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/weftstream/weft/internal/kafkatest"
)

// metricsEvents are bank events: 5 the projection accepts and 5 it
// rejects, for the reasons in metricsRejected.
const metricsEvents = `{"type":"AccountCreated","account":"acc-1","owner":"Ada","at":"2026-01-01T00:00:00Z"}
{"type":"Deposited","account":"acc-1","amount":100,"at":"2026-01-01T00:01:00Z"}
{"type":"Deposited","account":"acc-1","amount":50,"at":"2026-01-01T00:02:00Z"}
{"type":"Withdrawn","account":"acc-1","amount":30,"at":"2026-01-01T00:03:00Z"}
{"type":"Withdrawn","account":"acc-1","amount":1000,"at":"2026-01-01T00:04:00Z"}
{"type":"Renamed","account":"acc-1","at":"2026-01-01T00:05:00Z"}
{"type":"Deposited","account":"acc-1","amount":-5,"at":"2026-01-01T00:06:00Z"}
{"type":"AccountCreated","account":"acc-2","owner":"Bo","at":"2026-01-01T00:07:00Z"}
{"type":"Deposited","account":"acc-3","amount":10,"at":"2026-01-01T00:08:00Z"}
{"type":"Withdrawn","account":"acc-3","amount":10,"at":"2026-01-01T00:09:00Z"}
`

var metricsRejected = map[string]float64{"insufficient-funds": 1, "unknown-type": 1, "bad-amount": 1, "unknown-account": 2}

// weft run serves GET /metrics beside its tables, behind the same bearer
// token: the counts of the input above, their processing durations and
// every table partition ready.
func TestIntegrationRunServesMetrics(t *testing.T) {
	brokers := strings.Join(kafkatest.Brokers(t), ",")
	input, group := kafkatest.Topic(t, "bank-events"), kafkatest.Group(t, "bank")
	common := []string{"--brokers", brokers, "--log-level", "error", "--partitions", "4"}
	events := filepath.Join(t.TempDir(), "events.jsonl")
	if err := os.WriteFile(events, []byte(metricsEvents), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := weft(t.Context(), append([]string{"produce", input, events, "--key-field", "account"}, common...)...); err != nil {
		t.Fatalf("produce: %v\n%s", err, out)
	}
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := weft(ctx, append([]string{"run", "--input", input, "--group", group, "--state-dir", t.TempDir(), "--http-addr", addr,
			"--http-token", "t0k"}, common...)...)
		done <- err
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	var fams map[string]*dto.MetricFamily
	processed := func() float64 { return metricValue(fams, "weft_records_processed_total", "group", group) }
	rejected := func() (n float64) {
		for _, m := range fams["weft_records_rejected_total"].GetMetric() {
			n += m.GetCounter().GetValue()
		}
		return n
	}
	kafkatest.WaitFor(t, 2*time.Minute, "10 records handled and 4 partitions ready on /metrics", func() bool {
		select {
		case err := <-done:
			t.Fatalf("run stopped: %v", err)
		default:
		}
		fams = scrapeMetrics(t, "http://"+addr+"/metrics", "t0k")
		return processed()+rejected() == 10 && metricValue(fams, "weft_table_partitions_ready", "group", group) == 4
	})
	if got := processed(); got != 5 {
		t.Errorf("processed %v, want 5", got)
	}
	got := map[string]float64{}
	for _, m := range fams["weft_records_rejected_total"].GetMetric() {
		labels := metricLabels(m)
		if labels["group"] != group {
			t.Errorf("rejected series of group %q", labels["group"])
		}
		got[labels["reason"]] = m.GetCounter().GetValue()
	}
	if len(got) != len(metricsRejected) {
		t.Errorf("rejected by reason %v, want %v", got, metricsRejected)
	}
	for reason, n := range metricsRejected {
		if got[reason] != n {
			t.Errorf("rejected %s: %v, want %v (all: %v)", reason, got[reason], n, got)
		}
	}
	// Every record handled took a processing duration: the histogram
	// counts the 10, in buckets whose cumulative counts never decrease.
	var hist *dto.Histogram
	for _, m := range fams["weft_process_duration_seconds"].GetMetric() {
		if metricLabels(m)["group"] == group {
			hist = m.GetHistogram()
		}
	}
	if hist.GetSampleCount() != 10 || hist.GetSampleSum() <= 0 {
		t.Errorf("weft_process_duration_seconds of %s: count %d, sum %v; want 10, > 0", group, hist.GetSampleCount(), hist.GetSampleSum())
	}
	var prev uint64
	for _, b := range hist.GetBucket() {
		if c := b.GetCumulativeCount(); c < prev || c > 10 {
			t.Errorf("weft_process_duration_seconds_bucket{le=%q} = %d after %d: not cumulative", fmt.Sprint(b.GetUpperBound()), c, prev)
		} else {
			prev = c
		}
	}
	if len(hist.GetBucket()) < 24 {
		t.Errorf("weft_process_duration_seconds has %d buckets, want 24 or more", len(hist.GetBucket()))
	}
	if n := metricValue(fams, "weft_table_partitions_assigned", "table", group+"-table"); n != 4 {
		t.Errorf("assigned partitions %v, want 4", n)
	}
	if resp, err := http.Get("http://" + addr + "/metrics"); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /metrics without the token: %v, want 401", err)
	} else {
		resp.Body.Close()
	}
}

// scrapeMetrics GETs url with a bearer token and parses the Prometheus
// text (an empty map when not answering yet).
func scrapeMetrics(t *testing.T, url, token string) map[string]*dto.MetricFamily {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: not Prometheus text: %v", url, err)
	}
	return fams
}

// metricValue returns the counter or gauge of the series of name with the
// label key=val (0 if none).
func metricValue(fams map[string]*dto.MetricFamily, name, key, val string) float64 {
	for _, m := range fams[name].GetMetric() {
		if metricLabels(m)[key] != val {
			continue
		}
		if c := m.GetCounter(); c != nil {
			return c.GetValue()
		}
		return m.GetGauge().GetValue()
	}
	return 0
}

func metricLabels(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}
