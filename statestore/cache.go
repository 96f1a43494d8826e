package statestore

import (
	"github.com/cockroachdb/pebble/v2"
)

// pebbleCache is a Pebble block cache shared by the stores of one Builder.
// Pebble reference-counts caches: every open database holds a reference, and
// the owner holds one until it is done handing the cache out.
type pebbleCache struct {
	size  int64
	cache *pebble.Cache
	owned bool // created for a single Store, released with it
}

func newPebbleCache(size int64) *pebbleCache {
	return &pebbleCache{size: size, cache: pebble.NewCache(size)}
}

// acquire returns the cache with a reference for the caller.
func (c *pebbleCache) acquire() *pebble.Cache {
	c.cache.Ref()
	return c.cache
}

// release drops a reference taken by acquire.
func (c *pebbleCache) release(pc *pebble.Cache) { pc.Unref() }

// close drops the owner's reference; open databases keep theirs.
func (c *pebbleCache) close() { c.cache.Unref() }
