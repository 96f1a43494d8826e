package processors

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/weftstream/weft/statestore"
	"github.com/weftstream/weft/tracing"
	"go.opentelemetry.io/otel/trace"
)

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
		p.commits = make([]func(error), 0, len(held[i])) // about as many until the next flush
		recs := make([]flushedRecord, 0, p.dirtyLen)
		for e := p.dirtyHead; e != nil; {
			next := e.next
			e.prev, e.next = nil, nil
			recs = append(recs, flushedRecord{e: e, value: e.value, writer: e.baseWriter, ver: e.baseVersion})
			e.dirty, e.flushing, e.owned = false, true, false
			p.clean++ // evictable again once written (see below)
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
			if !r.e.dirty {
				p.appendClean(r.e)
			}
			p.mu.Unlock()
		}
	}
	acks.Wait()
	var firstErr error
	released := 0
	for i := range parts {
		for _, commit := range held[i] {
			commit(errs[i])
		}
		released += len(held[i])
		firstErr = cmpOr(firstErr, errs[i])
	}
	c.release(released)
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
			c.unfast(p)
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
	c.pastHits.Add(p.hits)
	c.pastMisses.Add(p.misses)
	p.hits, p.misses = 0, 0
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
	var span trace.Span
	var headers []sarama.RecordHeader
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
		h := goka.Headers{}
		c.tracer.Inject(ctx, h)
		headers = make([]sarama.RecordHeader, 0, len(h)+1)
		for k, v := range h {
			headers = append(headers, sarama.RecordHeader{Key: []byte(k), Value: v})
		}
	}
	// Without a flush span (no sampled contributor) the record carries its
	// writer's traceparent, as Inject would write it, built in one buffer
	// with the event time.
	var buf []byte
	if span == nil && parent.IsValid() {
		buf = make([]byte, 0, traceparentLen+20)
		buf = tracing.AppendTraceparent(buf, spanContext(parent))
		headers = make([]sarama.RecordHeader, 0, 2)
		headers = append(headers, sarama.RecordHeader{Key: c.keyTraceparent, Value: buf[:len(buf):len(buf)]})
	}
	if !eventTime.IsZero() {
		n := len(buf)
		buf = appendEventTime(buf, eventTime)
		headers = append(headers, sarama.RecordHeader{Key: c.keyEventTime, Value: buf[n:]})
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

// discard drops everything the cache holds, after the processor failed
// (a lost cluster): the records behind the updates it held were never
// committed, so the next processor consumes them again and applies them
// to the store, which is never ahead of the changelog.
func (c *recordCache) discard() {
	c.flushMu.Lock()
	defer c.flushMu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range append(mapValues(c.parts), c.retired...) {
		p.mu.Lock()
		c.pastHits.Add(p.hits) // CacheLookups counts on
		c.pastMisses.Add(p.misses)
		p.mu.Unlock()
	}
	c.parts = map[int32]*cachePart{}
	c.retired = nil
	for i := range c.fast {
		c.fast[i].Store(nil)
	}
	c.bytes.Store(0)
	c.err = nil
	c.release(int(c.held.Load()))
}

// unfast takes p out of the lock-free lookup of part; c.mu is held.
func (c *recordCache) unfast(p *cachePart) {
	if p.partition >= 0 && int(p.partition) < len(c.fast) {
		c.fast[p.partition].CompareAndSwap(p, nil)
	}
}
