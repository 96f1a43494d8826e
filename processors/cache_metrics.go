package processors

// CacheBytes returns the estimated bytes the record cache of the group
// table holds (0 without a record cache): what its budget
// (WithRecordCache) bounds.
func (p *Processor) CacheBytes() int64 {
	if p.cache == nil {
		return 0
	}
	return p.cache.bytes.Load()
}

// CacheEntries returns how many keys the record cache holds (0 without
// one). It takes each partition's lock briefly: call it when metrics are
// scraped, not per record.
func (p *Processor) CacheEntries() int64 {
	c := p.cache
	if c == nil {
		return 0
	}
	c.mu.Lock()
	parts := mapValues(c.parts)
	c.mu.Unlock()
	var n int64
	for _, part := range parts {
		part.mu.Lock()
		n += int64(len(part.entries))
		part.mu.Unlock()
	}
	return n
}

// CacheLookups returns how many records found their key in the record
// cache (hits) and how many had to read it from the store (misses), since
// the processor started (0, 0 without a cache): the hit rate is
// hits / (hits + misses). Call it when metrics are scraped.
func (p *Processor) CacheLookups() (hits, misses int64) {
	c := p.cache
	if c == nil {
		return 0, 0
	}
	hits, misses = c.pastHits.Load(), c.pastMisses.Load()
	c.mu.Lock()
	parts := append(mapValues(c.parts), c.retired...)
	c.mu.Unlock()
	for _, part := range parts {
		part.mu.Lock()
		hits, misses = hits+part.hits, misses+part.misses
		part.mu.Unlock()
	}
	return hits, misses
}
