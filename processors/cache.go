package processors

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/weftstream/weft/statestore"
	"github.com/weftstream/weft/tracing"
)

// Record cache defaults (see WithRecordCache).
const (
	// DefaultCacheMaxBytes is the record cache budget of a processor
	// instance: Kafka Streams' statestore.cache.max.bytes default.
	DefaultCacheMaxBytes = 10 << 20
	// DefaultCommitInterval is how often the record cache flushes. Kafka
	// Streams commits every 30 s; weft's tables are read models (views,
	// weft get, downstream groups reading the changelog), which see a
	// cached update only when it is flushed, so weft flushes every second:
	// a read model lags by at most about a second, and a key updated more
	// than once a second still gets one changelog record per second
	// instead of one per update.
	DefaultCommitInterval = time.Second
)

// The records a cache holds for commit (see recordCache.hold). Each keeps
// goka's context of the record, the record and the fetched batch it came
// in (about 1 KiB in heap profiles) until a flush is acknowledged, and
// while a flush waits for the producer the partitions go on processing:
// on two cores a bank run at 3M records held up to half a million (the
// live heap was 650 MB, mostly them), and with a slow broker nothing
// bounded them. Past heldFlushAt records a flush is due whatever the
// interval; past maxHeld a record's callback waits until a flush releases
// records, as Kafka Streams' stream thread stops processing while it
// commits. The bound is a safety limit, not a tuning: bounds of 128k and
// 256k cut the peak RSS of that run from 2219 to 1332 MiB but made it 29%
// slower (flushes four times as often keep the dirty entries, which are
// not evicted, within the budget: the cache hit 62% instead of 79%).
const (
	maxHeld     = 1 << 20
	heldFlushAt = maxHeld / 2
)

// WithRecordCache sets the record cache of a processor's group table
// (NewProcessor with WithRuntime): a budget of maxBytes per processor
// instance (0 turns the cache off: every update is written to the store
// and the changelog at once) and the interval at which it flushes (zero or
// less: DefaultCommitInterval). The cache is on by default with
// DefaultCacheMaxBytes and DefaultCommitInterval.
//
// With the cache, Context.SetValue and Delete update the key in memory;
// Value, Stored and the effectively-once check read it there. A flush,
// every interval, when the budget is exceeded and when a partition stops
// (revoked, or the processor stops), writes one table record per changed
// key, to the store and the changelog, in a span "flush <table>" linked
// (coalesced) to every sampled span that contributed since the previous
// flushed version and (previous_value) to the writer of that version; the
// value's envelope names the contributors (statestore.Envelope
// Contributors, bounded, with Dropped). Contributors of unsampled traces
// are only counted (Dropped), not listed, so with a 1% sampler the others
// cost no bytes: the flush span links to the listed ones (the others are
// counted in weft.links.dropped), it is started only if one of them was sampled (as a
// child of the last one), and otherwise the changelog record carries the
// writer's traceparent, as without the cache. Every input record of the
// partition is committed only after the flush that follows it has been
// acknowledged, so state stays effectively-once across crashes: records
// whose updates were never flushed are consumed again. The store is never
// ahead of the changelog: the store commits a write when the changelog
// acknowledges it. Downstream emits are not delayed.
func WithRecordCache(maxBytes int64, commitInterval time.Duration) Option {
	return option(optRecordCache, func(c *config) {
		c.cacheMaxBytes = max(maxBytes, 0)
		c.commitInterval = commitInterval
	})
}

// What an entry counts against the byte budget, as Kafka Streams counts
// its cache entries (LRUCacheEntry and its NamedCache node): the key, the
// value as it is serialized (the envelope the flush writes: known once the
// key has been flushed, assumed before), and a fixed charge for the
// entry's record context and links. Like Kafka Streams', the budget counts
// serialized bytes, not the heap an entry takes: the decoded value and the
// entry itself take about two to three times that (docs/architecture.md,
// "Record cache").
const (
	cacheEntryOverhead = 64 // KS: dirty flag, offset, timestamp, partition, topic, LRU links
	cacheValueGuess    = 64
	cacheSpanRefBytes  = 25 // a contributor added since the last flush
)

// recordCache is the record cache of one processor's group table.
type recordCache struct {
	table    string
	codec    goka.Codec
	builder  *statestore.Builder
	tracer   *tracing.Tracer
	sc       *sarama.Config
	brokers  []string
	maxBytes int64
	interval time.Duration

	bytes atomic.Int64
	// held counts the records held for commit by all parts; released is
	// closed (and replaced) whenever a flush releases some.
	held       atomic.Int64
	releasedMu sync.Mutex
	released   chan struct{}
	wake       chan struct{}
	stop       chan struct{}
	done       chan struct{}
	err        error // of the flusher, read after done

	mu      sync.Mutex
	parts   map[int32]*cachePart
	retired []*cachePart // parts whose partition stopped or was assigned again
	// fast holds parts[p] for the partitions below its length, for
	// part's lock-free path (every record asks for its part).
	fast [256]atomic.Pointer[cachePart]

	// pastHits and pastMisses are the lookups of parts forgotten.
	pastHits, pastMisses atomic.Int64

	flushMu  sync.Mutex // one flush at a time
	producer sarama.AsyncProducer
	flushes  atomic.Int64

	// The names of the headers a flush writes, shared by its records
	// (sarama reads them only).
	keyTraceparent, keyEventTime []byte
	// fastLen is one more than the highest partition in fast (checkBudget
	// looks at no more).
	fastLen atomic.Int32
	slow    atomic.Bool // a partition at or beyond len(fast) has a part
}

// traceparentLen is the length of a W3C traceparent value.
const traceparentLen = 55

// cachePart is the cache of one partition of the table as long as one
// partition processor of goka runs it.
type cachePart struct {
	partition int32
	done      <-chan struct{} // the partition processor's context
	store     *statestore.Store

	mu      sync.Mutex
	entries map[string]*cacheEntry
	// The entries changed since the last flush, least recently changed
	// first: a flush writes them in the order of their last updates, so
	// that a reader of the changelog sees event time advance as the input
	// did (a key's record comes where its last contributor came).
	dirtyHead, dirtyTail *cacheEntry
	dirtyLen             int
	commits              []func(error) // input records waiting for the next flush
	clean                int           // entries not dirty (evictable), in the clean list
	cleanHead, cleanTail *cacheEntry
	current              *cacheEntry // entry of the record being processed: not evicted
	// hits and misses count the lookups of records (see CacheLookups).
	hits, misses int64
}

// cacheEntry is the cached state of a key. value is written only by the
// partition's goroutine; the other fields are guarded by the part's mutex.
type cacheEntry struct {
	key   string
	value *Stored // nil: no value
	dirty bool
	// owned: value was made by set since a flush last took the entry's
	// value, and nothing else holds it: set may update it in place.
	owned      bool
	prev, next *cacheEntry // in the part's dirty list
	// flushing: a flush took the value and has not written it to the
	// store yet; evicting the entry would let a read miss it.
	flushing bool
	size     int64
	// encoded is the encoded size of the last flushed version (0: unknown).
	encoded int
	// The writer and version of the last version written to the changelog.
	baseWriter  statestore.SpanRef
	baseVersion uint64
	// replay is the state of the key as re-runs of redelivered records
	// rebuild it (see replayBase); replayBroken: a redelivered record of
	// the key could not be re-run, so the later ones cannot either.
	replay       *Stored
	replayBroken bool
	// cprev, cnext link the entry in the part's clean list (least recently
	// cleaned first) while it is clean and not being flushed (inClean):
	// eviction takes from its head instead of searching the entries.
	cprev, cnext *cacheEntry
	inClean      bool
}

type flushedRecord struct {
	e      *cacheEntry
	value  *Stored
	writer statestore.SpanRef
	ver    uint64
}

func newRecordCache(table string, codec goka.Codec, builder *statestore.Builder, tracer *tracing.Tracer,
	sc *sarama.Config, brokers []string, maxBytes int64, interval time.Duration) *recordCache {
	if interval <= 0 {
		interval = DefaultCommitInterval
	}
	return &recordCache{table: table, codec: codec, builder: builder, tracer: tracer, sc: sc, brokers: brokers,
		maxBytes: maxBytes, interval: interval, wake: make(chan struct{}, 1), released: make(chan struct{}), parts: map[int32]*cachePart{},
		keyTraceparent: []byte(tracing.HeaderTraceparent), keyEventTime: []byte(HeaderEventTime)}
}

// hold defers commit, a record's deferred commit, until the next flush of
// p is acknowledged. It must be called after the record's updates are in
// the cache: a flush takes the held commits and the dirty entries at once,
// so a commit held before its record's update could be released by a
// flush that did not write the update, and a crash before the next flush
// would lose it.
//
// Past heldFlushAt held records it asks for a flush, and past maxHeld it
// waits until a flush has released some, the part's partition stops or
// the cache stops (then the record stays held: a commit is never released
// early).
func (c *recordCache) hold(p *cachePart, commit func(error)) {
	p.mu.Lock()
	p.commits = append(p.commits, commit)
	p.mu.Unlock()
	n := c.held.Add(1)
	if n < heldFlushAt {
		return
	}
	if n == heldFlushAt || n%1024 == 0 {
		c.poke()
	}
	for n > maxHeld {
		c.releasedMu.Lock()
		released := c.released
		c.releasedMu.Unlock()
		if n = c.held.Load(); n <= maxHeld {
			return
		}
		c.poke()
		select {
		case <-released:
		case <-p.done:
			return
		case <-c.stop:
			return
		}
		n = c.held.Load()
	}
}

// release counts n held records as released and wakes the records that
// wait for that (see hold).
func (c *recordCache) release(n int) {
	if n == 0 {
		return
	}
	c.held.Add(int64(-n))
	c.releasedMu.Lock()
	close(c.released)
	c.released = make(chan struct{})
	c.releasedMu.Unlock()
}

func (c *recordCache) part(partition int32, done <-chan struct{}) *cachePart {
	fast := partition >= 0 && int(partition) < len(c.fast)
	if fast {
		if p := c.fast[partition].Load(); p != nil && p.done == done {
			return p
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.parts[partition]
	if p != nil && p.done == done {
		if fast {
			c.fast[partition].Store(p)
		}
		return p
	}
	if p != nil {
		c.retired = append(c.retired, p)
	}
	p = &cachePart{partition: partition, done: done, store: c.builder.Store(c.table, partition),
		entries: map[string]*cacheEntry{}}
	if !fast {
		c.slow.Store(true)
	}
	c.parts[partition] = p
	if fast {
		c.fast[partition].Store(p)
		if partition >= c.fastLen.Load() {
			c.fastLen.Store(partition + 1)
		}
	}
	if c.stop != nil {
		stop := c.stop
		go func() {
			select {
			case <-done:
				c.poke()
			case <-stop:
			}
		}()
	}
	return p
}

// poke asks the flusher for a flush.
func (c *recordCache) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// lookup returns the entry of key, or nil.
func (p *cachePart) lookup(key string) *cacheEntry {
	p.mu.Lock()
	e := p.entries[key]
	p.current = e
	if e != nil {
		p.hits++
	} else {
		p.misses++
	}
	p.mu.Unlock()
	return e
}

// insert caches v, read from the store, as the clean value of key.
func (c *recordCache) insert(p *cachePart, key string, v *Stored) *cacheEntry {
	e := &cacheEntry{key: key, value: v}
	if v != nil {
		e.baseWriter, e.baseVersion = v.Meta.Writer, v.Meta.Version
	}
	p.mu.Lock()
	if old := p.entries[key]; old != nil { // not expected: one goroutine per partition
		p.mu.Unlock()
		return old
	}
	p.entries[key] = e
	p.clean++
	p.appendClean(e)
	p.current = e
	c.resize(e)
	p.mu.Unlock()
	c.checkBudget(p)
	return e
}

// versionInput is what a new version of a key is made of (Context.setValue).
type versionInput struct {
	value     any
	writer    statestore.SpanRef
	eventTime time.Time
	id        statestore.SourceOffset // the record's identity: Sources[0]
	own       statestore.SourceOffset // with ownSet: the record's own offset too (an upstream identity)
	ownSet    bool
	collect   bool   // the contributors continue those of the flushed version
	job       string // the replay job writing it (WithReplayJob), "" live
}

// set makes the version in of e's key its value and returns it. A value
// that only e holds (made by set since the last flush took one: owned) is
// updated in place, so that a key updated many times between flushes
// costs one allocation per flush instead of one per update; readers of
// other goroutines copy it under p.mu (get), and a flush takes it away
// from the entry before it encodes it. lost: in's writer, of a sampled
// trace, could not be listed among the contributors (see appendContributor).
func (c *recordCache) set(p *cachePart, e *cacheEntry, in versionInput) (_ *Stored, lost bool) {
	p.mu.Lock()
	var v *Stored
	switch {
	case e.owned && e.value != nil:
		// In place: the version after e.value, its contributors extended.
		v = e.value
		v.Meta.Sources = toFront(v.Meta.Sources, in.id)
		if in.ownSet {
			v.Meta.Sources = withSlot(v.Meta.Sources, in.own)
		}
		v.Value, v.Meta.Writer, v.Meta.EventTime, v.Meta.Version = in.value, in.writer, in.eventTime, v.Meta.Version+1
		v.Meta.Contributors, v.Meta.Dropped, lost = appendContributor(v.Meta.Contributors, v.Meta.Dropped, in.writer)
	case in.collect:
		// The contributors continue those of the flushed version.
		v = newVersion(e.value, in)
		v.Meta.Contributors, v.Meta.Dropped, lost = addContributor(e.value, in.writer)
	default:
		// The first update since the flush: a new list, which later
		// updates grow in place up to MaxContributors.
		v = newVersion(e.value, in)
		v.Meta.Contributors, v.Meta.Dropped, _ = appendContributor(nil, 0, in.writer)
	}
	e.owned = true
	c.updateLocked(p, e, v)
	p.mu.Unlock()
	c.checkBudget(p)
	return v, lost
}

// remove makes e's key deleted (not flushed yet).
func (c *recordCache) remove(p *cachePart, e *cacheEntry) {
	p.mu.Lock()
	e.owned = false
	c.updateLocked(p, e, nil)
	p.mu.Unlock()
	c.checkBudget(p)
}

// updateLocked makes v the value of e and e the most recently changed
// dirty entry; p.mu is held.
func (c *recordCache) updateLocked(p *cachePart, e *cacheEntry, v *Stored) {
	e.value = v
	e.replay, e.replayBroken = nil, false
	if e.dirty {
		p.unlinkDirty(e)
	} else {
		e.dirty = true
		p.clean--
		p.unlinkClean(e)
	}
	p.appendDirty(e)
	c.resize(e)
}

// appendDirty puts e at the end of the dirty list; p.mu is held.
func (p *cachePart) appendDirty(e *cacheEntry) {
	e.prev, e.next = p.dirtyTail, nil
	if p.dirtyTail != nil {
		p.dirtyTail.next = e
	} else {
		p.dirtyHead = e
	}
	p.dirtyTail = e
	p.dirtyLen++
}

// appendClean puts e at the end of the clean list unless it is there;
// p.mu is held.
func (p *cachePart) appendClean(e *cacheEntry) {
	if e.inClean {
		return
	}
	e.inClean = true
	e.cprev, e.cnext = p.cleanTail, nil
	if p.cleanTail != nil {
		p.cleanTail.cnext = e
	} else {
		p.cleanHead = e
	}
	p.cleanTail = e
}

// unlinkClean takes e out of the clean list if it is there; p.mu is
// held.
func (p *cachePart) unlinkClean(e *cacheEntry) {
	if !e.inClean {
		return
	}
	e.inClean = false
	if e.cprev != nil {
		e.cprev.cnext = e.cnext
	} else {
		p.cleanHead = e.cnext
	}
	if e.cnext != nil {
		e.cnext.cprev = e.cprev
	} else {
		p.cleanTail = e.cprev
	}
	e.cprev, e.cnext = nil, nil
}

// unlinkDirty takes e out of the dirty list; p.mu is held.
func (p *cachePart) unlinkDirty(e *cacheEntry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		p.dirtyHead = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		p.dirtyTail = e.prev
	}
	e.prev, e.next = nil, nil
	p.dirtyLen--
}

// appendContributor adds w to a version's contributors: listed if its
// trace is sampled and the list has room, else counted in dropped (see
// listedContributor).
// lost: w is of a sampled trace but the list is full.
func appendContributor(have []statestore.SpanRef, dropped uint64, w statestore.SpanRef) (_ []statestore.SpanRef, _ uint64, lost bool) {
	if !listedContributor(w) {
		return have, dropped + 1, false
	}
	if len(have) >= statestore.MaxContributors {
		return have, dropped + 1, true
	}
	return append(have, w), dropped, false
}

// resize updates the budget's account of e; p.mu is held.
func (c *recordCache) resize(e *cacheEntry) {
	n := int64(cacheEntryOverhead + len(e.key))
	if e.encoded > 0 {
		n += int64(e.encoded)
	} else {
		n += cacheValueGuess
	}
	if e.value != nil {
		// Contributors accumulate until the flush (bounded by
		// MaxContributors); those the last flush wrote are in encoded
		// too, an over-count of at most one flush's list.
		n += int64(len(e.value.Meta.Contributors) * cacheSpanRefBytes)
	}
	if n != e.size { // most updates keep the size: no write to the shared counter
		c.bytes.Add(n - e.size)
		e.size = n
	}
}

// checkBudget evicts clean entries, of p first, while the cache is over
// its budget, and asks for a flush if that is not enough. The entry each
// partition is processing (current) is never evicted: its goroutine
// holds it.
func (c *recordCache) checkBudget(p *cachePart) {
	if c.bytes.Load() <= c.maxBytes {
		return
	}
	target := c.maxBytes - c.maxBytes/8
	if c.evict(p, target) {
		return
	}
	// The other partitions' clean entries, without a copy of the parts
	// (this runs for every record while the cache is full of dirty ones).
	if c.slow.Load() {
		c.mu.Lock()
		parts := mapValues(c.parts)
		c.mu.Unlock()
		for _, o := range parts {
			if o != p && c.evict(o, target) {
				return
			}
		}
	} else {
		for i := range c.fastLen.Load() {
			if o := c.fast[i].Load(); o != nil && o != p && c.evict(o, target) {
				return
			}
		}
	}
	if c.bytes.Load() > c.maxBytes {
		c.poke()
	}
}

// evictSkipLimit bounds the entries one eviction passes over without
// evicting them.
const evictSkipLimit = 64

// evict drops clean entries of p until the cache holds at most target
// bytes; it reports whether it got there.
func (c *recordCache) evict(p *cachePart, target int64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.clean == 0 {
		return c.bytes.Load() <= target
	}
	// Least recently cleaned first (entries being flushed are not in the
	// list); entries rebuilt by re-runs or processed now stay. A bounded
	// number of those is skipped, so that a call costs little even when
	// nothing can go: a flush is asked for then.
	skipped := 0
	for e := p.cleanHead; e != nil && p.clean > 0 && skipped < evictSkipLimit; {
		next := e.cnext
		if e.dirty || e.flushing || e.replay != nil || e == p.current {
			skipped++
			e = next
			continue
		}
		p.unlinkClean(e)
		delete(p.entries, e.key)
		p.clean--
		if c.bytes.Add(-e.size) <= target {
			return true
		}
		e = next
	}
	return c.bytes.Load() <= target
}

// Get returns the value of key in the group table as the processor's
// callbacks see it: the record cache's, if it holds the key (nil for a
// deleted key), else the store's (goka's Processor.Get). The value is a
// *Stored.
func (p *Processor) Get(key string) (any, error) {
	if c := p.cache; c != nil {
		if v, ok := c.get(key); ok {
			if v == nil {
				return nil, nil
			}
			return v, nil
		}
	}
	return p.Goka().Get(key)
}

// get returns the cached value of key from whichever partition holds it.
func (c *recordCache) get(key string) (*Stored, bool) {
	c.mu.Lock()
	parts := mapValues(c.parts)
	c.mu.Unlock()
	for _, p := range parts {
		p.mu.Lock()
		e := p.entries[key]
		var v *Stored
		if e != nil && e.value != nil {
			v = e.value.clone() // set may update e.value in place
		}
		p.mu.Unlock()
		if e != nil {
			return v, true
		}
	}
	return nil, false
}

// clone returns a copy of s that shares nothing that set updates in place.
func (s *Stored) clone() *Stored {
	c := *s
	c.Meta.Sources = slices.Clone(s.Meta.Sources)
	c.Meta.Contributors = slices.Clone(s.Meta.Contributors)
	return &c
}
