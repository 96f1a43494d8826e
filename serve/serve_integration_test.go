package serve_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/weftstream/weft/internal/kafkatest"
	"github.com/weftstream/weft/kafkaclient"
	"github.com/weftstream/weft/processors"
	"github.com/weftstream/weft/serve"
	"github.com/weftstream/weft/tracing"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// fixture is a counting processor (the count of records per key, as a
// JSON number) on a real broker with a query server in front of it.
type fixture struct {
	t      *testing.T
	spans  *tracetest.SpanRecorder
	rt     *processors.Runtime
	srv    *httptest.Server
	input  string
	group  string
	counts map[string]int // the independent fold of what was produced
	k      kafkaclient.Config
	tp     *sdktrace.TracerProvider
	server *serve.Server
}

func newFixture(t *testing.T, opts ...serve.Option) *fixture {
	// Without the record cache: the tests check one version (and one
	// change notification) per update.
	return newCachedFixture(t, processors.WithRecordCache(0, 0), opts...)
}

// newCachedFixture is newFixture with the processor's record cache set by
// cache.
func newCachedFixture(t *testing.T, cache processors.Option, opts ...serve.Option) *fixture {
	t.Helper()
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithSpanProcessor(spans))
	brokers := kafkatest.Brokers(t)
	k := kafkaclient.Config{Brokers: brokers, Partitions: 4}
	f := &fixture{t: t, spans: spans, input: kafkatest.Topic(t, "serve-in"), group: kafkatest.Group(t, "serve"), counts: map[string]int{},
		k: k, tp: tp}
	kafkatest.CreateTopic(t, brokers, f.input, 4)
	f.rt = processors.NewRuntime(processors.WithTracerProvider(tp))
	g := processors.DefineGroup(f.rt, goka.Group(f.group),
		goka.Input(goka.Stream(f.input), new(codec.Bytes), processors.Handle(f.rt, func(b []byte) ([]byte, error) { return b, nil },
			func(ctx goka.Context, _ []byte) error {
				var n int64
				if v := ctx.Value(); v != nil {
					n = v.(int64)
				}
				ctx.SetValue(n + 1)
				return nil
			})),
		processors.Persist(new(codec.Int64)),
	)
	p, err := processors.NewProcessor(t.Context(), g, processors.WithKafka(k), processors.WithStateDir(t.TempDir()), processors.WithRuntime(f.rt), cache)
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
	s, err := serve.New([]*processors.TableReader{p.TableReader()}, append([]serve.Option{serve.WithTracerProvider(tp), serve.WithKafka(k)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	f.server = s
	f.srv = httptest.NewServer(s.Handler())
	t.Cleanup(f.srv.Close)

	em, err := processors.NewEmitter(t.Context(), f.input, processors.WithKafka(k), processors.WithTracerProvider(tp))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		key := fmt.Sprintf("k%02d", i%7)
		f.counts[key]++
		em.Emit(key, []byte("x"), nil)
	}
	if err := em.Close(); err != nil {
		t.Fatal(err)
	}
	kafkatest.WaitFor(t, 2*time.Minute, "30 records processed", func() bool { return f.rt.Tally().Processed() == 30 })
	return f
}

// get requests path and decodes the JSON answer into out (if not nil).
func (f *fixture) get(path string, header http.Header, out any) *http.Response {
	f.t.Helper()
	req, err := http.NewRequest(http.MethodGet, f.srv.URL+path, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			f.t.Fatalf("GET %s: %d %q is not JSON: %v", path, resp.StatusCode, body, err)
		}
	}
	return resp
}

type value struct {
	Key     string          `json:"key"`
	Value   json.RawMessage `json:"value"`
	Version uint64          `json:"version"`
	Writer  string          `json:"writer_traceparent"`
	Sources []struct {
		Topic string `json:"topic"`
	} `json:"sources"`
}

type problem struct {
	Status int    `json:"status"`
	Detail string `json:"detail"`
}

func TestIntegrationQueryValues(t *testing.T) {
	f := newFixture(t)
	// Every key's value and version equal the independent count.
	for key, n := range f.counts {
		var v value
		resp := f.get("/tables/"+f.group+"/"+key, nil, &v)
		if resp.StatusCode != 200 || string(v.Value) != fmt.Sprint(n) || v.Version != uint64(n) || v.Sources[0].Topic != f.input {
			t.Fatalf("%s: %d %+v, want count and version %d", key, resp.StatusCode, v, n)
		}
		if resp.Header.Get("Weft-Writer-Traceparent") != v.Writer || !strings.HasPrefix(v.Writer, "00-") {
			t.Fatalf("%s: writer header %q, body %q", key, resp.Header.Get("Weft-Writer-Traceparent"), v.Writer)
		}
	}
	// The table topic names the table too; as_of reads earlier versions.
	var v1 value
	if resp := f.get("/tables/"+f.group+"-table/k00?as_of=1", nil, &v1); resp.StatusCode != 200 || string(v1.Value) != "1" || v1.Version != 1 {
		t.Fatalf("as_of=1: %d %+v", resp.StatusCode, v1)
	}
	var pr problem
	if resp := f.get("/tables/"+f.group+"/k00?as_of=99", nil, &pr); resp.StatusCode != 422 {
		t.Fatalf("as_of=99: %d %+v, want 422", resp.StatusCode, pr)
	}
	// Lineage: newest first, one version per update (at least 8 kept).
	var lin struct {
		Versions []value `json:"versions"`
	}
	if resp := f.get("/tables/"+f.group+"/k00/lineage", nil, &lin); resp.StatusCode != 200 || len(lin.Versions) != f.counts["k00"] ||
		lin.Versions[0].Version != uint64(f.counts["k00"]) || lin.Versions[len(lin.Versions)-1].Version != 1 {
		t.Fatalf("lineage: %d %+v", resp.StatusCode, lin)
	}
	// Scan: pages of 3 in key order, every key exactly once.
	var seen []string
	for from, pages := "", 0; ; pages++ {
		var page struct {
			Items    []value `json:"items"`
			Next     string  `json:"next"`
			Complete bool    `json:"complete"`
		}
		if resp := f.get("/tables/"+f.group+"?limit=3&prefix=k&from="+from, nil, &page); resp.StatusCode != 200 || !page.Complete {
			t.Fatalf("scan: %d %+v", resp.StatusCode, page)
		}
		for _, it := range page.Items {
			seen = append(seen, it.Key)
		}
		if page.Next == "" || pages > 10 {
			break
		}
		from = page.Next
	}
	if got := strings.Join(seen, ","); got != "k00,k01,k02,k03,k04,k05,k06" {
		t.Fatalf("scanned %s", got)
	}
	// Mistakes: problem details with the right status.
	for path, want := range map[string]int{
		"/tables/nosuch/k00":                                   404,
		"/tables/" + f.group + "/nokey":                        404,
		"/tables/" + f.group + "/..%2f..%2fetc":                404,
		"/tables/" + f.group + "/k00?as_of=yesterday":          400,
		"/tables/" + f.group + "?limit=0":                      400,
		"/tables/" + f.group + "?limit=banana":                 400,
		"/tables/" + f.group + "/" + strings.Repeat("k", 5000): 414,
		"/nothing": 404,
	} {
		var p problem
		resp := f.get(path, nil, &p)
		if resp.StatusCode != want || p.Status != want || resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("GET %s: %d %+v (%s), want %d problem+json", path, resp.StatusCode, p, resp.Header.Get("Content-Type"), want)
		}
	}
	if resp := f.get("/readyz", nil, nil); resp.StatusCode != 200 {
		t.Errorf("readyz: %d", resp.StatusCode)
	}
}

// A query runs in a span "query <table>", child of the caller's
// traceparent, linked (read_value) to the span that wrote the value.
func TestIntegrationQuerySpanLinksToWriter(t *testing.T) {
	f := newFixture(t)
	caller := "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	var v value
	f.get("/tables/"+f.group+"/k01", http.Header{"Traceparent": {caller}}, &v)
	var query sdktrace.ReadOnlySpan
	kafkatest.WaitFor(t, 10*time.Second, "the query span", func() bool {
		for _, s := range f.spans.Ended() {
			if s.Name() == "query "+f.group {
				query = s
				return true
			}
		}
		return false
	})
	if query.Parent().TraceID().String() != "0af7651916cd43dd8448eb211c80319c" || query.Parent().SpanID().String() != "b7ad6b7169203331" {
		t.Fatalf("query span parent %v, want the caller's span", query.Parent())
	}
	if query.SpanKind().String() != "server" {
		t.Fatalf("query span kind %v", query.SpanKind())
	}
	var linked bool
	for _, l := range query.Links() {
		tp := fmt.Sprintf("00-%s-%s-%s", l.SpanContext.TraceID(), l.SpanContext.SpanID(), l.SpanContext.TraceFlags())
		for _, a := range l.Attributes {
			if a.Key == tracing.AttrLinkKind && a.Value.AsString() == string(tracing.LinkReadValue) && tp == v.Writer {
				linked = true
			}
		}
	}
	if !linked {
		t.Fatalf("query span links %+v, want read_value to %s", query.Links(), v.Writer)
	}
}

// With a token, requests need it: 401 without, 403 with another one.
func TestIntegrationQueryToken(t *testing.T) {
	f := newFixture(t, serve.WithToken("s3cret"))
	path := "/tables/" + f.group + "/k02"
	for _, tc := range []struct {
		auth string
		want int
	}{{"", 401}, {"Bearer nope", 403}, {"Bearer s3cret", 200}} {
		h := http.Header{}
		if tc.auth != "" {
			h.Set("Authorization", tc.auth)
		}
		if resp := f.get(path, h, nil); resp.StatusCode != tc.want {
			t.Errorf("Authorization %q: %d, want %d", tc.auth, resp.StatusCode, tc.want)
		}
	}
	if resp := f.get("/healthz", nil, nil); resp.StatusCode != 200 {
		t.Errorf("healthz needs no token: %d", resp.StatusCode)
	}
}

// Run serves HTTPS with a TLS configuration, and stops when its context
// ends.
func TestIntegrationQueryOverTLS(t *testing.T) {
	s, err := serve.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	// httptest's certificate, and a client that trusts it.
	ts := httptest.NewUnstartedServer(http.NotFoundHandler())
	ts.StartTLS()
	cfg, client := ts.TLS.Clone(), ts.Client()
	ts.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, ln, cfg) }()
	resp, err := client.Get("https://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil {
		t.Fatalf("healthz over TLS: %d, tls %v", resp.StatusCode, resp.TLS != nil)
	}
	if plain, err := http.Get("http://" + ln.Addr().String() + "/healthz"); err == nil {
		plain.Body.Close()
		if plain.StatusCode != http.StatusBadRequest {
			t.Fatalf("plain HTTP on the TLS port: %d, want 400", plain.StatusCode)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// With the record cache, a value is served from the cache before it is
// flushed: current, not the store's older one.
func TestIntegrationQueryReadsThroughTheRecordCache(t *testing.T) {
	f := newCachedFixture(t, processors.WithRecordCache(10<<20, time.Hour)) // no flush during the test
	for key, n := range f.counts {
		var v value
		if resp := f.get("/tables/"+f.group+"/"+key, nil, &v); resp.StatusCode != 200 || string(v.Value) != fmt.Sprint(n) || v.Version != uint64(n) {
			t.Fatalf("%s: %d %+v, want count and version %d from the cache", key, resp.StatusCode, v, n)
		}
	}
	// Not flushed: the lineage is the cached version alone (the store has
	// none yet), the same one as_of finds: the API never answers a value
	// and then a lineage that does not know it.
	n := f.counts["k00"]
	var lin struct {
		Versions []value `json:"versions"`
	}
	if resp := f.get("/tables/"+f.group+"/k00/lineage", nil, &lin); resp.StatusCode != 200 || len(lin.Versions) != 1 ||
		lin.Versions[0].Version != uint64(n) || string(lin.Versions[0].Value) != fmt.Sprint(n) {
		t.Fatalf("lineage before a flush: %d %+v, want the cached version %d alone", resp.StatusCode, lin, n)
	}
	var v value
	if resp := f.get(fmt.Sprintf("/tables/%s/k00?as_of=%d", f.group, n), nil, &v); resp.StatusCode != 200 || v.Version != uint64(n) {
		t.Fatalf("as_of=%d before a flush: %d %+v, want version %d", n, resp.StatusCode, v, n)
	}
}
