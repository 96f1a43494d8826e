//go:build unix

package main

import (
	"os"
	"syscall"
	"time"
)

// processCPU returns the CPU time (user + system) this process has used so
// far: every goroutine of it, an embedded broker's and the garbage
// collector's included, but not other processes on the machine.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// childUsage returns the CPU time (user + system, all its threads) and the
// peak resident set size in bytes of an exited child process.
func childUsage(ps *os.ProcessState) (cpu time.Duration, maxRSS int64) {
	ru, ok := ps.SysUsage().(*syscall.Rusage)
	if !ok || ru == nil {
		return 0, 0
	}
	// Linux reports ru_maxrss in KiB.
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), ru.Maxrss * 1024
}
