package processors

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/lovoo/goka"
	"github.com/weftstream/weft/tracing"
	"go.opentelemetry.io/otel/trace"
)

// DefaultMaxLinks bounds the contributor links of one flush span, like the
// OTel SDK's default span link limit; contributors beyond it are counted in
// the span attribute weft.links.dropped.
const DefaultMaxLinks = 128

// Coalescer is the coalesced-emit operator: handlers hand it the latest
// value of a key (Add) instead of emitting at once, and every interval it
// emits the latest value of each key that changed, one record per key. The
// emit runs in a span "flush <name>" linked (weft.link.kind=coalesced) to
// every span that contributed to the value, and the record carries the
// flush span's traceparent. The input records of a flushed value are
// committed only after its record is acknowledged (goka's DeferCommit), so
// a crash before the flush loses nothing: the inputs are consumed again.
//
// Flushing emits the buffered keys of all partitions together, so offsets
// are committed in order within each input partition.
//
// By default a flush writes to Kafka through its own Emitter; CoalesceTo
// hands the records to a CoalesceSink instead (goka's tester, where weft
// test collects them), and CommitOnAdd commits each input at once, for a
// runner that cannot wait for a deferred commit.
type Coalescer struct {
	rt       *Runtime
	name     string
	output   goka.Stream
	codec    goka.Codec
	interval time.Duration
	maxLinks int
	opts     []Option
	err      error        // an option NewEmitter does not use (Run and NewProcessor fail with it)
	sink     CoalesceSink // nil: the Emitter em, opened by Run
	// commitOnAdd: Add leaves the input's commit to goka (CommitOnAdd).
	commitOnAdd bool

	mu      sync.Mutex
	buf     map[string]*coalesced
	order   []string // keys in the order they first changed since the last flush
	flushMu sync.Mutex
	em      *Emitter
	flushes int64
}

type coalesced struct {
	value   any
	links   []trace.Link
	dropped int
	commits []func(error)
}

// CoalesceOption configures a Coalescer.
type CoalesceOption func(*Coalescer)

// FlushEvery sets the flush interval (default one second). Zero flushes
// only when Flush is called and when the processor stops.
func FlushEvery(d time.Duration) CoalesceOption { return func(c *Coalescer) { c.interval = d } }

// MaxLinks bounds the links of a flush span (default DefaultMaxLinks).
func MaxLinks(n int) CoalesceOption {
	return func(c *Coalescer) {
		if n > 0 {
			c.maxLinks = n
		}
	}
}

// CoalesceSink receives the records of a Coalescer's flushes instead of
// Kafka (CoalesceTo).
type CoalesceSink interface {
	// EmitCoalesced writes one coalesced record of output: the key, its
	// latest value encoded with the coalescer's codec, and headers that
	// carry the traceparent of the flush span (ctx holds the span). It is
	// called synchronously, once per key, in the order the keys first
	// changed since the last flush; the key's inputs are committed with
	// the error it returns (unless CommitOnAdd committed them already).
	EmitCoalesced(ctx context.Context, output goka.Stream, key string, value []byte, headers goka.Headers) error
}

// CoalesceSinkFunc is a function that is a CoalesceSink.
type CoalesceSinkFunc func(ctx context.Context, output goka.Stream, key string, value []byte, headers goka.Headers) error

// EmitCoalesced calls f.
func (f CoalesceSinkFunc) EmitCoalesced(ctx context.Context, output goka.Stream, key string, value []byte, headers goka.Headers) error {
	return f(ctx, output, key, value, headers)
}

// CoalesceTo makes the flushes hand their records to sink instead of
// emitting them to Kafka: Run opens no Emitter, and Flush works without
// Run. Spans and links are those of a Kafka flush.
func CoalesceTo(sink CoalesceSink) CoalesceOption {
	return func(c *Coalescer) { c.sink = sink }
}

// CommitOnAdd makes Add leave the commit of the input to goka (committed
// when the callback returns) instead of deferring it until the flush that
// emits the value. It is for goka's tester, which waits for every commit
// before the next input; with Kafka it gives up the guarantee that a crash
// before the flush loses nothing.
func CommitOnAdd() CoalesceOption {
	return func(c *Coalescer) { c.commitOnAdd = true }
}

// NewCoalescer returns a coalescer named name (the span is "flush <name>")
// that emits values encoded with codec to output. opts configure how it
// reaches Kafka: WithKafka and WithTracerProvider, the options of
// NewEmitter (EmitterOptions picks them from a longer list); another
// option makes NewProcessor refuse the coalescer (WithCoalescer). copts
// set the flush interval, the link bound and where the records go
// (CoalesceTo; default Kafka).
func NewCoalescer(rt *Runtime, name string, output goka.Stream, codec goka.Codec, copts []CoalesceOption, opts ...Option) *Coalescer {
	c := &Coalescer{rt: rt, name: name, output: output, codec: codec, interval: time.Second,
		maxLinks: DefaultMaxLinks, opts: opts, buf: map[string]*coalesced{}}
	for _, o := range copts {
		o(c)
	}
	_, c.err = buildConfig("NewCoalescer", emitterOptions, opts)
	return c
}

// Add records value as the latest value of key, with the span of ctx as a
// contributor, and defers the commit of ctx's record until the value is
// flushed (with CommitOnAdd, goka commits it when the callback returns).
// Call it from a handler with the *Context it was given.
func (c *Coalescer) Add(ctx goka.Context, key string, value any) {
	var commit func(error)
	if !c.commitOnAdd {
		commit = ctx.DeferCommit()
	}
	var sc trace.SpanContext
	if tc, ok := ctx.(*Context); ok {
		sc = tc.span.SpanContext()
	} else {
		sc = trace.SpanContextFromContext(ctx.Context())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.buf[key]
	if !ok {
		e = &coalesced{}
		c.buf[key] = e
		c.order = append(c.order, key)
	}
	e.value = value
	if commit != nil {
		e.commits = append(e.commits, commit)
	}
	if !sc.IsValid() {
		return
	}
	if len(e.links) < c.maxLinks {
		e.links = append(e.links, tracing.Link(sc, tracing.LinkCoalesced))
	} else {
		e.dropped++
		if sc.IsSampled() && c.rt != nil {
			c.rt.tally.linksDropped.Add(1)
		}
	}
}

// Pending returns the number of input records whose commit waits for a
// flush (none with CommitOnAdd).
func (c *Coalescer) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, e := range c.buf {
		n += len(e.commits)
	}
	return n
}

// Flushes returns how many flushes emitted something.
func (c *Coalescer) Flushes() int64 {
	c.flushMu.Lock()
	defer c.flushMu.Unlock()
	return c.flushes
}

// Run flushes every interval until ctx ends, then flushes once more so that
// a clean stop commits everything it consumed. The processor runs it (see
// WithCoalescer). With CoalesceTo it flushes to the sink and opens no
// Emitter.
func (c *Coalescer) Run(ctx context.Context) error {
	if c.err != nil {
		return c.err
	}
	var em *Emitter
	if c.sink == nil {
		var err error
		if em, err = NewEmitter(context.WithoutCancel(ctx), string(c.output), c.opts...); err != nil {
			return err
		}
		c.flushMu.Lock()
		c.em = em
		c.flushMu.Unlock()
	}
	var tick <-chan time.Time
	if c.interval > 0 {
		t := time.NewTicker(c.interval)
		defer t.Stop()
		tick = t.C
	}
	var errs []error
	for running := true; running; {
		select {
		case <-ctx.Done():
			running = false
		case <-tick:
		}
		if err := c.Flush(); err != nil {
			errs = append(errs, err)
			break
		}
	}
	if em != nil {
		errs = append(errs, em.Close())
	}
	return errors.Join(errs...)
}

// Flush emits the latest value of every key added since the last flush and
// waits for the acknowledgements; then the contributing input records are
// committed. With CoalesceTo it hands the records to the sink, in the
// order the keys first changed, and returns when the sink has them.
func (c *Coalescer) Flush() error {
	c.flushMu.Lock()
	defer c.flushMu.Unlock()
	if c.em == nil && c.sink == nil {
		return errors.New("coalescer is not running")
	}
	c.mu.Lock()
	buf, order := c.buf, c.order
	c.buf, c.order = map[string]*coalesced{}, nil
	c.mu.Unlock()
	if len(order) == 0 {
		return nil
	}
	var mu sync.Mutex
	var firstErr error
	for _, key := range order {
		e := buf[key]
		data, err := c.codec.Encode(e.value)
		if err != nil {
			err = fmt.Errorf("coalescer %s: encode value of %q: %w", c.name, key, err)
			for _, commit := range e.commits {
				commit(err)
			}
			mu.Lock()
			firstErr = errors.Join(firstErr, err)
			mu.Unlock()
			continue
		}
		ctx, span := c.rt.tracer.Start(context.Background(), "flush "+c.name, trace.WithLinks(e.links...),
			trace.WithAttributes(tracing.AttrLinksDropped.Int(e.dropped), tracing.AttrStateKey.String(key)))
		h := goka.Headers{}
		c.rt.tracer.Inject(ctx, h)
		commits := e.commits
		done := func(err error) {
			if err != nil {
				tracing.RecordError(span, err)
				mu.Lock()
				firstErr = errors.Join(firstErr, err)
				mu.Unlock()
			}
			span.End()
			for _, commit := range commits {
				commit(err)
			}
		}
		if c.sink == nil {
			c.em.EmitHeaders(key, data, h, done)
			continue
		}
		if err := c.sink.EmitCoalesced(ctx, c.output, key, data, h); err != nil {
			done(fmt.Errorf("coalescer %s: emit %q to %s: %w", c.name, key, c.output, err))
			continue
		}
		done(nil)
	}
	if c.sink == nil {
		c.em.Flush()
	}
	c.flushes++
	return firstErr
}
