package processors

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/weftstream/weft/tracing"
	"go.opentelemetry.io/otel/trace"
)

// WindowSuppressor is the suppress-until-window-close operator: it takes
// the updates of a windowed table (keyed by window) and emits one record
// per window, its final value, once the window has closed, that is once
// the stream time of the aggregation has passed the window's end plus its
// grace period.
//
// It does not keep a clock of its own, nor decide what is late: the
// windowed aggregation did, once, for both (see StreamClock). Every
// update carries the stream time at which the aggregation applied it
// (HeaderStreamTime); the aggregation takes no update of a window once
// its stream time has passed the window's close. So the suppressor keeps,
// per upstream partition (the aggregation's partition the updates come
// from, all updates of a window come from one), the newest stream time
// its updates carried, and closes a window when the stream time of the
// window's upstream partition passes its close: by then every update of
// the window has arrived (updates of a partition arrive in order), and the
// value emitted is the table's final value. It buffers every update it
// has not seen before, whatever its time.
//
// The buffer is the group table: each window's latest value waits there
// in an envelope that lists every span that contributed to it, so a crash
// or a rebalance loses nothing (the table is restored from its changelog)
// and nothing has to hold consumer commits until a window closes. When an
// update moves stream time past a window's close, the window's key is
// sent to the group's loopback topic; its callback emits the final value
// in a span "flush <name>" linked (weft.link.kind=coalesced) to every
// contributor and marks the window emitted. The mark stays for a
// retention period, so that an update redelivered after its window was
// emitted is recognised; then a second loopback deletes it.
//
// Outputs are at-least-once like every output of weft (a close replayed
// after a crash emits again); windows close only when records arrive, as
// in Kafka Streams.
type WindowSuppressor struct {
	rt      *Runtime
	name    string
	output  goka.Stream
	encode  goka.Codec
	closeAt func(key string) (time.Time, error)
	retain  time.Duration

	mu    sync.Mutex
	parts map[int32]*windowIndex
}

// WindowState is a window's entry in a WindowSuppressor's buffer table.
type WindowState struct {
	Value any       // the window's latest value (nil once emitted)
	Close time.Time // when the window closes: its end plus grace
	// StreamTime is the stream time of the window's upstream partition
	// (the newest its updates carried) when the entry was written.
	StreamTime time.Time
	Emitted    bool // the final value was emitted
}

// windowIndex is what a WindowSuppressor knows of one partition of its
// table: the stream time of each upstream partition and the windows
// waiting to close or to be purged, rebuilt from the store when the
// partition is (re)assigned.
type windowIndex struct {
	store     any                      // the store the index was built from
	clocks    map[sourceSlot]time.Time // stream time per upstream partition
	open      dueSet                   // buffered windows and their close time
	emitted   dueSet                   // emitted windows and their purge time
	requested map[string]bool          // keys with a loopback in flight

	// applied is the suppressor's effectively-once guard (see
	// applied.go).
	applied appliedSlots
}

// dueSet holds windows that something is due for at a time of their
// upstream partition's clock.
type dueSet struct {
	at   map[string]dueAt
	next map[sourceSlot]time.Time // per upstream partition, no later than its earliest time
}

type dueAt struct {
	at   time.Time
	slot sourceSlot
}

func newDueSet() dueSet {
	return dueSet{at: map[string]dueAt{}, next: map[sourceSlot]time.Time{}}
}

func (d *dueSet) add(key string, at time.Time, slot sourceSlot) {
	d.at[key] = dueAt{at, slot}
	if next, ok := d.next[slot]; !ok || at.Before(next) {
		d.next[slot] = at
	}
}

// advance moves the clock of slot to t if t is newer, and returns it.
func (idx *windowIndex) advance(slot sourceSlot, t time.Time) time.Time {
	now := idx.clocks[slot]
	if t.After(now) {
		now = t
		idx.clocks[slot] = t
	}
	return now
}

// Loopback commands of a WindowSuppressor.
var (
	cmdClose = []byte("close")
	cmdPurge = []byte("purge")
)

// NewWindowSuppressor returns the operator named name (its span is "flush
// <name>") writing final values encoded with enc to output. closeAt tells
// when the window of a table key closes; emitted windows are remembered
// for retain after closing.
func NewWindowSuppressor(rt *Runtime, name string, output goka.Stream, enc goka.Codec,
	closeAt func(key string) (time.Time, error), retain time.Duration) *WindowSuppressor {
	return &WindowSuppressor{rt: rt, name: name, output: output, encode: enc, closeAt: closeAt,
		retain: retain, parts: map[int32]*windowIndex{}}
}

// Edges returns the edges of the operator's group: input (the window
// updates, values encoded with value), the loopback, the buffer table and
// the output. Define the group with DefineGroup and the same Runtime.
func (w *WindowSuppressor) Edges(input goka.Stream, value goka.Codec) []goka.Edge {
	decode := func(b []byte) (any, error) { return value.Decode(b) }
	return []goka.Edge{
		goka.Input(input, new(codec.Bytes), Handle(w.rt, decode, w.update)),
		goka.Loop(new(codec.Bytes), Handle(w.rt, func(b []byte) ([]byte, error) { return b, nil }, w.loop)),
		Persist(WindowStateCodec(value)),
		goka.Output(w.output, new(codec.Bytes)),
	}
}

// update buffers a window's new value.
func (w *WindowSuppressor) update(gctx goka.Context, v any) error {
	ctx, ok := gctx.(*Context)
	if !ok {
		return fmt.Errorf("suppress %s: run with processors.Handle (got a %T)", w.name, gctx)
	}
	key := ctx.Key()
	closeAt, err := w.closeAt(key)
	if err != nil {
		return Reject(ReasonWindow, "suppress %s: %v", w.name, err)
	}
	idx, err := w.index(ctx)
	if err != nil {
		return err
	}
	defer w.requestDue(ctx, idx)
	id := ctx.identity()
	if ctx.replayed || idx.applied.covers(id) {
		// Handled already (a redelivery after a crash): only the closes
		// it may have triggered are sent again. Its stream time is not
		// taken: it may be the aggregation's current one rather than the
		// one the update was first applied at.
		return nil
	}
	idx.applied.note(id)
	slot := slotOf(id)
	now := idx.advance(slot, streamTimeOf(ctx))
	if cur, _ := ctx.Value().(*WindowState); cur != nil && cur.Emitted {
		// The aggregation applies nothing to a window after its close,
		// and the window was emitted only after its close: the update
		// comes from elsewhere (a table whose partition count changed?).
		return Reject(ReasonClosed, "suppress %s: update of window %s after its final value was emitted (it closed at %s; stream time %s)",
			w.name, key, closeAt.UTC().Format(time.RFC3339Nano), now.UTC().Format(time.RFC3339Nano))
	}
	ctx.setValue(&WindowState{Value: v, Close: closeAt, StreamTime: now}, true, nil)
	idx.open.add(key, closeAt, slot)
	return nil
}

// requestDue sends a close for every buffered window whose upstream
// partition's stream time passed its close and a purge for every emitted
// one past its retention, once each, in the order of their times (then
// keys).
func (w *WindowSuppressor) requestDue(ctx *Context, idx *windowIndex) {
	type dueKey struct {
		key string
		at  time.Time
	}
	var keys []dueKey
	due := func(set *dueSet, cmd []byte) {
		for slot, next := range set.next {
			now := idx.clocks[slot]
			if now.Before(next) {
				continue
			}
			delete(set.next, slot)
			keys = keys[:0]
			for key, d := range set.at {
				if d.slot != slot {
					continue
				}
				if now.Before(d.at) {
					if n, ok := set.next[slot]; !ok || d.at.Before(n) {
						set.next[slot] = d.at
					}
					continue
				}
				if !idx.requested[key] {
					keys = append(keys, dueKey{key, d.at})
				}
			}
			slices.SortFunc(keys, func(a, b dueKey) int {
				if c := a.at.Compare(b.at); c != 0 {
					return c
				}
				return strings.Compare(a.key, b.key)
			})
			for _, k := range keys {
				idx.requested[k.key] = true
				ctx.Loopback(k.key, cmd)
			}
		}
	}
	due(&idx.open, cmdClose)
	due(&idx.emitted, cmdPurge)
}

// loop runs a close or a purge of one window.
func (w *WindowSuppressor) loop(gctx goka.Context, cmd []byte) error {
	ctx, ok := gctx.(*Context)
	if !ok {
		return fmt.Errorf("suppress %s: run with processors.Handle (got a %T)", w.name, gctx)
	}
	idx, err := w.index(ctx)
	if err != nil {
		return err
	}
	key := ctx.Key()
	delete(idx.requested, key)
	st := ctx.Stored()
	ws, _ := st.valueOrNil().(*WindowState)
	var slot sourceSlot
	if st != nil {
		slot = upstreamSlot(ctx, st)
	}
	now := idx.clocks[slot]
	switch string(cmd) {
	case string(cmdClose):
		if ws == nil || ws.Emitted {
			return nil // closed already (a repeated close)
		}
		if ws.Close.After(now) {
			// Requested before a crash, by a stream time this partition
			// has not reached again yet (the updates that made it are
			// being redelivered): closing now would miss them. It is
			// requested again when stream time passes the close (the key
			// stays open until it is emitted).
			idx.open.add(key, ws.Close, slot)
			return nil
		}
		if err := w.emit(ctx, key, st, ws); err != nil {
			return err
		}
		ctx.SetValue(&WindowState{Close: ws.Close, StreamTime: now, Emitted: true})
		delete(idx.open.at, key)
		idx.emitted.add(key, ws.Close.Add(w.retain), slot)
	case string(cmdPurge):
		if ws == nil || !ws.Emitted {
			delete(idx.emitted.at, key) // purged already
			return nil
		}
		if purge := ws.Close.Add(w.retain); purge.After(now) {
			// As for a close: requested again in time.
			idx.emitted.add(key, purge, slot)
			return nil
		}
		delete(idx.emitted.at, key)
		ctx.Delete()
	default:
		return Reject(ReasonLoopback, "suppress %s: unknown loopback command %q", w.name, cmd)
	}
	return nil
}

// upstreamSlot is the upstream partition whose clock closes the window
// stored in s: the slot of the updates that made it (the first source
// that is not the group's loopback topic; an update from a weft processor
// names its upstream record first).
func upstreamSlot(ctx *Context, s *Stored) sourceSlot {
	loop := string(ctx.Group()) + "-loop"
	var own sourceSlot
	found := false
	for _, src := range s.Meta.Sources {
		if src.Upstream {
			return slotOf(src)
		}
		if !found && src.Topic != loop {
			own, found = slotOf(src), true
		}
	}
	return own
}

// emit writes the final value of a window in its flush span.
func (w *WindowSuppressor) emit(ctx *Context, key string, st *Stored, ws *WindowState) error {
	data, err := w.encode.Encode(ws.Value)
	if err != nil {
		return Reject(ReasonEncode, "suppress %s: encode the final value of %s for %s: %v", w.name, key, w.output, err)
	}
	links := make([]trace.Link, 0, len(st.Meta.Contributors))
	for _, c := range st.Meta.Contributors {
		if c.IsValid() {
			links = append(links, tracing.Link(spanContext(c), tracing.LinkCoalesced))
		}
	}
	spanCtx, span := w.rt.tracer.Start(ctx.Context(), "flush "+w.name, trace.WithLinks(links...),
		trace.WithAttributes(tracing.AttrLinksDropped.Int64(int64(st.Meta.Dropped)), tracing.AttrStateKey.String(key)))
	defer span.End()
	h := goka.Headers{}
	w.rt.tracer.Inject(spanCtx, h)
	if !st.Meta.EventTime.IsZero() {
		h[HeaderEventTime] = appendEventTime(nil, st.Meta.EventTime)
	}
	h[HeaderFrom] = ctx.appendFrom(nil)
	ctx.emits++
	ctx.g.Emit(w.output, key, data, goka.WithCtxEmitHeaders(h))
	return nil
}

// valueOrNil is the user value of s, nil for a nil s.
func (s *Stored) valueOrNil() any {
	if s == nil {
		return nil
	}
	return s.Value
}

// index returns the index of the record's partition, (re)built from the
// partition's store when the partition is new to it.
func (w *WindowSuppressor) index(ctx *Context) (*windowIndex, error) {
	p := ctx.Partition()
	var store any
	scan := func(func(string, *Stored) error) error { return nil }
	if w.rt.scan != nil {
		store, scan = w.rt.scan(p)
	}
	w.mu.Lock()
	idx := w.parts[p]
	w.mu.Unlock()
	if idx != nil && idx.store == store {
		return idx, nil
	}
	idx = &windowIndex{store: store, clocks: map[sourceSlot]time.Time{}, open: newDueSet(), emitted: newDueSet(),
		requested: map[string]bool{}, applied: appliedSlots{}}
	err := scan(func(key string, s *Stored) error {
		ws, ok := s.Value.(*WindowState)
		if !ok {
			return fmt.Errorf("key %q holds a %T", key, s.Value)
		}
		slot := upstreamSlot(ctx, s)
		idx.advance(slot, ws.StreamTime)
		for _, src := range s.Meta.Sources {
			idx.applied.note(src)
		}
		if ws.Emitted {
			idx.emitted.add(key, ws.Close.Add(w.retain), slot)
		} else {
			idx.open.add(key, ws.Close, slot)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("suppress %s: rebuild the window index of partition %d: %w", w.name, p, err)
	}
	w.mu.Lock()
	w.parts[p] = idx
	w.mu.Unlock()
	return idx, nil
}

// windowStateCodec encodes WindowState: a flags byte (1: emitted), the
// close time and the stream time (varint milliseconds since the Unix
// epoch), then the value encoded with the value codec (absent once
// emitted).
type windowStateCodec struct{ value goka.Codec }

// WindowStateCodec returns the codec of a WindowSuppressor's table, whose
// window values are encoded with value.
func WindowStateCodec(value goka.Codec) goka.Codec { return windowStateCodec{value: value} }

func (c windowStateCodec) Encode(v any) ([]byte, error) {
	ws, ok := v.(*WindowState)
	if !ok {
		return nil, fmt.Errorf("window state codec: cannot encode %T", v)
	}
	b := make([]byte, 1, 32)
	if ws.Emitted {
		b[0] = 1
	}
	b = binary.AppendVarint(b, ws.Close.UnixMilli())
	b = binary.AppendVarint(b, ws.StreamTime.UnixMilli())
	if ws.Emitted {
		return b, nil
	}
	data, err := c.value.Encode(ws.Value)
	if err != nil {
		return nil, fmt.Errorf("window state codec: %w", err)
	}
	return append(b, data...), nil
}

func (c windowStateCodec) Decode(data []byte) (any, error) {
	if len(data) < 3 || data[0] > 1 {
		return nil, errors.New("window state codec: not a window state")
	}
	ws := &WindowState{Emitted: data[0] == 1}
	rest := data[1:]
	for _, t := range []*time.Time{&ws.Close, &ws.StreamTime} {
		ms, n := binary.Varint(rest)
		if n <= 0 {
			return nil, errors.New("window state codec: bad time")
		}
		*t = time.UnixMilli(ms).UTC()
		rest = rest[n:]
	}
	if ws.Emitted {
		return ws, nil
	}
	v, err := c.value.Decode(rest)
	if err != nil {
		return nil, fmt.Errorf("window state codec: %w", err)
	}
	ws.Value = v
	return ws, nil
}
