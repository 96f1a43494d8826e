package processors

import (
	"fmt"
	"sync/atomic"

	"github.com/lovoo/goka"
	"github.com/weftstream/weft/statestore"
)

// Stored is a table value as weft keeps it: the user value and the trace
// metadata of its envelope (statestore.Envelope; its Value field is unused
// here).
type Stored struct {
	Meta  statestore.Envelope
	Value any
	// err is why the stored bytes could not be decoded (group tables only,
	// see Persist): the processor stops with it instead of goka's panic.
	err error
}

// envelopeCodec wraps a table's user codec: values are stored as
// statestore envelopes around the user encoding.
//
// keepErrors (group tables, see Persist) makes a value that does not
// decode a *Stored that carries the error, so that the traced Context can
// stop the processor with a sentence: goka's own decoding failure panics
// inside the callback and prints a stack trace. (One codec type for both:
// goka's tester insists on one codec type per topic.)
type envelopeCodec struct {
	user       goka.Codec
	keepErrors bool
	topics     *sourceTopics // nil: none kept
}

// sourceTopics keeps the topics of the first two sources of the value a
// codec decoded last, which the next value it decodes most likely has
// too (the inputs of one group): decoding into them keeps their strings
// instead of making new ones (see statestore.DecodeEnvelopeInto).
type sourceTopics struct{ last atomic.Pointer[[2]string] }

// EnvelopeCodec returns the codec weft uses for tables whose values are
// encoded by user: it encodes *Stored values and decodes to *Stored. Data
// that is not an envelope (written by something else than weft) decodes to
// a *Stored without metadata.
func EnvelopeCodec(user goka.Codec) goka.Codec {
	return envelopeCodec{user: user, topics: new(sourceTopics)}
}

func (c envelopeCodec) Encode(v any) ([]byte, error) {
	s, ok := v.(*Stored)
	if !ok {
		return nil, fmt.Errorf("envelope codec: cannot encode %T, want *processors.Stored", v)
	}
	meta := s.Meta
	if ae, ok := c.user.(appendEncoder); ok {
		// The value is the rest of the envelope: encoded in place.
		meta.Value = nil
		return ae.AppendEncode(statestore.AppendEnvelope(make([]byte, 0, envelopeEncodeCap), &meta), s.Value)
	}
	ub, err := c.user.Encode(s.Value)
	if err != nil {
		return nil, err
	}
	meta.Value = ub
	return statestore.AppendEnvelope(make([]byte, 0, len(ub)+96), &meta), nil
}

// appendEncoder is a user codec that encodes into a caller's buffer (the
// json codec, topology.JSON): the envelope codec appends the value to the
// envelope instead of copying an encoding made apart.
type appendEncoder interface {
	AppendEncode(b []byte, v any) ([]byte, error)
}

// envelopeEncodeCap is the buffer an envelope with an appended value
// starts with: the metadata (about 70 bytes with one source) and a small
// value.
const envelopeEncodeCap = 256

func (c envelopeCodec) Decode(data []byte) (any, error) {
	v, err := c.decode(data)
	if err != nil && c.keepErrors {
		return &Stored{err: err}, nil
	}
	return v, err
}

func (c envelopeCodec) decode(data []byte) (any, error) {
	if !statestore.IsEnvelope(data) {
		v, err := c.user.Decode(data)
		if err != nil {
			return nil, err
		}
		return &Stored{Value: v}, nil
	}
	// The Stored and its sources in one allocation (see newStored),
	// their topics those of the last value, if they are the same.
	b := &storedSources{}
	var last *[2]string
	if c.topics != nil {
		if last = c.topics.last.Load(); last != nil {
			b.src[0].Topic, b.src[1].Topic = last[0], last[1]
		}
	}
	s := &b.s
	s.Meta.Sources = b.src[:0]
	if err := statestore.DecodeEnvelopeInto(&s.Meta, data); err != nil {
		return nil, err
	}
	if c.topics != nil && len(s.Meta.Sources) > 0 && &s.Meta.Sources[0] == &b.src[0] {
		if last == nil || b.src[0].Topic != last[0] || b.src[1].Topic != last[1] {
			c.topics.last.Store(&[2]string{b.src[0].Topic, b.src[1].Topic})
		}
	}
	v, err := c.user.Decode(s.Meta.Value)
	if err != nil {
		return nil, err
	}
	s.Meta.Value, s.Value = nil, v
	return s, nil
}

// decodeStored decodes a group table value with codec, returning the
// decoding error of a value groupTableCodec could not decode.
func decodeStored(codec goka.Codec, data []byte) (*Stored, error) {
	v, err := codec.Decode(data)
	if err != nil {
		return nil, err
	}
	s, ok := v.(*Stored)
	if !ok {
		return nil, fmt.Errorf("holds a %T, want *processors.Stored", v)
	}
	if s.err != nil {
		return nil, s.err
	}
	return s, nil
}

// rawCodec passes bytes through; nil stays nil.
type rawCodec struct{}

func (rawCodec) Encode(v any) ([]byte, error) {
	b, ok := v.([]byte)
	if !ok && v != nil {
		return nil, fmt.Errorf("raw codec: cannot encode %T", v)
	}
	return b, nil
}

func (rawCodec) Decode(data []byte) (any, error) { return data, nil }
