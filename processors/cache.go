package processors

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/weftstream/weft/statestore"
	"github.com/weftstream/weft/tracing"
	"go.opentelemetry.io/otel/trace"
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
// Contributors, bounded, with Dropped). Every input record of the
// partition is committed only after the flush that follows it has been
// acknowledged, so state stays effectively-once across crashes: records
// whose updates were never flushed are consumed again. The store is never
// ahead of the changelog: the store commits a write when the changelog
// acknowledges it. Downstream emits are not delayed.
func WithRecordCache(maxBytes int64, commitInterval time.Duration) Option {
	return func(c *config) {
		c.cacheMaxBytes = max(maxBytes, 0)
		c.commitInterval = commitInterval
	}
}

// Size estimates of cache entries for the byte budget: a value's encoded
// size is known once it has been flushed; before, it is assumed.
const (
	cacheEntryOverhead = 160 // entry, Stored, map slot
	cacheValueGuess    = 64
	cacheSourceBytes   = 48
	cacheSpanRefBytes  = 25
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
	wake  chan struct{}
	stop  chan struct{}
	done  chan struct{}
	err   error // of the flusher, read after done

	mu      sync.Mutex
	parts   map[int32]*cachePart
	retired []*cachePart // parts whose partition stopped or was assigned again

	flushMu  sync.Mutex // one flush at a time
	producer sarama.AsyncProducer
	flushes  atomic.Int64
}

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
	clean                int           // entries not dirty (evictable)
	current              *cacheEntry   // entry of the record being processed: not evicted
}

// cacheEntry is the cached state of a key. value is written only by the
// partition's goroutine; the other fields are guarded by the part's mutex.
type cacheEntry struct {
	key        string
	value      *Stored // nil: no value
	dirty      bool
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
		maxBytes: maxBytes, interval: interval, wake: make(chan struct{}, 1), parts: map[int32]*cachePart{}}
}

// hold returns the cache of the record's partition and defers the
// commit of the record until the next flush is acknowledged.
func (c *recordCache) hold(g goka.Context) *cachePart {
	p := c.part(g.Partition(), g.Context().Done())
	commit := g.DeferCommit()
	p.mu.Lock()
	p.commits = append(p.commits, commit)
	p.mu.Unlock()
	return p
}

func (c *recordCache) part(partition int32, done <-chan struct{}) *cachePart {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.parts[partition]
	if p != nil && p.done == done {
		return p
	}
	if p != nil {
		c.retired = append(c.retired, p)
	}
	p = &cachePart{partition: partition, done: done, store: c.builder.Store(c.table, partition),
		entries: map[string]*cacheEntry{}}
	c.parts[partition] = p
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
	p.current = e
	c.resize(e)
	p.mu.Unlock()
	c.checkBudget(p)
	return e
}

// update makes v (nil: deleted) the value of e. collect is setValue's: the
// contributors of v continue those of the flushed version.
func (c *recordCache) update(p *cachePart, e *cacheEntry, v *Stored, w statestore.SpanRef, collect bool) {
	p.mu.Lock()
	if v != nil {
		switch {
		case e.dirty && e.value != nil:
			// The chain of updates since the last flush: e.value is not
			// flushed yet, so its contributors can be extended in place
			// (a flush encodes only up to the length it took).
			v.Meta.Contributors, v.Meta.Dropped = appendContributor(e.value.Meta.Contributors, e.value.Meta.Dropped, w)
		case collect:
			v.Meta.Contributors, v.Meta.Dropped = addContributor(e.value, w)
		default:
			// A key updated once per flush needs one slot; a hot key
			// grows the slice in place up to MaxContributors.
			v.Meta.Contributors, v.Meta.Dropped = appendContributor(make([]statestore.SpanRef, 0, 4), 0, w)
		}
	}
	e.value = v
	e.replay, e.replayBroken = nil, false
	if e.dirty {
		p.unlinkDirty(e)
	} else {
		e.dirty = true
		p.clean--
	}
	p.appendDirty(e)
	c.resize(e)
	p.mu.Unlock()
	c.checkBudget(p)
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

func appendContributor(have []statestore.SpanRef, dropped uint64, w statestore.SpanRef) ([]statestore.SpanRef, uint64) {
	if !w.IsValid() {
		return have, dropped
	}
	if len(have) >= statestore.MaxContributors {
		return have, dropped + 1
	}
	return append(have, w), dropped
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
		n += int64(len(e.value.Meta.Sources)*cacheSourceBytes + len(e.value.Meta.Contributors)*cacheSpanRefBytes)
	}
	c.bytes.Add(n - e.size)
	e.size = n
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
	c.mu.Lock()
	parts := mapValues(c.parts)
	c.mu.Unlock()
	for _, o := range parts {
		if o != p && c.evict(o, target) {
			return
		}
	}
	if c.bytes.Load() > c.maxBytes {
		c.poke()
	}
}

// evict drops clean entries of p until the cache holds at most target
// bytes; it reports whether it got there.
func (c *recordCache) evict(p *cachePart, target int64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.clean == 0 {
		return c.bytes.Load() <= target
	}
	for k, e := range p.entries {
		if e.dirty || e.flushing || e.replay != nil || e == p.current {
			continue
		}
		delete(p.entries, k)
		p.clean--
		if c.bytes.Add(-e.size) <= target {
			return true
		}
		if p.clean == 0 {
			break
		}
	}
	return c.bytes.Load() <= target
}

// start creates the producer of the table's records and starts the
// flusher. The processor calls it before goka runs and the returned
// function after goka has stopped.
func (c *recordCache) start() (func() error, error) {
	cp := *c.sc
	cp.Producer.Partitioner = sarama.NewManualPartitioner
	cp.Producer.Return.Successes = true
	cp.Producer.Return.Errors = true
	producer, err := sarama.NewAsyncProducer(c.brokers, &cp)
	if err != nil {
		return nil, fmt.Errorf("create producer for table %s: %w", c.table, err)
	}
	c.producer = producer
	c.stop, c.done = make(chan struct{}), make(chan struct{})
	var acks sync.WaitGroup
	acks.Add(2)
	go func() {
		defer acks.Done()
		for msg := range producer.Successes() {
			msg.Metadata.(func(int64, error))(msg.Offset, nil)
		}
	}()
	go func() {
		defer acks.Done()
		for perr := range producer.Errors() {
			perr.Msg.Metadata.(func(int64, error))(0, perr.Err)
		}
	}()
	go c.run()
	return func() error {
		close(c.stop)
		<-c.done
		c.flushMu.Lock()
		c.producer = nil // Flush from now on reports that the cache is not running
		c.flushMu.Unlock()
		perr := producer.Close()
		acks.Wait()
		return errors.Join(c.err, perr)
	}, nil
}

// run flushes every interval and when poked (budget, a stopped
// partition) until stop. What is left then belongs to partitions goka has
// closed without waiting for them: their records are not committed, so
// they are consumed again.
func (c *recordCache) run() {
	defer close(c.done)
	t := time.NewTicker(c.interval)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		case <-c.wake:
		}
		if err := c.flush(); err != nil && c.err == nil {
			c.err = err
		}
	}
}

func mapValues(m map[int32]*cachePart) []*cachePart {
	out := make([]*cachePart, 0, len(m))
	for _, p := range m {
		out = append(out, p)
	}
	return out
}

// flush writes every dirty key of every partition, waits for the
// acknowledgements and then releases the input records held before it.
func (c *recordCache) flush() error {
	c.flushMu.Lock()
	defer c.flushMu.Unlock()
	if c.producer == nil {
		return errors.New("the record cache is not running")
	}
	c.mu.Lock()
	parts := append(c.retired[:len(c.retired):len(c.retired)], mapValues(c.parts)...)
	c.mu.Unlock()
	var acks sync.WaitGroup
	errs := make([]error, len(parts))
	held := make([][]func(error), len(parts))
	var errMu sync.Mutex
	for i, p := range parts {
		p.mu.Lock()
		held[i] = p.commits
		p.commits = nil
		recs := make([]flushedRecord, 0, p.dirtyLen)
		for e := p.dirtyHead; e != nil; {
			next := e.next
			e.prev, e.next = nil, nil
			recs = append(recs, flushedRecord{e: e, value: e.value, writer: e.baseWriter, ver: e.baseVersion})
			e.dirty, e.flushing = false, true
			p.clean++
			if e.value != nil {
				e.baseWriter, e.baseVersion = e.value.Meta.Writer, e.value.Meta.Version
			}
			e = next
		}
		p.dirtyHead, p.dirtyTail, p.dirtyLen = nil, nil, 0
		p.mu.Unlock()
		fail := func(err error) {
			errMu.Lock()
			errs[i] = errors.Join(errs[i], err)
			errMu.Unlock()
		}
		for _, r := range recs {
			if err := c.write(p, r, &acks, fail); err != nil {
				fail(err)
			}
			p.mu.Lock()
			r.e.flushing = false
			p.mu.Unlock()
		}
	}
	acks.Wait()
	var firstErr error
	for i := range parts {
		for _, commit := range held[i] {
			commit(errs[i])
		}
		firstErr = cmpOr(firstErr, errs[i])
	}
	c.retire(parts)
	c.flushes.Add(1)
	return firstErr
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// retire forgets the parts whose partition processor stopped and that
// hold nothing more.
func (c *recordCache) retire(parts []*cachePart) {
	c.mu.Lock()
	defer c.mu.Unlock()
	keep := c.retired[:0]
	for _, p := range c.retired {
		if !p.drained() {
			keep = append(keep, p)
		} else {
			c.forget(p)
		}
	}
	clear(c.retired[len(keep):])
	c.retired = keep
	for _, p := range parts {
		if c.parts[p.partition] == p && p.drained() {
			delete(c.parts, p.partition)
			c.forget(p)
		}
	}
}

// drained reports whether p's partition processor stopped and p has
// nothing to flush or release.
func (p *cachePart) drained() bool {
	select {
	case <-p.done:
	default:
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dirtyLen == 0 && len(p.commits) == 0
}

func (c *recordCache) forget(p *cachePart) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range p.entries {
		c.bytes.Add(-e.size)
	}
	clear(p.entries)
}

// write writes one flushed version to the store (pending until the
// changelog acknowledges it) and produces it to the changelog.
func (c *recordCache) write(p *cachePart, r flushedRecord, acks *sync.WaitGroup, fail func(error)) error {
	if p.store == nil {
		return fmt.Errorf("flush %s/%d: no store for the partition", c.table, p.partition)
	}
	var data []byte
	if r.value != nil {
		var err error
		if data, err = c.codec.Encode(r.value); err != nil {
			return fmt.Errorf("flush %s/%d: encode value of %q: %w", c.table, p.partition, r.e.key, err)
		}
		p.mu.Lock()
		r.e.encoded = len(data)
		c.resize(r.e)
		p.mu.Unlock()
		if err := p.store.Set(r.e.key, data); err != nil {
			return fmt.Errorf("flush %s/%d: store %q: %w", c.table, p.partition, r.e.key, err)
		}
	} else if err := p.store.Delete(r.e.key); err != nil {
		return fmt.Errorf("flush %s/%d: delete %q: %w", c.table, p.partition, r.e.key, err)
	}
	span, headers := c.flushSpan(r)
	msg := &sarama.ProducerMessage{Topic: c.table, Partition: p.partition, Key: sarama.StringEncoder(r.e.key), Headers: headers}
	if data != nil {
		msg.Value = sarama.ByteEncoder(data)
	}
	store := p.store
	acks.Add(1)
	msg.Metadata = func(offset int64, err error) {
		defer acks.Done()
		if err == nil && offset != 0 {
			// As goka does for its table writes: the store commits the
			// write once the changelog holds it. (Offset 0 of a new
			// table is not acknowledged; see statestore.)
			err = store.SetOffset(offset)
		}
		if err != nil {
			err = fmt.Errorf("flush %s/%d: key %q: %w", c.table, p.partition, r.e.key, err)
			fail(err)
			if span != nil {
				tracing.RecordError(span, err)
			}
		}
		if span != nil {
			span.End()
		}
	}
	c.producer.Input() <- msg
	return nil
}

// flushSpan returns the headers of a flushed record: the traceparent of
// the span "flush <table>" if a contributor was sampled (the span is then
// returned too), else the writer's; and the event time.
func (c *recordCache) flushSpan(r flushedRecord) (trace.Span, []sarama.RecordHeader) {
	var parent statestore.SpanRef
	var sampled int
	var contributors []statestore.SpanRef
	var dropped uint64
	var eventTime time.Time
	if r.value != nil {
		contributors, dropped = r.value.Meta.Contributors, r.value.Meta.Dropped
		parent, eventTime = r.value.Meta.Writer, r.value.Meta.EventTime
	}
	for _, sr := range contributors {
		if trace.TraceFlags(sr.Flags).IsSampled() {
			parent = sr
			sampled++
		}
	}
	h := goka.Headers{}
	var span trace.Span
	if sampled > 0 {
		links := make([]trace.Link, 0, sampled+1)
		for _, sr := range contributors {
			if trace.TraceFlags(sr.Flags).IsSampled() {
				links = append(links, tracing.Link(spanContext(sr), tracing.LinkCoalesced))
			}
		}
		if r.writer.IsValid() {
			links = append(links, tracing.Link(spanContext(r.writer), tracing.LinkPreviousValue,
				tracing.AttrStateVersion.Int64(int64(r.ver))))
		}
		var ctx context.Context
		ctx, span = c.tracer.Start(trace.ContextWithRemoteSpanContext(context.Background(), spanContext(parent)),
			"flush "+c.table, trace.WithLinks(links...), trace.WithAttributes(
				tracing.AttrStateTable.String(c.table), tracing.AttrStateKey.String(r.e.key),
				tracing.AttrLinksDropped.Int(len(contributors)-sampled+int(dropped))))
		c.tracer.Inject(ctx, h)
	} else if parent.IsValid() {
		c.tracer.Inject(trace.ContextWithRemoteSpanContext(context.Background(), spanContext(parent)), h)
	}
	if !eventTime.IsZero() {
		h[HeaderEventTime] = appendEventTime(nil, eventTime)
	}
	headers := make([]sarama.RecordHeader, 0, len(h))
	for k, v := range h {
		headers = append(headers, sarama.RecordHeader{Key: []byte(k), Value: v})
	}
	return span, headers
}

// startCache starts the record cache's flusher, if the processor has a
// cache; the returned function stops it once goka has stopped.
func (p *Processor) startCache() (func() error, error) {
	if p.cache == nil {
		return func() error { return nil }, nil
	}
	return p.cache.start()
}

// Flush writes the changed keys of the record cache (see WithRecordCache)
// to the store and the changelog now, waits for the acknowledgements and
// releases the commits of the records they include; reads of the store
// (Goka().Get, views, Lineage) then see them. Without a cache it does
// nothing. The processor must be running.
func (p *Processor) Flush() error {
	if p.cache == nil {
		return nil
	}
	return p.cache.flush()
}

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
	if id.Upstream && !coversID(e.value.Meta.Sources, statestore.SourceOffset{
		Topic: string(ctx.g.Topic()), Partition: ctx.g.Partition(), Offset: ctx.g.Offset()}) {
		return nil, false // a new copy of an applied upstream record
	}
	if e.replay != nil && !coversID(e.replay.Meta.Sources, id) {
		return e.replay, true
	}
	versions, err := lineage(c.builder, c.table, ctx.Key())
	if err != nil {
		return nil, false
	}
	first := -1 // the oldest version that covers the record
	for i, v := range versions {
		if !coversID(v.Sources, id) {
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

func coversID(sources []statestore.SourceOffset, id statestore.SourceOffset) bool {
	for _, src := range sources {
		if src.Covers(id) {
			return true
		}
	}
	return false
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
	return p.goka.Get(key)
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
		if e != nil {
			v = e.value
		}
		p.mu.Unlock()
		if e != nil {
			return v, true
		}
	}
	return nil, false
}
