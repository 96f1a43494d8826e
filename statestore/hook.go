package statestore

import (
	"slices"
	"sync"
	"sync/atomic"
)

// CommitHook is called for every table write once the changelog has
// acknowledged it, in the order of the writes of the partition: key and
// its new value (nil for a delete). topic and partition are those the
// Builder built the store for ("" and 0 for a store made by New). It runs
// while the store's lock is held: it must return quickly, must not call
// the store, and must not keep value (copy it).
type CommitHook func(topic string, partition int32, key string, value []byte)

// commitHooks is the set of hooks of the stores of a Builder (or of one
// Store), shared by them and changed while they run.
type commitHooks struct {
	mu    sync.Mutex
	hooks atomic.Pointer[[]*CommitHook] // copy on write; nil when none
}

// add registers h and returns the function that removes it.
func (c *commitHooks) add(h CommitHook) (remove func()) {
	p := &h
	c.mu.Lock()
	defer c.mu.Unlock()
	var hs []*CommitHook
	if cur := c.hooks.Load(); cur != nil {
		hs = slices.Clone(*cur)
	}
	hs = append(hs, p)
	c.hooks.Store(&hs)
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			cur := c.hooks.Load()
			if cur == nil {
				return
			}
			hs := slices.DeleteFunc(slices.Clone(*cur), func(q *CommitHook) bool { return q == p })
			if len(hs) == 0 {
				c.hooks.Store(nil)
				return
			}
			c.hooks.Store(&hs)
		})
	}
}

// WithCommitHook calls h for every write the changelog acknowledges (see
// CommitHook). Given to NewBuilder, it applies to every store it builds.
func WithCommitHook(h CommitHook) Option {
	return func(o *options) {
		if h != nil {
			o.commitHooks.add(h)
		}
	}
}

// AddCommitHook registers h for the stores the Builder has built and will
// build, and returns the function that removes it.
func (b *Builder) AddCommitHook(h CommitHook) (remove func()) {
	return b.opts.commitHooks.add(h)
}

// notifyAcked calls the hooks for the n pending writes from the first
// unacknowledged one. Allocation-free; a no-op without hooks.
func (s *Store) notifyAcked(n int) {
	hs := s.opts.commitHooks.hooks.Load()
	if hs == nil || n <= 0 {
		return
	}
	base := s.pendingHead + s.acked
	for _, w := range s.pending[base : base+n] {
		for _, h := range *hs {
			(*h)(s.topic, s.partition, w.key, w.value)
		}
	}
}
