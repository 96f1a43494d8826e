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
type Coalescer struct {
	rt       *Runtime
	name     string
	output   goka.Stream
	codec    goka.Codec
	interval time.Duration
	maxLinks int
	opts     []Option
	err      error // an option NewEmitter does not use (Run and NewProcessor fail with it)

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

// NewCoalescer returns a coalescer named name (the span is "flush <name>")
// that emits values encoded with codec to output. opts configure how it
// reaches Kafka: WithKafka and WithTracerProvider, the options of
// NewEmitter (EmitterOptions picks them from a longer list); another
// option makes NewProcessor refuse the coalescer (WithCoalescer).
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
// flushed. Call it from a handler with the *Context it was given.
func (c *Coalescer) Add(ctx goka.Context, key string, value any) {
	commit := ctx.DeferCommit()
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
	e.commits = append(e.commits, commit)
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

// Pending returns the number of input records waiting for a flush.
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
// WithCoalescer).
func (c *Coalescer) Run(ctx context.Context) error {
	if c.err != nil {
		return c.err
	}
	em, err := NewEmitter(context.WithoutCancel(ctx), string(c.output), c.opts...)
	if err != nil {
		return err
	}
	c.flushMu.Lock()
	c.em = em
	c.flushMu.Unlock()
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
	errs = append(errs, em.Close())
	return errors.Join(errs...)
}

// Flush emits the latest value of every key added since the last flush and
// waits for the acknowledgements; then the contributing input records are
// committed.
func (c *Coalescer) Flush() error {
	c.flushMu.Lock()
	defer c.flushMu.Unlock()
	if c.em == nil {
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
		c.em.EmitHeaders(key, data, h, func(err error) {
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
		})
	}
	c.em.Flush()
	c.flushes++
	return firstErr
}
