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

// childCPU returns the CPU time (user + system, all its threads) of an
// exited child process. (Its ru_maxrss is no peak RSS of its own: Linux
// hands a process that execs the high-water mark of the memory it had
// before, which for a child started with vfork is the parent's.)
func childCPU(ps *os.ProcessState) time.Duration {
	ru, ok := ps.SysUsage().(*syscall.Rusage)
	if !ok || ru == nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
