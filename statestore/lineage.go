package statestore

import (
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// The lineage index keeps, beside each key's value and in the same batch,
// the envelopes of its last versions (WithLineage; at least n and fewer
// than 2n are kept, as old versions are trimmed every n versions): who
// wrote each version,
// from which source record, when, and optionally the value. It answers
// "how did this value come to be" (Lineage) and temporal reads (GetAsOf,
// GetAsOfTime). Only values stored as envelopes have lineage; a delete
// removes the key's lineage with it. While a table is restored from its
// changelog the index is rebuilt from the envelopes the changelog still
// holds (compaction keeps the newest record of each key).
//
// Key layout: 'l', uvarint(len(key)), key, big-endian uint64 version.

func lineageKeyPrefix(key string) []byte {
	return appendLineageKeyPrefix(make([]byte, 0, 1+binary.MaxVarintLen64+len(key)+8), key)
}

func lineageKey(key string, version uint64) []byte {
	return binary.BigEndian.AppendUint64(lineageKeyPrefix(key), version)
}

func appendLineageKeyPrefix(b []byte, key string) []byte {
	b = append(b, lineagePrefix)
	b = binary.AppendUvarint(b, uint64(len(key)))
	return append(b, key...)
}

// envelopeVersion reads the version of an envelope without decoding the
// rest of it.
func envelopeVersion(data []byte) (uint64, bool) {
	if !IsEnvelope(data) || data[2] != EnvelopeFormat {
		return 0, false
	}
	pos := 4
	if data[3]&flagWriter != 0 {
		pos += spanRefLen
	}
	if pos > len(data) {
		return 0, false
	}
	v, n := binary.Uvarint(data[pos:])
	return v, n > 0
}

// stageLineage adds the lineage entry of a write to the batch.
func (s *Store) stageLineage(key string, value []byte) error {
	n := s.opts.lineageVersions
	if n <= 0 {
		return nil
	}
	if value == nil {
		p := lineageKeyPrefix(key)
		return s.batch.DeleteRange(p, prefixEnd(p), nil)
	}
	version, ok := envelopeVersion(value)
	if !ok {
		return nil
	}
	entry := value
	if !s.opts.lineageValues {
		env, err := DecodeEnvelope(value)
		if err != nil {
			return nil // not weft's; the value itself is stored as is
		}
		env.Value = nil
		entry = AppendEnvelope(nil, &env)
	}
	// The batch copies keys, so they are built in stack buffers: this is
	// the write path of every Set, and these were its only allocations.
	var kbuf, ebuf [96]byte
	k := appendLineageKeyPrefix(kbuf[:0], key)
	p := len(k)
	k = binary.BigEndian.AppendUint64(k, version)
	if err := s.batch.Set(k, entry, nil); err != nil {
		return err
	}
	// Trim in amortized steps: every n versions drop those older than the
	// last n (a range, since restored histories can have gaps).
	if version > uint64(n) && version%uint64(n) == 0 {
		end := append(ebuf[:0], k...)
		binary.BigEndian.PutUint64(end[p:], version-uint64(n)+1)
		binary.BigEndian.PutUint64(k[p:], 0)
		return s.batch.DeleteRange(k, end, nil)
	}
	return nil
}

// Lineage returns the recorded versions of key, newest first, including
// writes still waiting for the changelog (as Get does). Without values
// kept (WithLineage), committed versions come without their values.
func (s *Store) Lineage(key string) ([]Envelope, error) {
	return s.lineage(key, func(Envelope) bool { return true })
}

// GetAsOf returns the version of key numbered version, if the lineage
// index still holds it, including writes still waiting for the changelog
// (as Get and Lineage do).
func (s *Store) GetAsOf(key string, version uint64) (Envelope, bool, error) {
	versions, err := s.lineage(key, func(e Envelope) bool { return e.Version == version })
	if err != nil || len(versions) == 0 {
		return Envelope{}, false, err
	}
	return versions[0], true, nil
}

// GetAsOfTime returns the newest recorded version of key whose event time is
// not after t.
func (s *Store) GetAsOfTime(key string, t time.Time) (Envelope, bool, error) {
	versions, err := s.lineage(key, func(e Envelope) bool { return !e.EventTime.After(t) })
	if err != nil || len(versions) == 0 {
		return Envelope{}, false, err
	}
	return versions[0], true, nil
}

func (s *Store) lineage(key string, keep func(Envelope) bool) ([]Envelope, error) {
	s.mu.Lock()
	db := s.db
	// Writes not committed yet are part of the history Get already shows.
	var pending [][]byte
	if _, ok := s.overlay[key]; ok {
		for i := s.pendingHead; i < len(s.pending); i++ {
			if w := s.pending[i]; w.key == key {
				pending = append(pending, w.value)
			}
		}
	}
	s.mu.Unlock()
	if db == nil {
		return nil, ErrClosed
	}
	var out []Envelope
	for i := len(pending) - 1; i >= 0; i-- {
		if pending[i] == nil {
			return out, nil // deleted after these writes: no older history
		}
		env, err := DecodeEnvelope(slices.Clone(pending[i]))
		if err != nil {
			continue
		}
		if keep(env) {
			out = append(out, env)
		}
	}
	p := lineageKeyPrefix(key)
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return nil, fmt.Errorf("lineage of %q in %s: %w", key, s.dir, err)
	}
	defer it.Close()
	for ok := it.Last(); ok; ok = it.Prev() {
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, fmt.Errorf("lineage of %q in %s: %w", key, s.dir, err)
		}
		env, err := DecodeEnvelope(slices.Clone(v))
		if err != nil {
			return nil, fmt.Errorf("lineage of %q in %s: %w", key, s.dir, err)
		}
		if keep(env) {
			out = append(out, env)
		}
	}
	return out, it.Error()
}
