package processors

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// Latency is the histogram of a group's processing durations: for every
// input record handled (processed, replayed or rejected), the time from
// the start of weft's callback to its end (decoding, the handler, state
// reads and writes, the record's span, and the wait for the record cache,
// if any). A record that stops the processor is not counted.
//
// It is kept on the record's path, so it costs two reads of the monotonic
// clock and two atomic adds per record and allocates nothing: fixed exponential buckets
// (powers of two from LatencyMinBound to LatencyMinBound·2^(LatencyBuckets-1))
// counted without a lock. Read it with Snapshot (serve exports it as the
// OpenTelemetry histogram weft.process.duration). The zero Latency is empty
// and ready to use; it is safe for concurrent use.
type Latency struct {
	counts [LatencyBuckets + 1]atomic.Uint64 // the last one: beyond the last bound
	sum    atomic.Int64                      // nanoseconds
}

// LatencyBuckets is the number of bounded buckets of a Latency; a last,
// unbounded one counts the durations beyond them.
const LatencyBuckets = 24

// LatencyMinBound is the upper bound of a Latency's first bucket
// (2^10 ns); bucket i ends at LatencyMinBound·2^i, the last at about 8.6 s.
const LatencyMinBound = 1024 * time.Nanosecond

// latencyShift is log2(LatencyMinBound).
const latencyShift = 10

// latencyEpoch is the reference of latencyClock: the time the process
// started (it is never changed).
var latencyEpoch = time.Now()

// latencyClock reads the monotonic clock, as the time since latencyEpoch:
// one clock read where time.Now makes two (the wall and the monotonic
// clock), which is what a record pays for its duration.
func latencyClock() time.Duration { return time.Since(latencyEpoch) }

// observe counts one duration d.
func (l *Latency) observe(d time.Duration) {
	ns := max(int64(d), 0)
	// The bucket whose bound (LatencyMinBound<<i) is the first >= d.
	i := 0
	if ns > int64(LatencyMinBound) {
		i = min(bits.Len64(uint64(ns-1))-latencyShift, LatencyBuckets)
	}
	l.counts[i].Add(1)
	l.sum.Add(ns)
}

// LatencySnapshot is a Latency at one point in time.
type LatencySnapshot struct {
	// Bounds are the upper bounds (inclusive) of the buckets, increasing.
	Bounds []time.Duration
	// Counts are the durations per bucket (not cumulative); the last,
	// one more than Bounds, counts those beyond the last bound.
	Counts []uint64
	// Count is the number of durations, the sum of Counts.
	Count uint64
	// Sum is the sum of the durations.
	Sum time.Duration
}

// LatencyBounds returns the upper bounds of a Latency's buckets.
func LatencyBounds() []time.Duration {
	b := make([]time.Duration, LatencyBuckets)
	for i := range b {
		b[i] = LatencyMinBound << i
	}
	return b
}

// Snapshot returns the counts so far. Count is the sum of the buckets read
// (so the buckets and the count agree); Sum is read after them and may
// include a duration recorded meanwhile.
func (l *Latency) Snapshot() LatencySnapshot {
	s := LatencySnapshot{Bounds: LatencyBounds(), Counts: make([]uint64, LatencyBuckets+1)}
	for i := range l.counts {
		s.Counts[i] = l.counts[i].Load()
		s.Count += s.Counts[i]
	}
	s.Sum = time.Duration(l.sum.Load())
	return s
}

// Latency returns the processing durations of the records the runtime's
// callbacks handled.
func (rt *Runtime) Latency() *Latency { return &rt.latency }

// Latency returns the processing durations of the runtime the processor
// runs with (WithRuntime), or nil without one.
func (p *Processor) Latency() *Latency {
	if p.cfg.runtime == nil {
		return nil
	}
	return p.cfg.runtime.Latency()
}
