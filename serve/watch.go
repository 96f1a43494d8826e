package serve

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/weftstream/weft/processors"
	"github.com/weftstream/weft/tracing"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// tracerName names the tracer of the spans this package starts itself.
const tracerName = "github.com/weftstream/weft/serve"

// Defaults of change notifications.
const (
	// DefaultMaxWatchers bounds the concurrent watch streams of a server
	// (429 beyond it).
	DefaultMaxWatchers = 1000
	// DefaultChangeBuffer is how many recent changes of each table are
	// kept for clients that resume with Last-Event-ID.
	DefaultChangeBuffer = 4096
	// DefaultHeartbeat is the interval of the comments that keep an idle
	// stream (and the proxies on its way) alive.
	DefaultHeartbeat = 15 * time.Second
	// watcherBuffer is how many changes a watcher may have unsent before
	// it is dropped as too slow.
	watcherBuffer = 64
	// streamWriteTimeout bounds each write of a stream: a client that
	// stops reading is cut off after it.
	streamWriteTimeout = 10 * time.Second
)

// WithMaxWatchers bounds the concurrent watch streams (default
// DefaultMaxWatchers); more are answered 429.
func WithMaxWatchers(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.maxWatchers = n
		}
	}
}

// WithChangeBuffer sets how many recent changes per table are kept for
// resuming watchers (default DefaultChangeBuffer).
func WithChangeBuffer(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.changeBuffer = n
		}
	}
}

// WithHeartbeat sets the interval of heartbeat comments on idle watch
// streams (default DefaultHeartbeat).
func WithHeartbeat(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.heartbeat = d
		}
	}
}

// watch answers GET /tables/{table}/watch?key=|prefix= with server-sent
// events: one per acknowledged change of a matching key (a Value; a
// delete has deleted=true and value null), with ids to resume from with
// Last-Event-ID; an event "missed" if changes after that id are no
// longer held; an event "unavailable" (and the end of the stream) when
// the watched key's partition leaves this instance.
func (s *Server) watch(w http.ResponseWriter, r *http.Request) {
	t, ok := s.table(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	_, hasKey := q["key"]
	_, hasPrefix := q["prefix"]
	if hasKey == hasPrefix {
		writeProblem(w, http.StatusBadRequest, fmt.Sprintf("watch takes ?key=<key> or ?prefix=<prefix> (one of them); the value of a key named \"watch\" is read with GET /tables/%s?prefix=watch&limit=1", t.Group()))
		return
	}
	wt := &watcher{key: q.Get("key"), prefix: hasPrefix, ch: make(chan change, watcherBuffer), gone: make(chan struct{})}
	if hasPrefix {
		wt.key = q.Get("prefix")
	}
	if len(wt.key) > s.cfg.maxKeyBytes {
		writeProblem(w, http.StatusRequestURITooLong, fmt.Sprintf("the key or prefix has %d bytes; at most %d are accepted", len(wt.key), s.cfg.maxKeyBytes))
		return
	}
	if !hasPrefix && !s.serves(t, wt.key) {
		s.forwardStream(w, r, t, wt.key)
		return
	}
	var partial *partialWatch
	if hasPrefix {
		partial = s.partial(r, t)
	}
	lastID := r.Header.Get("Last-Event-ID")
	if lastID == "" {
		lastID = q.Get("last_event_id") // for clients that cannot set headers
	}
	if len(lastID) > 64 {
		writeProblem(w, http.StatusBadRequest, "Last-Event-ID is too long to be an id of this server")
		return
	}
	if n := s.watchers.Add(1); n > int64(s.cfg.maxWatchers) {
		s.watchers.Add(-1)
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds))
		writeProblem(w, http.StatusTooManyRequests, fmt.Sprintf("this server already streams changes to %d watchers, its limit; retry later", s.cfg.maxWatchers))
		return
	}
	defer s.watchers.Add(-1)
	h := s.hubs[string(t.Group())]
	// The subscription (not the stream, which lasts) runs in a span
	// "watch <table>", child of the request's traceparent.
	ctx := tracing.Propagator().Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	_, span := s.cfg.tracerProvider.Tracer(tracerName).Start(ctx, "watch "+string(t.Group()), trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.request.method", r.Method), attribute.String("url.path", r.URL.Path),
			attribute.String("http.route", "/tables/{table}/watch"), tracing.AttrStateTable.String(t.Topic()),
			attribute.String("weft.watch.match", wt.key), attribute.Bool("weft.watch.prefix", wt.prefix)))
	replay, missed, head, err := h.subscribe(wt, lastID)
	if err != nil {
		span.End()
		writeProblem(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	defer h.unsubscribe(wt)
	span.SetAttributes(attribute.Int("weft.watch.replayed", len(replay)), attribute.Bool("weft.watch.missed", missed != nil))

	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{}) // the server's ReadTimeout would end the stream
	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Accel-Buffering", "no")
	hdr.Set("X-Content-Type-Options", "nosniff")
	write := func(f func(io.Writer)) bool {
		if err := rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return false
		}
		f(w)
		return rc.Flush() == nil
	}
	group := string(t.Group())
	ok = write(func(w io.Writer) {
		// The id makes a reconnecting browser resume from here even if no
		// change came.
		fmt.Fprintf(w, "retry: 2000\nid: %s\n: watching %s\n\n", head, group)
		if partial != nil {
			writeEvent(w, "partial", "", partial)
		}
		if missed != nil {
			writeEvent(w, "missed", head, missed)
		}
		for _, c := range replay {
			writeEvent(w, "", h.id(c.seq), s.changeValue(t, c))
		}
	})
	span.End()
	beat := time.NewTicker(s.cfg.heartbeat)
	defer beat.Stop()
	for ok {
		select {
		case <-r.Context().Done():
			return
		case <-wt.gone:
			write(func(w io.Writer) { fmt.Fprintf(w, ": dropped: %s\n\n", wt.reason) })
			return
		case c := <-wt.ch:
			ok = write(func(w io.Writer) { writeEvent(w, "", h.id(c.seq), s.changeValue(t, c)) })
		case <-beat.C:
			if !wt.prefix && !s.serves(t, wt.key) {
				write(func(w io.Writer) {
					writeEvent(w, "unavailable", "", map[string]any{"partition": t.Partition(wt.key),
						"detail": "the key's partition is no longer served by this instance; watch it where it is served"})
				})
				return
			}
			ok = write(func(w io.Writer) { io.WriteString(w, ": heartbeat\n\n") })
		}
	}
}

// serves reports whether key's partition is readable here.
func (s *Server) serves(t *processors.TableReader, key string) bool {
	p := t.Partition(key)
	for _, q := range t.Served() {
		if q == p {
			return true
		}
	}
	return false
}

// changeValue renders a change as the API's Value.
func (s *Server) changeValue(t *processors.TableReader, c change) Value {
	group := string(t.Group())
	if c.value == nil {
		return Value{Table: group, Key: c.key, Value: json.RawMessage("null"), Deleted: true}
	}
	env, err := t.Decode(c.value)
	if err != nil {
		s.cfg.logger.Warn("watch: undecodable value", "table", t.Topic(), "key", c.key, "error", err)
		return Value{Table: group, Key: c.key, Value: json.RawMessage("null"), ValueText: string(c.value)}
	}
	return valueOf(group, c.key, env)
}

// writeEvent writes one server-sent event (JSON data on one line).
func writeEvent(w io.Writer, event, id string, data any) {
	b, err := json.Marshal(data)
	if err != nil {
		b = []byte("null")
	}
	if event != "" {
		fmt.Fprintf(w, "event: %s\n", event)
	}
	if id != "" {
		fmt.Fprintf(w, "id: %s\n", id)
	}
	fmt.Fprintf(w, "data: %s\n\n", b)
}
