package processors

import "github.com/lovoo/goka"

// Group returns the processor's consumer group.
func (p *Processor) Group() goka.Group { return p.graph.Group() }

// Tally returns the counts of the runtime the processor runs with
// (WithRuntime), or nil without one.
func (p *Processor) Tally() *Tally {
	if p.cfg.runtime == nil {
		return nil
	}
	return p.cfg.runtime.Tally()
}

// CacheFlushes returns how many times the record cache of the group table
// has flushed to the store and changelog (0 without a record cache).
func (p *Processor) CacheFlushes() int64 {
	if p.cache == nil {
		return 0
	}
	return p.cache.flushes.Load()
}
