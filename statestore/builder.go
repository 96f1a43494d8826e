package statestore

import (
	"fmt"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/lovoo/goka/storage"
)

// Builder opens one Store per table partition under a base directory,
// sharing a block cache among them. Pass its Build method to
// goka.WithStorageBuilder or goka.WithViewStorageBuilder.
type Builder struct {
	dir   string
	opts  options
	cache *pebbleCache

	closeOnce sync.Once

	mu     sync.Mutex
	stores map[string]map[int32]*Store // latest store built per topic and partition
}

// NewBuilder returns a Builder that keeps partition p of topic t in
// dir/t/p. Call Close when the processors and views using it have stopped.
func NewBuilder(dir string, opts ...Option) *Builder {
	o := buildOptions(opts)
	return &Builder{dir: dir, opts: o, cache: newPebbleCache(o.cacheSize), stores: map[string]map[int32]*Store{}}
}

// Build returns the (unopened) Store for a table partition.
func (b *Builder) Build(topic string, partition int32) (storage.Storage, error) {
	if topic == "" || filepath.Base(topic) != topic || topic == "." || topic == ".." {
		return nil, fmt.Errorf("build store: topic name %q cannot be a directory name", topic)
	}
	dir := filepath.Join(b.dir, topic, strconv.Itoa(int(partition)))
	st := newStore(dir, b.opts, b.cache)
	st.topic, st.partition = topic, partition
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stores[topic] == nil {
		b.stores[topic] = map[int32]*Store{}
	}
	b.stores[topic][partition] = st
	return st, nil
}

// Stores returns the stores built for topic, one per partition (opened or
// closed), for reads beside goka such as Lineage.
func (b *Builder) Stores(topic string) []*Store {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]*Store, 0, len(b.stores[topic]))
	for _, st := range b.stores[topic] {
		out = append(out, st)
	}
	return out
}

// Store returns the store last built for a partition of topic, or nil.
func (b *Builder) Store(topic string, partition int32) *Store {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stores[topic][partition]
}

// Close releases the Builder's reference to the shared block cache.
func (b *Builder) Close() {
	b.closeOnce.Do(b.cache.close)
}
