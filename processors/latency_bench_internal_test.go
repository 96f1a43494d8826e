//go:build unix

package processors

import (
	"syscall"
	"testing"
	"time"
)

// BenchmarkLatencyObserve measures what Handle adds per record for the
// processing duration: two clock reads and the observation, alone and
// from every core at once. cpu-ns/op is the process's CPU time per
// observation, which (unlike ns/op, a wall time) a loaded machine does not
// inflate.
//
//	go test -run '^$' -bench LatencyObserve -benchmem ./processors/
func BenchmarkLatencyObserve(b *testing.B) {
	b.Run("serial", func(b *testing.B) {
		var l Latency
		b.ReportAllocs()
		cpu0 := rusageCPU()
		for b.Loop() {
			start := latencyClock()
			l.observe(latencyClock() - start)
		}
		b.ReportMetric(float64(rusageCPU()-cpu0)/float64(b.N), "cpu-ns/op")
	})
	b.Run("parallel", func(b *testing.B) {
		var l Latency
		b.ReportAllocs()
		cpu0 := rusageCPU()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				start := latencyClock()
				l.observe(latencyClock() - start)
			}
		})
		b.ReportMetric(float64(rusageCPU()-cpu0)/float64(b.N), "cpu-ns/op")
	})
}

// rusageCPU is the process's user and system CPU time so far.
func rusageCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
