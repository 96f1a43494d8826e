package serve_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/weftstream/weft/internal/kafkatest"
	"github.com/weftstream/weft/kafkaclient"
	"github.com/weftstream/weft/processors"
	"github.com/weftstream/weft/serve"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// instance is one member of a counting group with its query API on a
// real listener.
type instance struct {
	url    string // advertised URL, "" for a member that advertises nothing
	rt     *processors.Runtime
	reader *processors.TableReader
	// stopAPI stops the query API (the processor keeps running).
	stopAPI func()
}

const forwardToken = "s3cret"

// startInstance runs a counting processor of group on input (state in its
// own dir) and its query API with forwarding. advertise says whether the
// member advertises its API in the group.
func startInstance(t testing.TB, brokers []string, input, group string, advertise bool, tp *sdktrace.TracerProvider) *instance {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	in := &instance{}
	if advertise {
		in.url = "http://" + ln.Addr().String()
	}
	k := kafkaclient.Config{Brokers: brokers, GroupUserData: serve.AdvertiseUserData(in.url)}
	in.rt = processors.NewRuntime(processors.WithTracerProvider(tp))
	g := processors.DefineGroup(in.rt, goka.Group(group),
		goka.Input(goka.Stream(input), new(codec.Bytes), processors.Handle(in.rt, func(b []byte) ([]byte, error) { return b, nil },
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
	p, err := processors.NewProcessor(t.Context(), g, processors.WithKafka(k), processors.WithStateDir(t.TempDir()),
		processors.WithRuntime(in.rt), processors.WithRecordCache(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	in.reader = p.TableReader()
	s, err := serve.New([]*processors.TableReader{in.reader}, serve.WithTracerProvider(tp), serve.WithToken(forwardToken),
		serve.WithForwarding(k, in.url))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	apiCtx, stopAPI := context.WithCancel(ctx)
	done, served := make(chan error, 1), make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	go func() { served <- s.Run(apiCtx, ln, nil) }()
	var once sync.Once
	in.stopAPI = func() {
		once.Do(func() {
			stopAPI()
			if err := <-served; err != nil {
				t.Errorf("query API: %v", err)
			}
		})
	}
	t.Cleanup(func() {
		in.stopAPI()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("processor: %v", err)
		}
	})
	return in
}

// owns says whether in holds partition p.
func (in *instance) owns(p int32) bool { return slices.Contains(in.reader.Served(), p) }

// forwardGet requests url with the token (and extra headers) without
// following redirects.
func forwardGet(t *testing.T, url string, header http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header.Clone()
	if req.Header == nil {
		req.Header = http.Header{}
	}
	if req.Header.Get("Authorization") == "" {
		req.Header.Set("Authorization", "Bearer "+forwardToken)
	}
	c := &http.Client{Timeout: 20 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// TestIntegrationForwardAnyInstanceAnswersAnyKey runs three members of one
// group, each with its own store and query API: A and B advertise their
// APIs, C advertises none. Asked for every key, A answers its own keys,
// forwards B's to B (200, the independent count, Weft-Served-By), and
// answers C's with 503 and Retry-After (no known owner). A forwarded
// request is not forwarded again, ?redirect=true answers 307, the trace
// of a forwarded query holds the query spans of both instances, and once
// B's API is down (B still holds its partitions) A answers 503.
func TestIntegrationForwardAnyInstanceAnswersAnyKey(t *testing.T) {
	const partitions = 6
	brokers := kafkatest.Brokers(t)
	input, group := kafkatest.Topic(t, "fwd-in"), kafkatest.Group(t, "fwd")
	kafkatest.CreateTopic(t, brokers, input, partitions)
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithSpanProcessor(spans))

	a := startInstance(t, brokers, input, group, true, tp)
	b := startInstance(t, brokers, input, group, true, tp)
	c := startInstance(t, brokers, input, group, false, tp)
	all := []*instance{a, b, c}
	kafkatest.WaitFor(t, 2*time.Minute, "the group's partitions split over three restored members", func() bool {
		n := 0
		for _, in := range all {
			served := len(in.reader.Served())
			if served == 0 || served < len(in.reader.Assigned()) {
				return false
			}
			n += served
		}
		return n == partitions
	})

	// Key i is updated i+1 times; keys cover every partition.
	keys := kafkatest.KeysCovering(t, partitions, func(i int) string { return fmt.Sprintf("acct-%d", i) })
	want, total := map[string]int{}, 0
	em, err := processors.NewEmitter(t.Context(), input, processors.WithKafka(kafkaclient.Config{Brokers: brokers}), processors.WithTracerProvider(tp))
	if err != nil {
		t.Fatal(err)
	}
	for i, key := range keys {
		for range i + 1 {
			em.Emit(key, []byte("x"), nil)
			want[key]++
			total++
		}
	}
	if err := em.Close(); err != nil {
		t.Fatal(err)
	}
	kafkatest.WaitFor(t, time.Minute, fmt.Sprintf("%d records processed", total), func() bool {
		return a.rt.Tally().Processed()+b.rt.Tally().Processed()+c.rt.Tally().Processed() == int64(total)
	})

	var forwarded, bKey, cKey string
	for p, key := range keys {
		resp, body := forwardGet(t, a.url+"/tables/"+group+"/"+key, nil)
		switch {
		case a.owns(int32(p)):
			var v value
			if resp.StatusCode != 200 || json.Unmarshal(body, &v) != nil || string(v.Value) != fmt.Sprint(want[key]) || resp.Header.Get(serve.HeaderServedBy) != "" {
				t.Fatalf("A's own key %s (partition %d): %d %s %q, want %d served by A", key, p, resp.StatusCode, body, resp.Header.Get(serve.HeaderServedBy), want[key])
			}
		case b.owns(int32(p)):
			var v value
			if resp.StatusCode != 200 || json.Unmarshal(body, &v) != nil || string(v.Value) != fmt.Sprint(want[key]) || resp.Header.Get(serve.HeaderServedBy) != b.url {
				t.Fatalf("B's key %s (partition %d) asked of A: %d %s served by %q, want %d served by %s", key, p, resp.StatusCode, body, resp.Header.Get(serve.HeaderServedBy), want[key], b.url)
			}
			forwarded, bKey = key, key
		case c.owns(int32(p)):
			if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
				t.Fatalf("C's key %s (C advertises no API) asked of A: %d %s, want 503 with Retry-After", key, resp.StatusCode, body)
			}
			cKey = key
		default:
			t.Fatalf("partition %d is held by no instance", p)
		}
	}
	if forwarded == "" || cKey == "" {
		t.Fatalf("forwarded %q, unowned %q: B and C should each hold a partition", forwarded, cKey)
	}

	// The lineage is forwarded too, with the token (A and B both require it).
	var lin struct {
		Versions []value `json:"versions"`
	}
	if resp, body := forwardGet(t, a.url+"/tables/"+group+"/"+bKey+"/lineage", nil); resp.StatusCode != 200 ||
		json.Unmarshal(body, &lin) != nil || len(lin.Versions) != want[bKey] {
		t.Fatalf("lineage of B's key %s from A: %d %s, want %d versions", bKey, resp.StatusCode, body, want[bKey])
	}
	if resp, _ := forwardGet(t, a.url+"/tables/"+group+"/"+bKey, http.Header{"Authorization": {"Bearer wrong"}}); resp.StatusCode != 403 {
		t.Fatalf("a wrong token: %d, want 403 before any forwarding", resp.StatusCode)
	}

	// Loop guard: a request already forwarded is answered 503, not forwarded.
	resp, body := forwardGet(t, a.url+"/tables/"+group+"/"+bKey, http.Header{serve.HeaderForwardedBy: {"http://elsewhere"}})
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || resp.Header.Get(serve.HeaderServedBy) != "" {
		t.Fatalf("forwarded request for B's key at A: %d %s, want 503 with Retry-After", resp.StatusCode, body)
	}

	// Redirect instead of proxying.
	resp, _ = forwardGet(t, a.url+"/tables/"+group+"/"+bKey+"?redirect=true&as_of=1", nil)
	if loc := resp.Header.Get("Location"); resp.StatusCode != 307 || loc != b.url+"/tables/"+group+"/"+bKey+"?as_of=1" {
		t.Fatalf("redirect: %d Location %q, want 307 to %s", resp.StatusCode, loc, b.url)
	}

	// The client's trace holds A's query span, the hop and B's query span.
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	resp, _ = forwardGet(t, a.url+"/tables/"+group+"/"+bKey, http.Header{"Traceparent": {"00-" + traceID + "-00f067aa0ba902b7-01"}})
	if resp.StatusCode != 200 {
		t.Fatalf("traced forwarded query: %d", resp.StatusCode)
	}
	kafkatest.WaitFor(t, 10*time.Second, "the query spans of A and B in the client's trace", func() bool {
		queries, hops := 0, 0
		for _, s := range spans.Ended() {
			if s.SpanContext().TraceID().String() != traceID {
				continue
			}
			switch s.Name() {
			case "query " + group:
				queries++
			case "forward " + b.url[len("http://"):]:
				hops++
			}
		}
		return queries == 2 && hops == 1
	})

	// B's API stops; B keeps its partitions: A cannot forward and says so.
	b.stopAPI()
	resp, body = forwardGet(t, a.url+"/tables/"+group+"/"+bKey, nil)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), "did not answer") {
		t.Fatalf("B's key with B's API down: %d %s, want 503 saying B did not answer", resp.StatusCode, body)
	}
}
