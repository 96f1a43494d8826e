package processors

// The record headers weft adds to the records it produces, and their
// decoders: a record's event time and the record it was emitted for.

import (
	"bytes"
	"math"
	"strconv"
	"time"

	"github.com/lovoo/goka"
	"github.com/weftstream/weft/statestore"
)

// HeaderFrom identifies a record a weft processor emitted by the record it
// was processing: "<topic>/<partition>/<offset>/<index>", where index
// counts the records the callback emitted before this one. A processor
// that reads the record keeps that identity (statestore.SourceOffset with
// Upstream set) instead of the record's own offset in the envelopes it
// writes, so a record emitted again when the upstream processor replays
// its input after a crash is recognised and does not update state twice:
// state stays effectively-once across repartitions.
const HeaderFrom = "weft.from"

// HeaderEventTime is the record header that carries a record's event time
// (milliseconds since the Unix epoch, in decimal) from one weft processor
// to the next. goka cannot set the timestamp of the records it produces
// (they get the time of the produce), so weft puts the event time of the
// record being processed in every record it emits, loops back or writes to
// a table, and reads it back as the event time of the records it consumes.
const HeaderEventTime = "weft.event.time"

// eventTimeOf is the event time in the record's HeaderEventTime header,
// or its timestamp when there is none or it is not a number.
func eventTimeOf(g goka.Context) time.Time {
	if h := g.Headers()[HeaderEventTime]; len(h) > 0 {
		if ms, ok := parseDecimal(h); ok {
			return time.UnixMilli(ms).UTC()
		}
	}
	return g.Timestamp()
}

// parseDecimal parses a decimal (possibly negative) int64 without
// allocating.
func parseDecimal(b []byte) (int64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	neg := b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, ch := range b {
		if ch < '0' || ch > '9' {
			return 0, false
		}
		n = n*10 + int64(ch-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// appendEventTime appends the header value of event time t.
func appendEventTime(b []byte, t time.Time) []byte {
	return strconv.AppendInt(b, t.UnixMilli(), 10)
}

// parseFrom parses a HeaderFrom value.
func parseFrom(h []byte) (statestore.SourceOffset, bool) {
	var nums [3]int64 // partition, offset, index
	rest := h
	for i := 2; i >= 0; i-- {
		j := bytes.LastIndexByte(rest, '/')
		if j < 0 {
			return statestore.SourceOffset{}, false
		}
		n, ok := parseDecimal(rest[j+1:])
		if !ok || n < 0 {
			return statestore.SourceOffset{}, false
		}
		nums[i], rest = n, rest[:j]
	}
	if len(rest) == 0 || nums[0] > math.MaxInt32 || nums[2] > math.MaxUint32 {
		return statestore.SourceOffset{}, false
	}
	return statestore.SourceOffset{Topic: string(rest), Partition: int32(nums[0]), Offset: nums[1],
		Index: uint32(nums[2]), Upstream: true}, true
}
