package statestore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// An envelope wraps every table value weft stores, in Pebble and in the
// table (changelog) topic, so that trace metadata survives restores.
//
// Format (version 1), all integers little-endian or varints:
//
//	magic        2 bytes  'w' 'f'
//	format       1 byte   1
//	flags        1 byte   bit 0: writer span present; bit 1: sources have an index;
//	                      bit 2: replay job present
//	writer       25 bytes trace id (16), span id (8), trace flags (1); only with bit 0
//	version      uvarint  number of updates of the key (1 for the first value)
//	event time   varint   Unix nanoseconds of the event, 0 if unknown
//	sources      uvarint n, then n × (uvarint topic length, topic, varint partition, varint offset
//	                      [, uvarint index<<1 | upstream, only with bit 1]):
//	                      the last applied source offset per input partition
//	contributors uvarint n, then n × 25 bytes span: the coalesced writers (bounded)
//	dropped      uvarint  contributors not listed (unsampled, or beyond the bound)
//	replay job   uvarint length, then the name (at most 255 bytes) of the
//	             replay job that wrote the version; only with bit 2
//	value        the rest: the user value as encoded by the table codec
//
// The replay job (bit 2) was added to format 1 without changing its
// number: a version written by live processing has no replay job and is
// encoded byte for byte as before, and envelopes written before it decode
// as they did (the field is absent). A weft older than the field refuses
// the envelopes that have it (unknown flags) instead of misreading them.
//
// A reader that is not weft decodes the format with DecodeEnvelope, or
// skips to the value: it starts after the fields above.
const (
	envelopeMagic0 byte = 'w'
	envelopeMagic1 byte = 'f'
	// EnvelopeFormat is the format version written by AppendEnvelope.
	EnvelopeFormat byte = 1

	flagWriter      byte = 1 << 0
	flagSourceIndex byte = 1 << 1
	flagReplayJob   byte = 1 << 2

	spanRefLen = 16 + 8 + 1

	// MaxContributors bounds the contributor list of an envelope; further
	// contributors are counted in Dropped (as weft's processors count the
	// contributors of unsampled traces, which they do not list).
	MaxContributors = 128
	// maxSources bounds the source offsets a decoder accepts.
	maxSources  = 4096
	maxTopicLen = 255
	// MaxReplayJobLen bounds the replay job name of an envelope; longer
	// names are cut (weft replay refuses them).
	MaxReplayJobLen = 255
)

// SpanRef identifies a span: the data of an OTel span context.
type SpanRef struct {
	TraceID [16]byte
	SpanID  [8]byte
	Flags   byte // W3C trace flags (bit 0: sampled)
}

// IsValid reports whether both ids are non-zero, as W3C requires.
func (r SpanRef) IsValid() bool { return r.TraceID != [16]byte{} && r.SpanID != [8]byte{} }

// SourceOffset is the last source offset applied from one input partition
// (one slot, in the terms of the effectively-once guard, which
// processors/applied.go defines and decides).
//
// A record that a weft processor emitted while it processed another record
// is identified by that upstream record instead (Upstream set): Topic,
// Partition and Offset are the upstream record's, Index counts the records
// emitted while processing it. A record emitted again when the upstream
// processor replays its input after a crash then has the same identity, so
// the state it updated is not updated twice.
type SourceOffset struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Index     uint32 `json:"index,omitempty"`    // with Upstream: the record's place among those emitted for Offset
	Upstream  bool   `json:"upstream,omitempty"` // Topic/Partition@Offset is the record being processed when this one was emitted
}

// Envelope is a table value with its trace metadata.
type Envelope struct {
	Writer       SpanRef        // span that wrote this value (zero: none)
	Version      uint64         // updates of the key so far
	EventTime    time.Time      // time of the event that produced the value
	Sources      []SourceOffset // last applied offset per input partition
	Contributors []SpanRef      // coalesced writers, at most MaxContributors
	Dropped      uint64         // contributors not listed: unsampled, or beyond MaxContributors
	// ReplayJob names the replay job (weft replay) that wrote this
	// version; "" for live processing, which costs no byte.
	ReplayJob string
	Value     []byte // user value (table codec)
}

// ErrNotEnvelope is returned by DecodeEnvelope for data that does not start
// with the envelope magic.
var ErrNotEnvelope = errors.New("not a weft envelope")

// IsEnvelope reports whether data starts like an envelope.
func IsEnvelope(data []byte) bool {
	return len(data) >= 4 && data[0] == envelopeMagic0 && data[1] == envelopeMagic1
}

// AppendEnvelope appends the encoding of e to b.
func AppendEnvelope(b []byte, e *Envelope) []byte {
	var flags byte
	if e.Writer != (SpanRef{}) {
		flags |= flagWriter
	}
	if e.ReplayJob != "" {
		flags |= flagReplayJob
	}
	flagsAt := len(b) + 3
	b = append(b, envelopeMagic0, envelopeMagic1, EnvelopeFormat, flags)
	if flags&flagWriter != 0 {
		b = appendSpanRef(b, e.Writer)
	}
	b = binary.AppendUvarint(b, e.Version)
	var nanos int64
	if !e.EventTime.IsZero() {
		nanos = e.EventTime.UnixNano()
	}
	indexed := false
	for _, s := range e.Sources {
		if s.Index != 0 || s.Upstream {
			indexed = true
			break
		}
	}
	if indexed {
		b[flagsAt] |= flagSourceIndex
	}
	b = binary.AppendVarint(b, nanos)
	b = binary.AppendUvarint(b, uint64(len(e.Sources)))
	for _, s := range e.Sources {
		topic := s.Topic
		if len(topic) > maxTopicLen {
			topic = topic[:maxTopicLen]
		}
		b = binary.AppendUvarint(b, uint64(len(topic)))
		b = append(b, topic...)
		b = binary.AppendVarint(b, int64(s.Partition))
		b = binary.AppendVarint(b, s.Offset)
		if indexed {
			x := uint64(s.Index) << 1
			if s.Upstream {
				x |= 1
			}
			b = binary.AppendUvarint(b, x)
		}
	}
	contributors, dropped := e.Contributors, e.Dropped
	if len(contributors) > MaxContributors {
		dropped += uint64(len(contributors) - MaxContributors)
		contributors = contributors[:MaxContributors]
	}
	b = binary.AppendUvarint(b, uint64(len(contributors)))
	for _, c := range contributors {
		b = appendSpanRef(b, c)
	}
	b = binary.AppendUvarint(b, dropped)
	if flags&flagReplayJob != 0 {
		job := e.ReplayJob
		if len(job) > MaxReplayJobLen {
			job = job[:MaxReplayJobLen]
		}
		b = binary.AppendUvarint(b, uint64(len(job)))
		b = append(b, job...)
	}
	return append(b, e.Value...)
}

func appendSpanRef(b []byte, r SpanRef) []byte {
	b = append(b, r.TraceID[:]...)
	b = append(b, r.SpanID[:]...)
	return append(b, r.Flags)
}

// DecodeEnvelope decodes an envelope. The Value of the result aliases data.
// It never panics: malformed input gives an error that says where.
func DecodeEnvelope(data []byte) (Envelope, error) {
	var e Envelope
	err := DecodeEnvelopeInto(&e, data)
	return e, err
}

// DecodeEnvelopeInto is DecodeEnvelope into *e: it sets *e to the decoded
// envelope, or to the zero Envelope with an error. The Sources and
// Contributors of the result use the arrays of e's when their capacity
// suffices (a caller that decodes into storage of its own saves the
// allocations); an empty list is nil, as DecodeEnvelope makes it.
func DecodeEnvelopeInto(e *Envelope, data []byte) error {
	sources, contributors := e.Sources[:0], e.Contributors[:0]
	*e = Envelope{}
	if !IsEnvelope(data) {
		return ErrNotEnvelope
	}
	if data[2] != EnvelopeFormat {
		return fmt.Errorf("envelope format %d is not supported (this weft reads format %d)", data[2], EnvelopeFormat)
	}
	d := decoder{buf: data, pos: 4}
	flags := data[3]
	if flags&^(flagWriter|flagSourceIndex|flagReplayJob) != 0 {
		return fmt.Errorf("envelope has unknown flags %#x", flags)
	}
	if flags&flagWriter != 0 {
		e.Writer = d.spanRef("writer")
	}
	e.Version = d.uvarint("version")
	if nanos := d.varint("event time"); nanos != 0 {
		e.EventTime = time.Unix(0, nanos).UTC()
	}
	if n := d.count("sources", maxSources, 3); n > 0 {
		if uint64(cap(sources)) >= n {
			e.Sources = sources[:n]
		} else {
			e.Sources = make([]SourceOffset, n)
		}
		for i := range e.Sources {
			l := d.count("topic length", maxTopicLen, 1)
			// A reused entry keeps its topic string if it is the same.
			topic, b := e.Sources[i].Topic, d.bytes(int(l), "topic")
			if topic != string(b) {
				topic = string(b)
			}
			e.Sources[i] = SourceOffset{Topic: topic}
			p := d.varint("partition")
			if p < -1<<31 || p > 1<<31-1 {
				d.fail("partition %d out of range", p)
			}
			e.Sources[i].Partition = int32(p)
			e.Sources[i].Offset = d.varint("offset")
			if flags&flagSourceIndex != 0 {
				x := d.uvarint("source index")
				if x>>1 > 1<<32-1 {
					d.fail("source index %d out of range", x>>1)
				}
				e.Sources[i].Index, e.Sources[i].Upstream = uint32(x>>1), x&1 == 1
			}
		}
	}
	if n := d.count("contributors", MaxContributors, spanRefLen); n > 0 {
		if uint64(cap(contributors)) >= n {
			e.Contributors = contributors[:n]
		} else {
			e.Contributors = make([]SpanRef, n)
		}
		for i := range e.Contributors {
			e.Contributors[i] = d.spanRef("contributor")
		}
	}
	e.Dropped = d.uvarint("dropped contributors")
	if flags&flagReplayJob != 0 {
		l := d.count("replay job length", MaxReplayJobLen, 1)
		e.ReplayJob = string(d.bytes(int(l), "replay job"))
	}
	if d.err != nil {
		*e = Envelope{}
		return d.err
	}
	e.Value = data[d.pos:]
	return nil
}

// decoder reads envelope fields, remembering the first error.
type decoder struct {
	buf []byte
	pos int
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("envelope at byte %d: %s", d.pos, fmt.Sprintf(format, args...))
	}
}

func (d *decoder) uvarint(what string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.buf[d.pos:])
	if n <= 0 {
		d.fail("bad %s", what)
		return 0
	}
	d.pos += n
	return v
}

func (d *decoder) varint(what string) int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.buf[d.pos:])
	if n <= 0 {
		d.fail("bad %s", what)
		return 0
	}
	d.pos += n
	return v
}

// count reads a length that must not exceed limit nor what the remaining
// bytes can hold at minSize bytes per item.
func (d *decoder) count(what string, limit uint64, minSize int) uint64 {
	n := d.uvarint(what)
	if d.err != nil {
		return 0
	}
	if n > limit || n*uint64(minSize) > uint64(len(d.buf)-d.pos) {
		d.fail("%s count %d is too large", what, n)
		return 0
	}
	return n
}

func (d *decoder) bytes(n int, what string) []byte {
	if d.err != nil {
		return nil
	}
	if n > len(d.buf)-d.pos {
		d.fail("truncated %s", what)
		return nil
	}
	b := d.buf[d.pos : d.pos+n]
	d.pos += n
	return b
}

func (d *decoder) spanRef(what string) SpanRef {
	var r SpanRef
	b := d.bytes(spanRefLen, what)
	if b == nil {
		return r
	}
	copy(r.TraceID[:], b[:16])
	copy(r.SpanID[:], b[16:24])
	r.Flags = b[24]
	return r
}
