package processors

import "github.com/weftstream/weft/statestore"

// setReplay keeps v as the state re-runs have rebuilt for e.
func (p *cachePart) setReplay(e *cacheEntry, v *Stored) {
	p.mu.Lock()
	e.replay = v
	p.mu.Unlock()
}

// replayBase returns the value a redelivered record (one the key's state
// covers) was first applied to, for its re-run, when the lineage has no
// version of its own (see previousVersion): its update was coalesced into
// a flushed version with others. The first of the redelivered records of
// that version runs against the version before it, which the flushed
// version names: its number is the version's minus its contributors.
// Every later one runs against the state the re-runs before it made
// (kept in the cache entry). ok is false if the lineage does not go back
// far enough or the contributors are not all known.
//
// A copy of an upstream record at another offset than the one applied
// (the upstream group emitted it again) is not re-run: its outputs would
// need the identity of the first copy, which a coalesced version does not
// keep. The key's later redelivered records are then not re-run either.
func (c *recordCache) replayBase(ctx *Context) (*Stored, bool) {
	st, ok := c.replayBaseOf(ctx)
	if !ok && ctx.centry != nil {
		ctx.cpart.mu.Lock()
		ctx.centry.replay, ctx.centry.replayBroken = nil, true
		ctx.cpart.mu.Unlock()
	}
	return st, ok
}

func (c *recordCache) replayBaseOf(ctx *Context) (*Stored, bool) {
	e, id := ctx.centry, ctx.identity()
	if e == nil || e.replayBroken || e.value == nil {
		return nil, false
	}
	if id.Upstream && !covered(e.value.Meta.Sources, statestore.SourceOffset{
		Topic: string(ctx.g.Topic()), Partition: ctx.g.Partition(), Offset: ctx.g.Offset()}) {
		return nil, false // a new copy of an applied upstream record
	}
	if e.replay != nil && !covered(e.replay.Meta.Sources, id) {
		return e.replay, true
	}
	versions, err := lineage(c.builder, c.table, ctx.Key())
	if err != nil {
		return nil, false
	}
	first := -1 // the oldest version that covers the record
	for i, v := range versions {
		if !covered(v.Sources, id) {
			break
		}
		first = i
	}
	if first < 0 {
		return nil, false
	}
	v := versions[first]
	n := uint64(len(v.Contributors)) + v.Dropped
	if n == 0 || n > v.Version {
		return nil, false
	}
	base := v.Version - n
	if base == 0 {
		return nil, true // the record's version was the key's first
	}
	if first+1 >= len(versions) || versions[first+1].Version != base || versions[first+1].Value == nil {
		return nil, false
	}
	prev := versions[first+1]
	decoded, err := c.codec.Decode(statestore.AppendEnvelope(nil, &prev))
	if err != nil {
		return nil, false
	}
	st, ok := decoded.(*Stored)
	return st, ok
}
