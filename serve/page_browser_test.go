package serve_test

import (
	"context"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/weftstream/weft/internal/kafkatest"
	"github.com/weftstream/weft/kafkaclient"
	"github.com/weftstream/weft/processors"
	"github.com/weftstream/weft/serve"
	"github.com/weftstream/weft/topology"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// chromium finds the browser: $WEFT_CHROMIUM, else chromium on $PATH.
// Without it the test fails: CI installs it (.ci/run), and so should you.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("WEFT_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("the browser test needs Chromium: install it (Debian: apt-get install -y chromium) or set WEFT_CHROMIUM to its path")
	return ""
}

// artifactDir is where the test leaves its screenshot: $WEFT_TEST_ARTIFACTS
// if set, else a temporary directory.
func artifactDir(t *testing.T) string {
	if d := os.Getenv("WEFT_TEST_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

const traceTemplate = "http://tracing.invalid/trace/{trace_id}?span={span_id}"

// The web page, in a real browser: it draws the topology, lists the
// table, looks up a key and shows its value, its versions newest first
// and a link to the trace of each writer, and follows the key live when a
// new event changes it.
func TestIntegrationWebPageInBrowser(t *testing.T) {
	browser := chromium(t)

	// A count per key, compiled from a topology, on the embedded broker.
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithSpanProcessor(spans))
	brokers := kafkatest.Brokers(t)
	k := kafkaclient.Config{Brokers: brokers, Partitions: 4}
	input, app := kafkatest.Topic(t, "web-in"), kafkatest.Group(t, "web")
	kafkatest.CreateTopic(t, brokers, input, 4)
	b := topology.New(app)
	b.Stream(input, topology.JSON{}).GroupByKey().Count("counts")
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	c, err := topology.Compile(top, topology.WithProcessorOptions(processors.WithTracerProvider(tp), processors.WithKafka(k)))
	if err != nil {
		t.Fatal(err)
	}
	grp := c.Groups[0]
	// Without the record cache: the page shows one version per event.
	p, err := processors.NewProcessor(t.Context(), grp.Graph,
		append(append([]processors.Option{processors.WithKafka(k), processors.WithStateDir(t.TempDir())}, grp.Options()...),
			processors.WithRecordCache(0, 0))...)
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
	s, err := serve.New([]*processors.TableReader{p.TableReader()}, serve.WithTracerProvider(tp),
		serve.WithTopology(c), serve.WithTraceURLTemplate(traceTemplate))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)

	em, err := processors.NewEmitter(t.Context(), input, processors.WithKafka(k), processors.WithTracerProvider(tp))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = em.Close() })
	emit := func(keys ...string) {
		for _, key := range keys {
			em.Emit(key, []byte(`{"amount":1}`), nil)
		}
		em.Flush()
	}
	emit("alice", "bob", "alice", "alice", "bob")
	kafkatest.WaitFor(t, time.Minute, "5 records processed", func() bool { return grp.Runtime.Tally().Processed() == 5 })
	aliceTraces := writerTraces(spans, "alice")
	if len(aliceTraces) != 3 {
		t.Fatalf("spans show %d traces writing alice, want 3", len(aliceTraces))
	}

	// The browser: headless, offline, a fresh profile.
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(browser), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 1400),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true))
	defer cancelAlloc()
	var mu sync.Mutex
	var pageErrors []string
	bctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf), chromedp.WithListener(func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			msg := ev.ExceptionDetails.Text
			if ex := ev.ExceptionDetails.Exception; ex != nil {
				msg += " " + ex.Description
			}
			pageErrors = append(pageErrors, "exception: "+msg)
		case *cdplog.EventEntryAdded:
			if ev.Entry.Level == cdplog.EntryLevelError {
				pageErrors = append(pageErrors, "console: "+ev.Entry.Text)
			}
		}
	}))
	defer cancelBrowser()
	if err := chromedp.Do(bctx); err != nil { // starts the browser, without a timeout (see chromedp.Run)
		t.Fatalf("start Chromium %s: %v", browser, err)
	}
	bctx, cancelTimeout := context.WithTimeout(bctx, 2*time.Minute)
	defer cancelTimeout()

	table := string(grp.Name)
	do(t, bctx, "open the page",
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS(`#topology svg`)),
		chromedp.WaitVisible(chromedp.CSS(`#tables tbody tr`)),
	)
	if eval[bool](t, bctx, `getComputedStyle(document.getElementById('token-form')).display !== 'none'`) {
		t.Error("the page asks for a token the server does not need")
	}
	nodes := eval[int](t, bctx, `document.querySelectorAll('#topology svg g.node').length`)
	rows := eval[int](t, bctx, `document.querySelectorAll('#tables tbody tr').length`)
	tableText := eval[string](t, bctx, `document.querySelector('#tables tbody').textContent`)
	// topic → source → count ↔ table: four boxes.
	if nodes != 4 || rows != 1 || !strings.Contains(tableText, table) || !strings.Contains(tableText, table+"-table") {
		t.Fatalf("page shows %d topology nodes and %d table rows (%q), want 4 and 1 naming %s", nodes, rows, tableText, table)
	}

	do(t, bctx, "look up alice",
		chromedp.SetValue(chromedp.CSS(`#table`), table),
		chromedp.SendKeys(chromedp.CSS(`#key`), "alice"),
		chromedp.Click(chromedp.CSS(`#lookup button[type=submit]`)),
		poll(`document.getElementById('value').textContent.trim() === '3' && document.querySelectorAll('#lineage li.version').length === 3`),
		chromedp.WaitVisible(chromedp.CSS(`#live.on`)),
	)
	versions := eval[[]string](t, bctx, `[...document.querySelectorAll('#lineage li.version')].map(li => li.dataset.version)`)
	hrefs := eval[[]string](t, bctx, `[...document.querySelectorAll('#lineage li.version > div > .trace a.trace-link')].map(a => a.href)`)
	writer := eval[string](t, bctx, `document.getElementById('writer').textContent`)
	if !slices.Equal(versions, []string{"3", "2", "1"}) {
		t.Errorf("versions shown %v, want 3, 2, 1 (newest first)", versions)
	}
	// One link per version, to the trace that wrote it, newest first.
	wantHrefs := make([]string, 0, 3)
	for i := len(aliceTraces) - 1; i >= 0; i-- {
		tr := aliceTraces[i]
		wantHrefs = append(wantHrefs, strings.NewReplacer("{trace_id}", tr.trace, "{span_id}", tr.span).Replace(traceTemplate))
	}
	if !slices.Equal(hrefs, wantHrefs) {
		t.Errorf("trace links %v, want %v", hrefs, wantHrefs)
	}
	if !strings.Contains(writer, aliceTraces[2].trace) {
		t.Errorf("writer shown %q, want the trace %s of the third record", writer, aliceTraces[2].trace)
	}

	// A new event: the page follows it without a reload.
	emit("alice")
	do(t, bctx, "see alice change",
		poll(`document.getElementById('value').textContent.trim() === '4' && document.getElementById('version').textContent === '4' &&
			document.querySelector('#lineage li.version').dataset.version === '4'`),
	)
	shot, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(artifactDir(t), "web-page.png")
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)

	// With a bearer token: the page asks for it, and follows the key
	// through a fetch stream (EventSource cannot send the header).
	ts, err := serve.New([]*processors.TableReader{p.TableReader()}, serve.WithToken("s3cret"), serve.WithTopology(c))
	if err != nil {
		t.Fatal(err)
	}
	tsrv := httptest.NewServer(ts.Handler())
	t.Cleanup(tsrv.Close)
	do(t, bctx, "open the page that needs a token",
		chromedp.Navigate(tsrv.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS(`#token-form`)),
		chromedp.SendKeys(chromedp.CSS(`#token`), "s3cret"),
		chromedp.Click(chromedp.CSS(`#token-form button`)),
		chromedp.WaitVisible(chromedp.CSS(`#tables tbody tr`)),
		chromedp.SetValue(chromedp.CSS(`#table`), table),
		chromedp.SendKeys(chromedp.CSS(`#key`), "alice"),
		chromedp.Click(chromedp.CSS(`#lookup button[type=submit]`)),
		poll(`document.getElementById('value').textContent.trim() === '4'`),
		chromedp.WaitVisible(chromedp.CSS(`#live.on`)),
	)
	emit("alice")
	do(t, bctx, "see alice change with a token",
		poll(`document.getElementById('value').textContent.trim() === '5' && document.querySelectorAll('#lineage li.version').length === 5`))

	mu.Lock()
	defer mu.Unlock()
	if len(pageErrors) > 0 {
		t.Errorf("the page reported errors: %v", pageErrors)
	}
}

// poll waits (at most 30 s) until the page makes the expression true.
func poll(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(30*time.Second))
}

// eval evaluates an expression in the page.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// do runs browser actions, failing the test with what it was doing (and
// the page's content, if it timed out).
func do(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		html, _ := chromedp.Run(context.WithoutCancel(ctx), chromedp.OuterHTML(chromedp.CSS("main")))
		t.Fatalf("%s: %v; the page's main: %s", what, err, html)
	}
}

type traceRef struct{ trace, span string }

// writerTraces returns the processing spans that wrote key, in order.
func writerTraces(spans *tracetest.SpanRecorder, key string) []traceRef {
	var out []traceRef
	for _, s := range spans.Ended() {
		if s.SpanKind().String() != "consumer" {
			continue
		}
		for _, a := range s.Attributes() {
			if string(a.Key) == "messaging.kafka.message.key" && a.Value.AsString() == key {
				out = append(out, traceRef{s.SpanContext().TraceID().String(), s.SpanContext().SpanID().String()})
			}
		}
	}
	return out
}
