package processors

import (
	"fmt"
	"sync"
	"time"

	"github.com/lovoo/goka"
)

// HeaderStreamTime is the record header in which a windowed aggregation
// tells the operators downstream of its table (a WindowSuppressor) the
// stream time at which it applied the update the record carries
// (milliseconds since the Unix epoch, in decimal, like HeaderEventTime).
// A window W of the table takes no update once this stream time has
// passed W's close, so an operator that closes W when the stream time
// carried by the updates of W's partition passes W's close has seen every
// update of W: the aggregation decides lateness once, for both.
const HeaderStreamTime = "weft.stream.time"

// StreamClock is the stream time of a windowed aggregation: per partition
// of its group, the newest event time among the records applied to its
// table. The aggregation decides with it whether a record is late for its
// window. It is kept in the table itself: every applied record stores its
// event time in the envelope of the window it updated, so when a partition
// is (re)assigned its stream time is restored as the newest event time in
// the partition's store (a scan of the store, once per assignment) and a
// restart does not reopen closed windows. It is safe for concurrent use
// by the partition goroutines of a processor.
type StreamClock struct {
	rt    *Runtime
	mu    sync.Mutex
	parts map[int32]*clockPart
}

type clockPart struct {
	store any // the store the time was restored from
	now   time.Time
}

// NewStreamClock returns the stream clock of the group whose callbacks
// use rt (a group with a table).
func NewStreamClock(rt *Runtime) *StreamClock {
	return &StreamClock{rt: rt, parts: map[int32]*clockPart{}}
}

// Now returns the stream time of the partition of ctx's record (zero
// before any record was applied).
func (c *StreamClock) Now(ctx goka.Context) (time.Time, error) {
	part, err := c.part(ctx.Partition())
	if err != nil {
		return time.Time{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return part.now, nil
}

// Advance moves the stream time of the partition of ctx's record to t,
// the event time of a record applied to the table, if t is newer.
func (c *StreamClock) Advance(ctx goka.Context, t time.Time) error {
	part, err := c.part(ctx.Partition())
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(part.now) {
		part.now = t
	}
	return nil
}

// part returns the clock of partition p, restored from the partition's
// store when the partition is new to it.
func (c *StreamClock) part(p int32) (*clockPart, error) {
	var store any
	scan := func(func(string, *Stored) error) error { return nil }
	if c.rt.scan != nil {
		store, scan = c.rt.scan(p)
	}
	c.mu.Lock()
	part := c.parts[p]
	c.mu.Unlock()
	if part != nil && part.store == store {
		return part, nil
	}
	part = &clockPart{store: store}
	err := scan(func(_ string, s *Stored) error {
		if s.Meta.EventTime.After(part.now) {
			part.now = s.Meta.EventTime
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("restore the stream time of partition %d: %w", p, err)
	}
	c.mu.Lock()
	c.parts[p] = part
	c.mu.Unlock()
	return part, nil
}

// streamTimeOf is the stream time an update carries in HeaderStreamTime;
// without one (written by an older weft), its event time, which is never
// newer than the stream time it was applied at.
func streamTimeOf(ctx *Context) time.Time {
	if h := ctx.g.Headers()[HeaderStreamTime]; len(h) > 0 {
		if ms, ok := parseDecimal(h); ok {
			return time.UnixMilli(ms).UTC()
		}
	}
	return ctx.Timestamp()
}

// WithStreamTime returns a context for the record of ctx (a *Context, as
// Handle makes) whose emitted records also carry stream time t in
// HeaderStreamTime; everything else goes to ctx. A windowed aggregation
// passes it on to what follows its table.
func WithStreamTime(ctx goka.Context, t time.Time) goka.Context {
	c, ok := ctx.(*Context)
	if !ok {
		return ctx
	}
	return &streamTimed{handleContext: c, t: t}
}

// handleContext names Context as an embedded field without hiding its
// Context method.
type handleContext = Context

// streamTimed is a *Context whose emits carry a stream time.
type streamTimed struct {
	*handleContext
	t time.Time
	h goka.Headers // made by the first Emit
}

// Emit emits like Context.Emit, with the stream time.
func (c *streamTimed) Emit(topic goka.Stream, key string, value any, options ...goka.ContextOption) {
	if c.h == nil {
		c.h = goka.Headers{HeaderStreamTime: appendEventTime(nil, c.t)} // same form as HeaderEventTime
	}
	c.handleContext.Emit(topic, key, value, append(options, goka.WithCtxEmitHeaders(c.h))...)
}

// contextOf is the *Context of a context Handle made, possibly wrapped.
func contextOf(ctx goka.Context) (*Context, bool) {
	switch c := ctx.(type) {
	case *Context:
		return c, true
	case *streamTimed:
		return c.handleContext, true
	}
	return nil, false
}
