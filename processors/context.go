package processors

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/lovoo/goka"
	"github.com/weftstream/weft/statestore"
	"github.com/weftstream/weft/tracing"
	"go.opentelemetry.io/otel/trace"
)

// Context is the goka.Context weft hands to handlers. It runs inside the
// span "process <topic>" of the record and implements the tracing
// semantics of docs/architecture.md:
//
//   - Value reads the key's envelope; SetValue and Delete link the span to
//     the writer of the previous value (weft.link.kind=previous_value) and
//     store the current span as the writer of the new one;
//   - Lookup and Join link to the writer of the value read (lookup, join);
//   - Emit, Loopback and table writes carry the span's traceparent and the
//     record's event time (HeaderEventTime); emitted records also name the
//     record they were emitted for (HeaderFrom).
//
// With the record cache of a processor (WithRecordCache, on by default)
// Value and Stored read the key's cached value and SetValue and Delete
// update it there; the cache writes the table when it flushes.
//
// It also makes state updates effectively-once (applied.go): when the
// key's envelope shows that this record was applied already (replayed),
// state writes are skipped while emits still happen, so that outputs stay
// at-least-once.
type Context struct {
	g    goka.Context
	rt   *Runtime
	ps   tracing.ProcessSpan // the record's span; its context on demand
	span trace.Span          // ps.Span()
	// writer is the span's reference as stored values name it (writerRef).
	writer    statestore.SpanRef
	writerSet bool

	prev         *Stored
	prevLoaded   bool
	replayed     bool             // the record's offset is already applied to the key
	rejected     *Rejection       // the record went to the dead-letter topic
	traceHeaders goka.Headers     // produced.h
	produced     *producedHeaders // nil until headers
	// opts is room for produced.opt as the only option, headerBuf for
	// the values of traceHeaders (the traceparent and the event time)
	// until the record is done (released).
	opts      [1]goka.ContextOption
	headerBuf [traceparentLen + 20]byte
	released  bool

	eventTime    time.Time
	eventTimeSet bool

	id    statestore.SourceOffset // the record's identity (see identity)
	idSet bool
	emits uint32 // records emitted so far by this callback
	// emitOffset is the offset emitted records name as theirs (HeaderFrom):
	// the record's, or for a copy of a record that was applied before, the
	// offset of the copy that was applied (see emitAs).
	emitOffset    int64
	emitOffsetSet bool

	// The record cache of the record's partition (nil without a cache)
	// and the key's entry in it (set by loadPrev).
	cpart  *cachePart
	centry *cacheEntry
}

var _ goka.Context = (*Context)(nil)

// Topic returns the record's topic.
func (c *Context) Topic() goka.Stream { return c.g.Topic() }

// Key returns the record's key.
func (c *Context) Key() string { return c.g.Key() }

// Partition returns the record's partition.
func (c *Context) Partition() int32 { return c.g.Partition() }

// Offset returns the record's offset.
func (c *Context) Offset() int64 { return c.g.Offset() }

// Group returns the processor's group.
func (c *Context) Group() goka.Group { return c.g.Group() }

// Headers returns the record's headers.
func (c *Context) Headers() goka.Headers { return c.g.Headers() }

// Timestamp returns the record's event time: the time SetEventTime set,
// else the time in the record's HeaderEventTime header (written by the
// weft processor that produced the record), else the record's timestamp.
// Windows, stream time and the envelope's event time all use it.
func (c *Context) Timestamp() time.Time {
	if !c.eventTimeSet {
		c.eventTime, c.eventTimeSet = eventTimeOf(c.g), true
	}
	return c.eventTime
}

// SetEventTime sets the event time of the record (a timestamp extractor
// calls it before the record is processed further). Records emitted
// afterwards carry it in their HeaderEventTime header.
func (c *Context) SetEventTime(t time.Time) {
	c.eventTime, c.eventTimeSet = t, true
	if c.traceHeaders != nil {
		c.traceHeaders[HeaderEventTime] = appendEventTime(nil, t)
	}
}

// Fail stops the processor with err; it does not return. Processor.Run
// returns err.
func (c *Context) Fail(err error) {
	tracing.RecordError(c.span, err)
	c.rt.fail(c.g, err)
}

// DeferCommit defers the commit of the record's offset until the returned
// function is called.
func (c *Context) DeferCommit() func(error) { return c.g.DeferCommit() }

// Context returns the context of the record's span.
func (c *Context) Context() context.Context { return c.ps.Context() }

// Span returns the record's span.
func (c *Context) Span() trace.Span { return c.span }

func (c *Context) loadPrev() {
	if c.prevLoaded {
		return
	}
	c.prevLoaded = true
	var s *Stored
	if p := c.cpart; p != nil {
		e := p.lookup(c.g.Key())
		if e == nil {
			s, _ = c.g.Value().(*Stored)
			e = c.rt.cache.insert(p, c.g.Key(), s)
		}
		c.centry = e
		s = e.value
	} else {
		s, _ = c.g.Value().(*Stored)
	}
	if s == nil {
		return
	}
	if s.err != nil {
		c.Fail(fmt.Errorf("the table of group %s holds a value for key %q that this processor cannot decode (%w): "+
			"was the group name used before by a different topology? Give this one another name (app), or delete "+
			"the table topic %s-table and the state directory to start over", c.g.Group(), c.g.Key(), s.err, c.g.Group()))
		return // not reached: Fail does not return
	}
	c.prev = s
	c.replayed = covered(s.Meta.Sources, c.identity())
}

// appendFrom appends the HeaderFrom value of the next record the callback
// emits.
func (c *Context) appendFrom(b []byte) []byte {
	off := c.g.Offset()
	if c.emitOffsetSet {
		off = c.emitOffset
	}
	b = append(b, c.g.Topic()...)
	b = append(b, '/')
	b = strconv.AppendInt(b, int64(c.g.Partition()), 10)
	b = append(b, '/')
	b = strconv.AppendInt(b, off, 10)
	b = append(b, '/')
	return strconv.AppendUint(b, uint64(c.emits), 10)
}

// Value returns the key's current user value, or nil.
func (c *Context) Value() any {
	c.loadPrev()
	if c.prev == nil {
		return nil
	}
	return c.prev.Value
}

// Stored returns the key's current value with its envelope, or nil.
func (c *Context) Stored() *Stored {
	c.loadPrev()
	return c.prev
}

// headers returns the record headers to attach to produced records: the
// traceparent of the record's span and the record's event time.
func (c *Context) headers() goka.Headers {
	if c.traceHeaders == nil {
		ph, _ := c.rt.headerMaps.Get().(*producedHeaders)
		if ph == nil {
			ph = &producedHeaders{h: goka.Headers{}}
			ph.opt = goka.WithCtxEmitHeaders(ph.h)
		}
		c.produced, c.traceHeaders = ph, ph.h
		// The values are parts of headerBuf, which nothing writes again:
		// goka copies the map, not the values, of the records it
		// produces.
		buf := c.headerBuf[:0]
		if c.released {
			buf = nil // a Context used after its record: headerBuf is in use
		}
		if c.span.SpanContext().IsValid() {
			buf = c.rt.tracer.InjectProcessSpan(&c.ps, c.traceHeaders, buf)
		}
		if ts := c.Timestamp(); !ts.IsZero() {
			n := len(buf)
			buf = appendEventTime(buf, ts)
			c.traceHeaders[HeaderEventTime] = buf[n:len(buf):len(buf)]
		}
	}
	return c.traceHeaders
}

// producedHeaders is the header map of the records a Context produces,
// with goka's option that gives them, which the Contexts of later records
// reuse (Runtime.headerMaps): goka copies the map (not its values) while
// it applies the option, within the call that produces the record.
type producedHeaders struct {
	h   goka.Headers
	opt goka.ContextOption
}

// release gives the header map back for the Contexts of later records
// once the callback is done with the record.
func (c *Context) release() {
	c.released = true
	if ph := c.produced; ph != nil {
		c.produced, c.traceHeaders = nil, nil
		clear(ph.h)
		c.rt.headerMaps.Put(ph)
	}
}

// withHeaders returns options with the option that gives a produced
// record the headers (see headers), if there are any.
func (c *Context) withHeaders(options []goka.ContextOption) []goka.ContextOption {
	if len(c.headers()) == 0 {
		return options
	}
	if len(options) == 0 {
		// goka only reads the options during the call.
		c.opts[0] = c.produced.opt
		return c.opts[:]
	}
	return append(options, c.produced.opt)
}

// SetValue stores value for the key in an envelope that names the record's
// span as writer, links the span to the previous writer, and writes the
// table record with the span's traceparent.
func (c *Context) SetValue(value any, options ...goka.ContextOption) {
	c.setValue(value, false, options)
}

// setValue is SetValue; with collect the new envelope also lists the
// writers of the versions before it (since the last version written
// without collect) and the current span as contributors, sampled ones
// only and bounded by statestore.MaxContributors, with the rest counted
// in Dropped.
func (c *Context) setValue(value any, collect bool, options []goka.ContextOption) {
	c.loadPrev()
	if c.replayed && c.centry == nil {
		return
	}
	if c.prev != nil {
		c.linkPrevious()
	}
	in := versionInput{value: value, writer: c.writerRef(), eventTime: c.Timestamp(), id: c.identity(), collect: collect, job: c.rt.replayJob()}
	if in.id.Upstream {
		// Also the record's own offset: a re-run of another copy of it
		// emits under this offset (see emitAs).
		in.own, in.ownSet = statestore.SourceOffset{Topic: string(c.g.Topic()), Partition: c.g.Partition(), Offset: c.g.Offset()}, true
	}
	switch {
	case c.replayed:
		// A re-run of a redelivered record: the state is not written; the
		// next redelivered record of the key re-runs against this value.
		next := newVersion(c.prev, in)
		c.cpart.setReplay(c.centry, next)
		c.prev = next
	case c.cpart != nil:
		// Into the record cache, which may update its value in place.
		var lost bool
		if c.prev, lost = c.rt.cache.set(c.cpart, c.centry, in); lost {
			c.rt.tally.linksDropped.Add(1)
		}
	default:
		next := newVersion(c.prev, in)
		if collect {
			var lost bool
			if next.Meta.Contributors, next.Meta.Dropped, lost = addContributor(c.prev, in.writer); lost {
				c.rt.tally.linksDropped.Add(1)
			}
		}
		c.g.SetValue(next, c.withHeaders(options)...)
		c.prev = next
	}
	c.prevLoaded = true
}

// newVersion returns the version of a key that in makes after prev (nil:
// none), without contributors.
func newVersion(prev *Stored, in versionInput) *Stored {
	var sources []statestore.SourceOffset
	ver := uint64(1)
	if prev != nil {
		sources, ver = prev.Meta.Sources, prev.Meta.Version+1
	}
	n := len(sources) + 1 // withSource's at most
	if in.ownSet {
		n++
	}
	v := newStored(in.value, n)
	v.Meta.Sources = withSource(v.Meta.Sources, sources, in.id)
	if in.ownSet {
		v.Meta.Sources = withSlot(v.Meta.Sources, in.own)
	}
	v.Meta.Writer, v.Meta.EventTime, v.Meta.Version, v.Meta.ReplayJob = in.writer, in.eventTime, ver, in.job
	return v
}

// writerRef returns the reference of the record's span, as the values it
// writes name their writer.
func (c *Context) writerRef() statestore.SpanRef {
	if !c.writerSet {
		c.writer, c.writerSet = spanRef(c.span.SpanContext()), true
	}
	return c.writer
}

// storedSources is a Stored and room for its source offsets in one
// allocation: the sources of most keys are one or two input partitions.
type storedSources struct {
	s   Stored
	src [2]statestore.SourceOffset
}

// newStored returns a new Stored of value whose Meta.Sources is empty with
// room for n source offsets.
func newStored(value any, n int) *Stored {
	b := &storedSources{s: Stored{Value: value}}
	if n <= len(b.src) {
		b.s.Meta.Sources = b.src[:0]
	} else {
		b.s.Meta.Sources = make([]statestore.SourceOffset, 0, n)
	}
	return &b.s
}

// addContributor returns the contributors of prev plus w (see
// appendContributor); it copies instead of extending prev's.
func addContributor(prev *Stored, w statestore.SpanRef) ([]statestore.SpanRef, uint64, bool) {
	if prev == nil {
		return appendContributor(nil, 0, w)
	}
	return appendContributor(slices.Clip(prev.Meta.Contributors), prev.Meta.Dropped, w)
}

// listedContributor reports whether a version names w among its
// contributors: only spans of sampled traces, which a tracing backend can
// have; an unsampled contributor (or one without a span) is counted in the
// envelope's Dropped instead, so that with a 1% sampler only the sampled
// 1% cost bytes in the table. The records that made a version stay known
// from its sources and the previous version's (see docs/architecture.md).
func listedContributor(w statestore.SpanRef) bool {
	return w.IsValid() && trace.TraceFlags(w.Flags).IsSampled()
}

// Delete removes the key's value, linking the span to the previous writer.
// Deletes cannot record the applied offset (there is no value left), so a
// replayed delete is applied again, which is harmless.
func (c *Context) Delete(options ...goka.ContextOption) {
	c.loadPrev()
	if c.replayed {
		if c.centry != nil {
			c.cpart.setReplay(c.centry, &Stored{}) // a re-run (see setValue)
		}
		return
	}
	if c.prev != nil {
		c.linkPrevious()
	}
	if c.cpart != nil {
		c.rt.cache.remove(c.cpart, c.centry)
	} else {
		c.g.Delete(c.withHeaders(options)...)
	}
	c.prev = nil
}

func (c *Context) linkPrevious() {
	if !c.span.IsRecording() || !c.prev.Meta.Writer.IsValid() {
		return
	}
	c.span.AddLink(tracing.Link(spanContext(c.prev.Meta.Writer), tracing.LinkPreviousValue,
		tracing.AttrStateVersion.Int64(int64(c.prev.Meta.Version))))
}

// Lookup returns the user value of key in table, linking the span to its
// writer (kind lookup).
func (c *Context) Lookup(table goka.Table, key string) any {
	return c.unwrapRead(c.g.Lookup(table, key), tracing.LinkLookup, string(table), key)
}

// Join returns the user value of the record's key in the co-partitioned
// table, linking the span to its writer (kind join).
func (c *Context) Join(table goka.Table) any {
	return c.unwrapRead(c.g.Join(table), tracing.LinkJoin, string(table), c.g.Key())
}

func (c *Context) unwrapRead(v any, kind tracing.LinkKind, table, key string) any {
	s, ok := v.(*Stored)
	if !ok {
		return v
	}
	if c.span.IsRecording() && s.Meta.Writer.IsValid() {
		c.span.AddLink(tracing.Link(spanContext(s.Meta.Writer), kind,
			tracing.AttrStateTable.String(table), tracing.AttrStateKey.String(key),
			tracing.AttrStateVersion.Int64(int64(s.Meta.Version))))
	}
	return s.Value
}

// Emit sends a record to topic with the span's traceparent, the event time
// and its identity (HeaderFrom).
func (c *Context) Emit(topic goka.Stream, key string, value any, options ...goka.ContextOption) {
	h := c.headers()
	h[HeaderFrom] = c.appendFrom(nil)
	c.emits++
	// goka copies the headers while Emit applies its options, so the
	// shared map can drop the identity again.
	c.g.Emit(topic, key, value, c.withHeaders(options)...)
	delete(h, HeaderFrom)
}

// Loopback sends a record to the group's loopback topic with the span's
// traceparent.
func (c *Context) Loopback(key string, value any, options ...goka.ContextOption) {
	c.g.Loopback(key, value, c.withHeaders(options)...)
}

func spanRef(sc trace.SpanContext) statestore.SpanRef {
	return statestore.SpanRef{TraceID: sc.TraceID(), SpanID: sc.SpanID(), Flags: byte(sc.TraceFlags())}
}

func spanContext(r statestore.SpanRef) trace.SpanContext {
	return trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: r.TraceID, SpanID: r.SpanID, TraceFlags: trace.TraceFlags(r.Flags), Remote: true,
	})
}

// SpanContextOf returns the span context of a stored writer.
func SpanContextOf(r statestore.SpanRef) trace.SpanContext { return spanContext(r) }
