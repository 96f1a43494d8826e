package processors

import (
	"fmt"
	"strings"
	"time"

	"github.com/weftstream/weft/statestore"
)

// The record cache holds a table's newest values until it flushes them
// (about a second with the defaults). Every read of a TableReader sees
// them as the processor's own callbacks do: the cached value is the key's
// newest version for Get, Lineage, GetAsOf, GetAsOfTime and Scan alike, so
// that a query API never answers a value and then a lineage, an as_of or a
// scan that does not know it yet.

// cached returns the record cache's view of key: held reports whether the
// cache holds the key, deleted whether it holds it as deleted (not flushed
// yet); otherwise env is the cached value's envelope.
func (r *TableReader) cached(key string) (env statestore.Envelope, held, deleted bool, err error) {
	if r.cache == nil {
		return env, false, false, nil
	}
	v, ok := r.cache.get(key)
	if !ok {
		return env, false, false, nil
	}
	if v == nil {
		return env, true, true, nil
	}
	env, err = r.encodeCached(key, v)
	return env, true, false, err
}

// encodeCached returns the envelope of a cached value, as the store would
// hold it once flushed.
func (r *TableReader) encodeCached(key string, v *Stored) (statestore.Envelope, error) {
	data, err := r.codec.Encode(v)
	if err != nil {
		return statestore.Envelope{}, fmt.Errorf("encode the cached value of %q: %w", key, err)
	}
	return decodeEnvelope(data)
}

// withCachedLineage puts the cached value of key in front of the stored
// versions when it is newer than they are; a cached delete leaves no
// lineage, as a flushed one does.
func (r *TableReader) withCachedLineage(key string, versions []statestore.Envelope) ([]statestore.Envelope, error) {
	env, held, deleted, err := r.cached(key)
	switch {
	case err != nil:
		return nil, err
	case !held:
		return versions, nil
	case deleted:
		return nil, nil
	}
	if len(versions) > 0 && versions[0].Version >= env.Version {
		return versions, nil // flushed already
	}
	return append([]statestore.Envelope{env}, versions...), nil
}

// cachedAsOf returns the cached value of key if it is version.
func (r *TableReader) cachedAsOf(key string, version uint64) (statestore.Envelope, bool, error) {
	env, held, deleted, err := r.cached(key)
	if err != nil || !held || deleted || env.Version != version {
		return statestore.Envelope{}, false, err
	}
	return env, true, nil
}

// cachedAsOfTime returns the cached value of key if its event time is not
// after t: it is the key's newest version.
func (r *TableReader) cachedAsOfTime(key string, t time.Time) (statestore.Envelope, bool, error) {
	env, held, deleted, err := r.cached(key)
	if err != nil || !held || deleted || env.EventTime.After(t) {
		return statestore.Envelope{}, false, err
	}
	return env, true, nil
}

// cachedRange is what the cache holds of one partition for a scan: the
// values of the keys that start with prefix and sort after after, and the
// keys it holds as deleted.
type cachedRange struct {
	values  map[string]*Stored
	deleted map[string]bool
}

// cachedScan returns the cache's keys of partition p in a scan's range.
func (c *recordCache) cachedScan(p int32, prefix, after string) cachedRange {
	out := cachedRange{values: map[string]*Stored{}, deleted: map[string]bool{}}
	c.mu.Lock()
	part := c.parts[p]
	c.mu.Unlock()
	if part == nil {
		return out
	}
	part.mu.Lock()
	defer part.mu.Unlock()
	for k, e := range part.entries {
		if !strings.HasPrefix(k, prefix) || k <= after {
			continue
		}
		if e.value == nil {
			out.deleted[k] = true
		} else {
			out.values[k] = e.value.clone()
		}
	}
	return out
}

// overlay merges what the cache holds into the entries a store scan gave:
// cached values replace or join them, cached deletions leave. truncated
// says the scan stopped before the end of the range; then a cached key
// beyond the last stored key it read is left for a later page, since
// stored keys it did not read may sort before it.
func (r *TableReader) overlay(stored []Entry, cr cachedRange, truncated bool) ([]Entry, error) {
	out := make([]Entry, 0, len(stored)+len(cr.values))
	for _, e := range stored {
		if cr.deleted[e.Key] {
			continue
		}
		if v, ok := cr.values[e.Key]; ok {
			env, err := r.encodeCached(e.Key, v)
			if err != nil {
				return nil, err
			}
			e.Envelope = env
			delete(cr.values, e.Key)
		}
		out = append(out, e)
	}
	last := ""
	if len(stored) > 0 {
		last = stored[len(stored)-1].Key
	}
	for k, v := range cr.values {
		if truncated && k > last {
			continue
		}
		env, err := r.encodeCached(k, v)
		if err != nil {
			return nil, err
		}
		out = append(out, Entry{Key: k, Envelope: env})
	}
	return out, nil
}
