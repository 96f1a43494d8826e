package processors

// The effectively-once guard: how a stateful group knows that a record was
// applied to a key's state already, and what it does with such a record.
//
// Terms:
//
//   - Identity (of a record): the statestore.SourceOffset that names it in
//     the envelopes it writes. For a record a weft processor emitted (it
//     carries HeaderFrom) it is that upstream record: its topic, partition
//     and offset, the index of the record among those emitted for it, and
//     Upstream set; a copy emitted again when the upstream processor
//     replays its input after a crash has the same identity, at whatever
//     offset it arrives. For any other record it is its own topic,
//     partition and offset (Index 0, Upstream unset). See identityOf.
//   - Slot: the input an identity comes from, its topic, partition and
//     kind (Upstream or not); the offsets of one slot are applied in order.
//     An envelope's Sources hold one entry per slot, the last identity of
//     that slot applied to the key, Sources[0] the one that made the
//     version (see withSource). A record from an upstream processor also
//     keeps its own offset, in its own slot (see emitAs).
//   - Covers: an applied identity covers a record's identity of the same
//     slot whose offset (then index) is not newer (see covers).
//   - Replayed: the record's identity is covered by one of the key's
//     Sources: the record was applied already (a redelivery after a crash
//     or rebalance, or an upstream copy emitted again). Its state write is
//     skipped and Tally counts it as replayed; if the value it was first
//     applied to is known (the lineage index, or the record cache's
//     re-run state), the handler runs again against that value with state
//     writes suppressed and its emits named as they were the first time,
//     so that its other outputs are produced again (outputs are
//     at-least-once). Handlers must therefore be deterministic.
//
// The window suppressor keeps the same guard in memory per slot
// (appliedSlots), because it purges the windows whose envelopes would
// tell.
//
// Nothing here allocates per record: identities are values, and the
// Sources of a new version are built in room the caller made.

import (
	"github.com/lovoo/goka"
	"github.com/weftstream/weft/statestore"
)

// identityOf is the identity of the record of g: the upstream record of
// its HeaderFrom header, else its own topic, partition and offset.
func identityOf(g goka.Context) statestore.SourceOffset {
	if h := g.Headers()[HeaderFrom]; len(h) > 0 {
		if id, ok := parseFrom(h); ok {
			return id
		}
	}
	return statestore.SourceOffset{Topic: string(g.Topic()), Partition: g.Partition(), Offset: g.Offset()}
}

// sourceSlot is the slot of an identity.
type sourceSlot struct {
	topic     string
	partition int32
	upstream  bool
}

func slotOf(s statestore.SourceOffset) sourceSlot {
	return sourceSlot{s.Topic, s.Partition, s.Upstream}
}

// sameSlot reports whether a and b are identities of the same slot.
func sameSlot(a, b statestore.SourceOffset) bool {
	return a.Topic == b.Topic && a.Partition == b.Partition && a.Upstream == b.Upstream
}

// covers reports whether applied, the last identity applied from its
// slot, covers the identity r: same slot, and r is not newer.
func covers(applied, r statestore.SourceOffset) bool {
	if !sameSlot(applied, r) {
		return false
	}
	return applied.Offset > r.Offset || applied.Offset == r.Offset && applied.Index >= r.Index
}

// covered reports whether one of sources covers id.
func covered(sources []statestore.SourceOffset, id statestore.SourceOffset) bool {
	for _, src := range sources {
		if covers(src, id) {
			return true
		}
	}
	return false
}

// identity is the identity of the record of c, parsed once.
func (c *Context) identity() statestore.SourceOffset {
	if !c.idSet {
		c.id, c.idSet = identityOf(c.g), true
	}
	return c.id
}

// AlreadyApplied reports whether the record is replayed: the key's state
// already includes it, and state writes are skipped.
func (c *Context) AlreadyApplied() bool {
	c.loadPrev()
	return c.replayed
}

// rerun prepares a replayed record of a stateful group: it counts it, and
// reports whether the handler runs again (against the value the record
// was first applied to, its emits named as they were the first time) or
// the record is skipped.
func (rt *Runtime) rerun(ctx *Context) bool {
	rt.tally.replayed.Add(1)
	prev, made, ok := rt.previousOf(ctx)
	if !ok {
		return false
	}
	ctx.prev, ctx.prevLoaded = prev, true
	ctx.emitAs(made)
	return true
}

// previousOf returns the value the record of ctx was first applied to and
// the sources of the version it made then: from the lineage index, else
// (a version the record cache coalesced) from the cache.
func (rt *Runtime) previousOf(ctx *Context) (*Stored, []statestore.SourceOffset, bool) {
	if rt.previous != nil {
		if prev, made, ok := rt.previous(ctx.Key(), ctx.identity()); ok {
			return prev, made, ok
		}
	}
	if rt.cache != nil && ctx.cpart != nil {
		prev, ok := rt.cache.replayBase(ctx)
		return prev, nil, ok
	}
	return nil, nil, false
}

// emitAs makes the records emitted by a re-run of a record that was
// applied before (from the version it made, with sources made) carry the
// identities they had the first time. The record may be another copy, at
// another offset, of the record applied then (an upstream processor
// emitted it again after a crash): its emits must not look new downstream.
func (c *Context) emitAs(made []statestore.SourceOffset) {
	for _, src := range made {
		if !src.Upstream && src.Topic == string(c.g.Topic()) && src.Partition == c.g.Partition() {
			c.emitOffset, c.emitOffsetSet = src.Offset, true
			return
		}
	}
}

// withSource appends to out (empty, with room) the slot of id set to id
// and that entry first, then the other slots of sources, so that
// Sources[0] of an envelope is the record that made the version. sources
// is not modified.
func withSource(out, sources []statestore.SourceOffset, id statestore.SourceOffset) []statestore.SourceOffset {
	out = append(out[:0], id)
	for _, src := range sources {
		if !sameSlot(src, id) {
			out = append(out, src)
		}
	}
	return out
}

// toFront sets the slot of id in sources to id and moves it first, the
// other slots keeping their order, in place: withSource for a slice that
// nothing else holds.
func toFront(sources []statestore.SourceOffset, id statestore.SourceOffset) []statestore.SourceOffset {
	i := 0
	for i < len(sources) && !sameSlot(sources[i], id) {
		i++
	}
	if i == len(sources) {
		sources = append(sources, id)
	}
	copy(sources[1:i+1], sources[:i])
	sources[0] = id
	return sources
}

// withSlot sets the slot of src in sources (which withSource copied).
func withSlot(sources []statestore.SourceOffset, src statestore.SourceOffset) []statestore.SourceOffset {
	for i := range sources {
		if sameSlot(sources[i], src) {
			sources[i] = src
			return sources
		}
	}
	return append(sources, src)
}

// appliedSlots is the window suppressor's guard: the newest identity
// applied from each slot. Updates of one slot arrive in order, so an
// update it covers was handled before (a redelivery), even when the
// window it updated has been purged since.
type appliedSlots map[sourceSlot]statestore.SourceOffset

// covers reports whether the newest identity applied from the slot of id
// covers it.
func (a appliedSlots) covers(id statestore.SourceOffset) bool {
	prev, ok := a[slotOf(id)]
	return ok && covers(prev, id)
}

// note records id as applied if it is the newest of its slot.
func (a appliedSlots) note(id statestore.SourceOffset) {
	slot := slotOf(id)
	if cur, ok := a[slot]; !ok || !covers(cur, id) {
		a[slot] = id
	}
}
