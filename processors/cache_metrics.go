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
