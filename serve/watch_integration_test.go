package serve_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weftstream/weft/processors"
	"github.com/weftstream/weft/serve"
)

// sseEvent is one block of a server-sent event stream.
type sseEvent struct{ event, id, data string }

// stream is a client of GET /tables/{table}/watch.
type stream struct {
	t      *testing.T
	resp   *http.Response
	events chan sseEvent
	head   string // the id the server sent first
	beats  atomic.Int32
}

// watch opens a watch stream (query as in ?key=k) resuming after lastID;
// it fails the test unless the server answers 200.
func (f *fixture) watch(query, lastID string) *stream {
	f.t.Helper()
	return f.watchAt(f.srv.URL, query, lastID)
}

// watchAt is watch on the server at base.
func (f *fixture) watchAt(base, query, lastID string) *stream {
	f.t.Helper()
	resp := f.openWatchAt(base, query, lastID)
	if resp.StatusCode != http.StatusOK {
		f.t.Fatalf("watch %s: status %d", query, resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		f.t.Fatalf("watch: Content-Type %q", ct)
	}
	s := &stream{t: f.t, resp: resp, events: make(chan sseEvent, 1024)}
	go func() {
		defer close(s.events)
		sc := bufio.NewScanner(resp.Body)
		var e sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if e != (sseEvent{}) {
					s.events <- e
				}
				e = sseEvent{}
			case line == ": heartbeat":
				s.beats.Add(1)
			case strings.HasPrefix(line, ":"), strings.HasPrefix(line, "retry:"):
			case strings.HasPrefix(line, "event: "):
				e.event = line[len("event: "):]
			case strings.HasPrefix(line, "id: "):
				e.id = line[len("id: "):]
			case strings.HasPrefix(line, "data: "):
				e.data = line[len("data: "):]
			}
		}
	}()
	first := s.next()
	if first.data != "" || first.id == "" {
		f.t.Fatalf("watch %s: the stream starts with %+v, want its head id", query, first)
	}
	s.head = first.id
	f.t.Cleanup(s.close)
	return s
}

func (f *fixture) openWatch(query, lastID string) *http.Response {
	f.t.Helper()
	return f.openWatchAt(f.srv.URL, query, lastID)
}

func (f *fixture) openWatchAt(base, query, lastID string) *http.Response {
	f.t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+"/tables/"+f.group+"/watch"+query, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	return resp
}

func (s *stream) close() { _ = s.resp.Body.Close() }

// next returns the next event, failing the test after 30 s without one.
func (s *stream) next() sseEvent {
	s.t.Helper()
	select {
	case e, ok := <-s.events:
		if !ok {
			s.t.Fatal("the watch stream ended")
		}
		return e
	case <-time.After(30 * time.Second):
		s.t.Fatal("no event within 30 s")
	}
	return sseEvent{}
}

// change is the data of a change event.
type change struct {
	Key       string          `json:"key"`
	Value     json.RawMessage `json:"value"`
	Version   uint64          `json:"version"`
	Writer    string          `json:"writer_traceparent"`
	EventTime *time.Time      `json:"event_time"`
	Deleted   bool            `json:"deleted"`
	id        string
}

func (s *stream) nextChange() change {
	s.t.Helper()
	e := s.next()
	if e.event != "" {
		s.t.Fatalf("got a %q event %s, want a change", e.event, e.data)
	}
	var c change
	if err := json.Unmarshal([]byte(e.data), &c); err != nil {
		s.t.Fatalf("change %q: %v", e.data, err)
	}
	c.id = e.id
	return c
}

var traceparentRE = regexp.MustCompile(`^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$`)

// seq is the sequence number of an id "<epoch>-<seq>".
func seq(t *testing.T, id string) uint64 {
	t.Helper()
	_, s, _ := strings.Cut(id, "-")
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatalf("id %q is not <epoch>-<seq>", id)
	}
	return n
}

// settled waits until the server has seen the acknowledgement of every
// write of the fixture's first 30 records (the head id of a new stream
// counts them) and returns that head.
func (f *fixture) settled() {
	f.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		s := f.watch("?key=no-such-key", "")
		n := seq(f.t, s.head)
		s.close()
		if n == 30 {
			return
		}
		if n > 30 || time.Now().After(deadline) {
			f.t.Fatalf("the server saw %d changes, want 30", n)
		}
		time.Sleep(20 * time.Millisecond) // poll interval of the condition
	}
}

// emit produces one record per key and adds them to the counts.
func (f *fixture) emit(keys ...string) {
	f.t.Helper()
	em, err := processors.NewEmitter(f.t.Context(), f.input, processors.WithKafka(f.k), processors.WithTracerProvider(f.tp))
	if err != nil {
		f.t.Fatal(err)
	}
	for _, k := range keys {
		f.counts[k]++
		em.Emit(k, []byte("x"), nil)
	}
	if err := em.Close(); err != nil {
		f.t.Fatal(err)
	}
}

// A watcher sees each change made after it subscribed exactly once, with
// the value, version and writer the table holds; a key watcher sees only
// its key.
func TestIntegrationWatchSeesEveryChangeAfterSubscribing(t *testing.T) {
	f := newFixture(t)
	f.settled()
	all := f.watch("?prefix=", "")
	one := f.watch("?key=k03", "")
	if seq(t, all.head) != 30 {
		t.Fatalf("head %s, want the 30th change", all.head)
	}
	want := map[string][]string{} // per key, the values in order
	var keys []string
	for i := range 21 {
		keys = append(keys, fmt.Sprintf("k%02d", (i*3)%7))
	}
	before := maps(f.counts)
	f.emit(keys...)
	for k, n := range before {
		for v := n + 1; v <= f.counts[k]; v++ {
			want[k] = append(want[k], strconv.Itoa(v))
		}
	}
	got := map[string][]string{}
	var seqs []uint64
	for range 21 {
		c := all.nextChange()
		if string(c.Value) != strconv.FormatUint(c.Version, 10) || !traceparentRE.MatchString(c.Writer) || c.EventTime == nil || c.Deleted {
			t.Fatalf("change %+v: want value = version, a writer traceparent and an event time", c)
		}
		got[c.Key] = append(got[c.Key], string(c.Value))
		seqs = append(seqs, seq(t, c.id))
	}
	for k := range want {
		if !slices.Equal(got[k], want[k]) {
			t.Errorf("key %s: changes %v, want %v", k, got[k], want[k])
		}
	}
	if len(got) != len(want) {
		t.Errorf("changes of keys %v, want those of %v", got, want)
	}
	for i, s := range seqs {
		if s != uint64(31+i) {
			t.Fatalf("ids %v, want 31 to 51 in order", seqs)
		}
	}
	for _, v := range want["k03"] {
		if c := one.nextChange(); c.Key != "k03" || string(c.Value) != v {
			t.Fatalf("key watcher: %+v, want k03 = %s", c, v)
		}
	}
	// Nothing else is pending for the key watcher: the next change it
	// sees is the next one of k03.
	f.emit("k05", "k03")
	if c := one.nextChange(); c.Key != "k03" || string(c.Value) != strconv.Itoa(f.counts["k03"]) {
		t.Fatalf("key watcher: %+v, want k03 = %d", c, f.counts["k03"])
	}
}

func maps(m map[string]int) map[string]int {
	out := make(map[string]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// A watcher that reconnects with Last-Event-ID gets the changes it missed
// meanwhile, once each; an id the server does not hold gets a "missed"
// event instead of a silent gap.
func TestIntegrationWatchResumesWithLastEventID(t *testing.T) {
	f := newFixture(t)
	f.settled()
	s := f.watch("?key=k01", "")
	f.emit("k01", "k02")
	c := s.nextChange()
	if c.Key != "k01" || string(c.Value) != strconv.Itoa(f.counts["k01"]) {
		t.Fatalf("first change %+v, want k01 = %d", c, f.counts["k01"])
	}
	s.close()
	// Changes while disconnected.
	from := f.counts["k01"]
	f.emit("k01", "k04", "k01", "k01", "k06")
	// Wait until the server has them all (the head of a new stream).
	kafkaWait(t, func() bool {
		p := f.watch("?key=no-such-key", "")
		defer p.close()
		return seq(t, p.head) == 37
	})
	r := f.watch("?key=k01", c.id)
	for v := from + 1; v <= f.counts["k01"]; v++ {
		if c := r.nextChange(); c.Key != "k01" || string(c.Value) != strconv.Itoa(v) {
			t.Fatalf("resumed: %+v, want k01 = %d", c, v)
		}
	}
	f.emit("k01")
	if c := r.nextChange(); string(c.Value) != strconv.Itoa(f.counts["k01"]) {
		t.Fatalf("after resuming: %+v, want k01 = %d (no duplicates, no gaps)", c, f.counts["k01"])
	}

	stale := f.watch("?key=k01", "lq2x0-5") // an id of another process
	e := stale.next()
	var g struct {
		LastEventID string `json:"last_event_id"`
		Oldest      string `json:"oldest_available"`
	}
	if err := json.Unmarshal([]byte(e.data), &g); err != nil || e.event != "missed" || g.LastEventID != "lq2x0-5" || seq(t, g.Oldest) != 1 {
		t.Fatalf("stale id: %+v (%+v), want a missed event naming it and the oldest id held", e, g)
	}
}

// kafkaWait polls cond for up to a minute.
func kafkaWait(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within a minute")
		}
		time.Sleep(20 * time.Millisecond) // poll interval of the condition
	}
}

// Watchers beyond the cap get 429 with Retry-After until one leaves; bad
// parameters get 400.
func TestIntegrationWatchCap(t *testing.T) {
	f := newFixture(t, serve.WithMaxWatchers(2))
	a := f.watch("?key=k01", "")
	f.watch("?prefix=k", "")
	resp := f.openWatch("?key=k02", "")
	var p problem
	_ = json.NewDecoder(resp.Body).Decode(&p)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || p.Status != 429 {
		t.Fatalf("third watcher: %d %+v, want 429 with Retry-After", resp.StatusCode, p)
	}
	a.close()
	kafkaWait(t, func() bool {
		resp := f.openWatch("?key=k02", "")
		defer resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	// The subscription runs in a span "watch <table>", child of the
	// client's traceparent.
	a.close()
	const tid = "4bf92f3577b34da6a3ce929d0e0e4736"
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/tables/"+f.group+"/watch?key=k05", nil)
	req.Header.Set("traceparent", "00-"+tid+"-00f067aa0ba902b7-01")
	kafkaWait(t, func() bool {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	kafkaWait(t, func() bool {
		for _, sp := range f.spans.Ended() {
			if sp.Name() == "watch "+f.group && sp.SpanKind().String() == "server" && sp.Parent().TraceID().String() == tid {
				return true
			}
		}
		return false
	})
	for _, q := range []string{"", "?key=a&prefix=b"} {
		if resp := f.get("/tables/"+f.group+"/watch"+q, nil, &p); resp.StatusCode != 400 {
			t.Errorf("watch%s: %d, want 400", q, resp.StatusCode)
		}
	}
}

// A stream outlives the server's read and write timeouts (heartbeats keep
// it going and still deliver changes), and shutting down ends it at once
// instead of waiting for it to turn idle.
func TestIntegrationWatchOutlivesServerTimeouts(t *testing.T) {
	f := newFixture(t, serve.WithTimeouts(200*time.Millisecond, 200*time.Millisecond), serve.WithHeartbeat(40*time.Millisecond))
	f.settled()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- f.server.Run(ctx, ln, nil) }()
	s := f.watchAt("http://"+ln.Addr().String(), "?key=k02", "")
	kafkaWait(t, func() bool { return s.beats.Load() >= 15 }) // 600 ms: thrice the timeouts
	f.emit("k02")
	if c := s.nextChange(); string(c.Value) != strconv.Itoa(f.counts["k02"]) {
		t.Fatalf("after the timeouts: %+v, want k02 = %d", c, f.counts["k02"])
	}
	stopped := time.Now()
	cancel()
	select {
	case err := <-ran:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(4 * time.Second):
		t.Fatal("Run did not return within 4 s of the shutdown: the stream held it")
	}
	if d := time.Since(stopped); d > 2*time.Second {
		t.Fatalf("shutdown took %v", d)
	}
	for range s.events { // drains until the stream ends
	}
}
