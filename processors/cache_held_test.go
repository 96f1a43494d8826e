package processors

import (
	"testing"
	"time"
)

// TestCacheHoldBoundsHeldRecords: past heldFlushAt held records the cache
// asks for a flush, past maxHeld a record waits until a flush releases
// records, and a stopped partition or cache lets it go without a release.
func TestCacheHoldBoundsHeldRecords(t *testing.T) {
	c := newRecordCache("t", nil, nil, nil, nil, nil, DefaultCacheMaxBytes, time.Second)
	c.stop = make(chan struct{})
	done := make(chan struct{})
	p := &cachePart{done: done}
	nop := func(error) {}
	for range heldFlushAt - 1 {
		c.hold(p, nop)
	}
	if len(c.wake) != 0 {
		t.Fatalf("a flush was asked for at %d held records, before %d", heldFlushAt-1, heldFlushAt)
	}
	c.hold(p, nop)
	if len(c.wake) != 1 {
		t.Fatalf("no flush asked for at %d held records", heldFlushAt)
	}
	<-c.wake
	for range maxHeld - heldFlushAt {
		c.hold(p, nop) // up to maxHeld, none waits
	}
	drainPokes(c) // those of the records above, so that the next is the waiter's

	// One more waits for a release; the flush it asks for is the sign
	// that it got there.
	returned := make(chan struct{})
	go func() {
		c.hold(p, nop)
		close(returned)
	}()
	waitPoke(t, c)
	select {
	case <-returned:
		t.Fatalf("hold returned with %d records held, more than %d", c.held.Load(), maxHeld)
	default:
	}
	// A flush releases what it took: the waiter's record too, which was
	// held before it asked for the flush.
	p.mu.Lock()
	taken := len(p.commits)
	p.commits = nil
	p.mu.Unlock()
	if taken != maxHeld+1 {
		t.Fatalf("%d commits held; want %d", taken, maxHeld+1)
	}
	c.release(taken)
	waitClosed(t, returned, "hold after the release")
	if got := c.held.Load(); got != 0 {
		t.Fatalf("%d held after the release of %d; want 0", got, taken)
	}

	// Over the bound again; the partition's stop lets the waiter go, its
	// record still held (never released early).
	for c.held.Load() < maxHeld {
		c.hold(p, nop)
	}
	drainPokes(c)
	returned = make(chan struct{})
	go func() {
		c.hold(p, nop)
		close(returned)
	}()
	waitPoke(t, c)
	close(done)
	waitClosed(t, returned, "hold after the partition stopped")
	if got := c.held.Load(); got != maxHeld+1 {
		t.Fatalf("%d held; want %d", got, maxHeld+1)
	}

	// And the cache's stop.
	p2 := &cachePart{done: make(chan struct{})}
	drainPokes(c)
	returned = make(chan struct{})
	go func() {
		c.hold(p2, nop)
		close(returned)
	}()
	waitPoke(t, c)
	close(c.stop)
	waitClosed(t, returned, "hold after the cache stopped")
}

// drainPokes takes a flush request that is pending, if any.
func drainPokes(c *recordCache) {
	select {
	case <-c.wake:
	default:
	}
}

func waitPoke(t *testing.T, c *recordCache) {
	t.Helper()
	select {
	case <-c.wake:
	case <-time.After(10 * time.Second):
		t.Fatal("no flush asked for by a record over the bound")
	}
}

func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: still waiting after 10 s", what)
	}
}
