package processors

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lovoo/goka"
	"github.com/weftstream/weft/statestore"
)

// ErrNotServed is returned by TableReader for a key whose partition this
// instance does not hold in a readable state: not assigned to it, or still
// restoring. Ask again later, or ask the instance that holds it.
var ErrNotServed = errors.New("the key's partition is not served by this instance (not assigned here, or restoring)")

// TableReader reads the group table of a running Processor from the
// partitions this instance holds, for queries beside the processing
// (interactive queries, as Kafka Streams calls them). Values come with
// their envelopes: writer span, version, event time, sources.
type TableReader struct {
	group      goka.Group
	topic      string
	builder    *statestore.Builder
	partitions int32
	// cache is the processor's record cache (nil without one): Get reads
	// through it, as the processor's own Value does.
	cache *recordCache
	codec goka.Codec
}

// TableReader returns the reader of the processor's group table, or nil
// for a stateless group.
func (p *Processor) TableReader() *TableReader {
	if p.graph.GroupTable() == nil {
		return nil
	}
	return &TableReader{group: p.graph.Group(), topic: string(goka.GroupTable(p.graph.Group())),
		builder: p.builder, partitions: p.partitions, cache: p.cache, codec: p.graph.GroupTable().Codec()}
}

// Group returns the processor group; the table is named after it.
func (r *TableReader) Group() goka.Group { return r.group }

// Topic returns the table topic.
func (r *TableReader) Topic() string { return r.topic }

// Partitions returns the partition count of the table.
func (r *TableReader) Partitions() int32 { return r.partitions }

// Partition returns the partition that holds key (goka's partitioner).
func (r *TableReader) Partition(key string) int32 { return keyPartition(key, r.partitions) }

// store returns the readable store of partition p, or ErrNotServed.
func (r *TableReader) store(p int32) (*statestore.Store, error) {
	st := r.builder.Store(r.topic, p)
	if st == nil || !st.Readable() {
		return nil, ErrNotServed
	}
	return st, nil
}

// Served returns the partitions this instance can answer for now.
func (r *TableReader) Served() []int32 {
	var out []int32
	for p := range r.partitions {
		if _, err := r.store(p); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// Assigned returns the partitions assigned to this instance (restored or
// restoring).
func (r *TableReader) Assigned() []int32 {
	var out []int32
	for p := range r.partitions {
		if st := r.builder.Store(r.topic, p); st != nil && st.IsOpen() {
			out = append(out, p)
		}
	}
	return out
}

// Get returns the envelope of key's value (its Value field holds the user
// encoding); ok is false if the key has no value.
func (r *TableReader) Get(key string) (env statestore.Envelope, ok bool, err error) {
	st, err := r.store(r.Partition(key))
	if err != nil {
		return env, false, err
	}
	// The newest value is in the record cache until it is flushed.
	if env, held, deleted, err := r.cached(key); held || err != nil {
		return env, held && !deleted && err == nil, err
	}
	data, err := st.Get(key)
	if errors.Is(err, statestore.ErrClosed) {
		return env, false, ErrNotServed
	}
	if err != nil || data == nil {
		return env, false, err
	}
	env, err = decodeEnvelope(data)
	return env, err == nil, err
}

// Lineage returns the recorded versions of key, newest first: the
// versions written to the store and changelog, and before them the
// record cache's value if it is newer (not flushed yet).
func (r *TableReader) Lineage(key string) ([]statestore.Envelope, error) {
	st, err := r.store(r.Partition(key))
	if err != nil {
		return nil, err
	}
	versions, err := st.Lineage(key)
	if errors.Is(err, statestore.ErrClosed) {
		return nil, ErrNotServed
	}
	if err != nil {
		return nil, err
	}
	return r.withCachedLineage(key, versions)
}

// GetAsOf returns version of key, if the lineage still holds it (or the
// record cache, for its newest version).
func (r *TableReader) GetAsOf(key string, version uint64) (statestore.Envelope, bool, error) {
	st, err := r.store(r.Partition(key))
	if err != nil {
		return statestore.Envelope{}, false, err
	}
	if env, ok, err := r.cachedAsOf(key, version); ok || err != nil {
		return env, ok, err
	}
	env, ok, err := st.GetAsOf(key, version)
	if errors.Is(err, statestore.ErrClosed) {
		return env, false, ErrNotServed
	}
	return env, ok, err
}

// GetAsOfTime returns the newest recorded version of key whose event time
// is not after t.
func (r *TableReader) GetAsOfTime(key string, t time.Time) (statestore.Envelope, bool, error) {
	st, err := r.store(r.Partition(key))
	if err != nil {
		return statestore.Envelope{}, false, err
	}
	if env, ok, err := r.cachedAsOfTime(key, t); ok || err != nil {
		return env, ok, err
	}
	env, ok, err := st.GetAsOfTime(key, t)
	if errors.Is(err, statestore.ErrClosed) {
		return env, false, ErrNotServed
	}
	return env, ok, err
}

// Entry is one key and its envelope, from Scan.
type Entry struct {
	Key      string
	Envelope statestore.Envelope
}

// Scan returns, in key order, up to limit keys that start with prefix and
// are greater than after, from every partition this instance serves, and
// the partitions it read. More is true when keys beyond the last returned
// one exist.
func (r *TableReader) Scan(prefix, after string, limit int) (entries []Entry, more bool, served []int32, err error) {
	for _, p := range r.Served() {
		st, err := r.store(p)
		if err != nil {
			continue
		}
		var cr cachedRange
		if r.cache != nil {
			cr = r.cache.cachedScan(p, prefix, after)
		}
		n := limit + 1 + len(cr.deleted) // enough for a page after the cached deletions
		got, err := scanStore(st, prefix, after, n)
		if errors.Is(err, statestore.ErrClosed) {
			continue // revoked meanwhile
		}
		if err != nil {
			return nil, false, nil, fmt.Errorf("scan %s/%d: %w", r.topic, p, err)
		}
		if r.cache != nil {
			if got, err = r.overlay(got, cr, len(got) == n); err != nil {
				return nil, false, nil, fmt.Errorf("scan %s/%d: %w", r.topic, p, err)
			}
		}
		entries = append(entries, got...)
		served = append(served, p)
	}
	slices.SortFunc(entries, func(a, b Entry) int { return strings.Compare(a.Key, b.Key) })
	if len(entries) > limit {
		entries, more = entries[:limit], true
	}
	return entries, more, served, nil
}

// scanStore returns up to n keys of st that start with prefix and sort
// after after.
func scanStore(st *statestore.Store, prefix, after string, n int) ([]Entry, error) {
	it, err := st.IteratorWithRange([]byte(prefix), nil)
	if err != nil {
		return nil, err
	}
	defer it.Release()
	var ok bool
	if after != "" && after >= prefix {
		ok = it.Seek([]byte(after)) // at the first key >= after
	} else {
		ok = it.Next()
	}
	var out []Entry
	for ; ok && len(out) < n; ok = it.Next() {
		k := string(it.Key())
		if k <= after {
			continue
		}
		data, err := it.Value()
		if err != nil {
			return nil, err
		}
		env, err := decodeEnvelope(data)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", k, err)
		}
		out = append(out, Entry{Key: k, Envelope: env})
	}
	return out, it.Err()
}

// decodeEnvelope decodes a stored value; bytes that are not an envelope
// (written by something else than weft) are the value itself.
func decodeEnvelope(data []byte) (statestore.Envelope, error) {
	env, err := statestore.DecodeEnvelope(slices.Clone(data))
	if errors.Is(err, statestore.ErrNotEnvelope) {
		return statestore.Envelope{Value: data}, nil
	}
	return env, err
}

// Watch calls fn for every write to the table on this instance once the
// changelog has acknowledged it, in the order of each partition's writes:
// key and the stored bytes (decode them with Decode), nil for a delete.
// fn runs while the partition's store is locked: it must not block or read
// the table, and must copy value to keep it. Stop removes fn.
func (r *TableReader) Watch(fn func(partition int32, key string, value []byte)) (stop func()) {
	topic := r.topic
	return r.builder.AddCommitHook(func(t string, partition int32, key string, value []byte) {
		if t == topic {
			fn(partition, key, value)
		}
	})
}

// Decode decodes stored bytes, as Watch passes them, into an envelope.
func (r *TableReader) Decode(value []byte) (statestore.Envelope, error) { return decodeEnvelope(value) }
