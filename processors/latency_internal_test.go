package processors

import (
	"sync"
	"testing"
	"time"
)

// Every duration lands in the first bucket whose bound is at least it
// (bounds written down: 1024 ns · 2^i), beyond the last in the extra one.
func TestLatencyBuckets(t *testing.T) {
	cases := []struct {
		d      time.Duration
		bucket int
	}{
		{-5, 0}, {0, 0}, {1, 0}, {1024, 0},
		{1025, 1}, {2048, 1},
		{2049, 2}, {4096, 2},
		{5 * time.Microsecond, 3},        // 4096 < 5000 <= 8192
		{time.Millisecond, 10},           // 524288 < 1e6 <= 1048576
		{1048577, 11},                    // just beyond 2^20
		{8589934592, LatencyBuckets - 1}, // 2^33, the last bound
		{8589934593, LatencyBuckets},     // beyond it
		{time.Hour, LatencyBuckets},
	}
	var l Latency
	want := make([]uint64, LatencyBuckets+1)
	var sum time.Duration
	for _, c := range cases {
		l.observe(c.d)
		want[c.bucket]++
		sum += max(c.d, 0)
	}
	s := l.Snapshot()
	if s.Count != uint64(len(cases)) || s.Sum != sum {
		t.Errorf("count %d, sum %v; want %d, %v", s.Count, s.Sum, len(cases), sum)
	}
	for i := range want {
		if s.Counts[i] != want[i] {
			t.Errorf("bucket %d: %d durations, want %d", i, s.Counts[i], want[i])
		}
	}
	if len(s.Bounds) != LatencyBuckets || s.Bounds[0] != 1024 || s.Bounds[3] != 8192 || s.Bounds[LatencyBuckets-1] != 8589934592 {
		t.Errorf("bounds %v", s.Bounds)
	}
	for i, b := range s.Bounds {
		// The bound of every bucket lands in it, and one nanosecond more in the next.
		var one Latency
		one.observe(b)
		one.observe(b + 1)
		if c := one.Snapshot().Counts; c[i] != 1 || c[i+1] != 1 {
			t.Errorf("bound %v: counts %v, want one in bucket %d and one in %d", b, c, i, i+1)
		}
	}
}

// Concurrent observers lose no count.
func TestLatencyConcurrent(t *testing.T) {
	var l Latency
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				l.observe(time.Duration(g*1000+i) * time.Microsecond)
			}
		})
	}
	wg.Wait()
	if s := l.Snapshot(); s.Count != 8000 {
		t.Errorf("count %d, want 8000", s.Count)
	}
}
