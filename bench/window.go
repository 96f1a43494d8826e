package main

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// The window workload: counts per key and tumbling one-minute window of
// event time, the event time carried in the value (ts, milliseconds).
const (
	windowSize = time.Minute
	// windowSpan is the event time the input covers, whatever -n.
	windowSpan = 10 * windowSize
	// windowJitter: a record's event time is up to this far before or
	// after its place in the input order (out of order records).
	windowJitter = 15 * time.Second
	// windowGrace is longer than windowSpan: no record is late, whatever
	// the order in which an engine reads the partitions (a late record
	// would be dropped by weft, as by Kafka Streams, and counted by goka,
	// and which records are late would depend on that order).
	windowGrace = time.Hour
)

// windowBaseFor is the event time of the first record of a run that
// starts at now: the window start windowSpan before now, so that every
// event time is recent. It must be: Kafka Streams' window changelog is
// compact,delete with retention.ms of a day past the window, and the
// broker deletes segments whose newest record timestamp (the event time)
// is older than that, which with a fixed base in the past removed Kafka
// Streams' counts while the run was verifying them.
func windowBaseFor(now time.Time) time.Time {
	return now.UTC().Truncate(windowSize).Add(-windowSpan)
}

// windowEvent is a record of the window input.
type windowEvent struct {
	Seq int    `json:"seq"`
	Key string `json:"key"`
	TS  int64  `json:"ts"` // event time, milliseconds since the Unix epoch
}

// windowTableKey is the table key of key's window that holds event time
// ts (ms): key@<window start, RFC 3339, UTC>, the form weft's windowed
// tables use (docs/topology-format.md) and goka-leveldb writes.
func windowTableKey(key string, ts int64) string {
	start := ts - ts%windowSize.Milliseconds()
	return key + "@" + time.UnixMilli(start).UTC().Format(time.RFC3339)
}

// windowInput returns events records over keys seeded random keys, their
// event times spread evenly over windowSpan from base, each moved by
// a seeded random jitter of up to windowJitter, and the independent fold:
// the number of records per key and window.
func windowInput(events, keys int, windowBase time.Time) ([]record, map[string]int64) {
	rng := rand.New(rand.NewPCG(inputSeed, inputSeed+2))
	base, span, jitter := windowBase.UnixMilli(), windowSpan.Milliseconds(), windowJitter.Milliseconds()
	want := map[string]int64{}
	records := make([]record, events)
	for i := range records {
		key := keyName(rng.IntN(keys))
		ts := base + int64(i)*span/int64(events) + rng.Int64N(2*jitter+1) - jitter
		ts = max(base, min(ts, base+span-1))
		want[windowTableKey(key, ts)]++
		records[i] = record{key: key, value: fmt.Appendf(nil, `{"seq":%d,"key":%q,"ts":%d}`, i, key, ts)}
	}
	return records, want
}
