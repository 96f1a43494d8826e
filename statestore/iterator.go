package statestore

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"github.com/cockroachdb/pebble/v2"
	"github.com/lovoo/goka/storage"
)

// Iterator returns an iterator over all keys in key order. It sees the
// committed data as of its creation plus the writes pending at that moment.
func (s *Store) Iterator() (storage.Iterator, error) {
	return s.IteratorWithRange(nil, nil)
}

// IteratorWithRange returns an iterator over the keys in [start, limit) in
// key order. As in goka's LevelDB store, an empty limit means all keys that
// start with start (and both empty means all keys).
func (s *Store) IteratorWithRange(start, limit []byte) (storage.Iterator, error) {
	lower := append([]byte{dataPrefix}, start...)
	var upper []byte
	switch {
	case len(limit) > 0:
		upper = append([]byte{dataPrefix}, limit...)
	case len(start) > 0:
		upper = prefixEnd(lower)
	default:
		upper = []byte{dataEnd}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return nil, ErrClosed
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, fmt.Errorf("iterate %s: %w", s.dir, err)
	}
	var over []pendingWrite
	lo, hi := string(lower[1:]), string(upper[1:])
	for k, e := range s.overlay {
		if k >= lo && (k < hi || upper[0] == dataEnd) {
			over = append(over, pendingWrite{key: k, value: e.value})
		}
	}
	slices.SortFunc(over, func(a, b pendingWrite) int { return strings.Compare(a.key, b.key) })
	return &iterator{it: it, over: over}, nil
}

// prefixEnd returns the smallest key greater than every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] != 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return []byte{dataEnd}
}

// iterator merges a Pebble iterator with a sorted snapshot of pending
// writes; a pending write shadows the committed value of its key, and a
// pending delete hides it.
type iterator struct {
	it       *pebble.Iterator
	itValid  bool
	over     []pendingWrite
	oi       int
	started  bool
	fromOver bool // the current entry comes from over
	key      []byte
	value    []byte
	valid    bool
	err      error
}

var _ storage.Iterator = (*iterator)(nil)

// Next moves to the next key and reports whether there is one.
func (i *iterator) Next() bool {
	if i.err != nil {
		return false
	}
	switch {
	case !i.started:
		i.started = true
		i.itValid = i.it.First()
	case !i.valid:
		return false
	case i.fromOver:
		i.oi++
	default:
		i.itValid = i.it.Next()
	}
	return i.settle()
}

// Seek moves to the first key at or after key and reports whether there is
// one.
func (i *iterator) Seek(key []byte) bool {
	if i.err != nil {
		return false
	}
	i.started = true
	i.itValid = i.it.SeekGE(append([]byte{dataPrefix}, key...))
	i.oi, _ = slices.BinarySearchFunc(i.over, string(key), func(w pendingWrite, k string) int {
		return strings.Compare(w.key, k)
	})
	return i.settle()
}

func (i *iterator) settle() bool {
	for {
		hasOver := i.oi < len(i.over)
		if !i.itValid && !hasOver {
			i.valid, i.key, i.value = false, nil, nil
			return false
		}
		var committed []byte
		if i.itValid {
			committed = i.it.Key()[1:]
		}
		if hasOver {
			w := &i.over[i.oi]
			cmp := -1
			if i.itValid {
				cmp = strings.Compare(w.key, string(committed))
			}
			if cmp <= 0 {
				if cmp == 0 {
					i.itValid = i.it.Next() // shadowed by the pending write
				}
				if w.value == nil {
					i.oi++
					continue
				}
				i.fromOver, i.valid = true, true
				i.key, i.value = []byte(w.key), w.value
				return true
			}
		}
		v, err := i.it.ValueAndErr()
		if err != nil {
			i.err = fmt.Errorf("read value of %q: %w", committed, err)
			i.valid = false
			return false
		}
		i.fromOver, i.valid = false, true
		i.key, i.value = committed, v
		return true
	}
}

// Key returns the current key; it is valid until the next move.
func (i *iterator) Key() []byte {
	if !i.valid {
		return nil
	}
	return i.key
}

// Value returns the current value; it is valid until the next move.
func (i *iterator) Value() ([]byte, error) {
	if !i.valid {
		return nil, nil
	}
	return i.value, nil
}

// Err returns the first error the iterator met.
func (i *iterator) Err() error {
	if i.err != nil || i.it == nil {
		return i.err
	}
	return i.it.Error()
}

// Release frees the iterator.
func (i *iterator) Release() {
	if i.it != nil {
		_ = i.it.Close()
		i.it = nil
	}
	i.valid, i.itValid, i.oi = false, false, len(i.over)
}
