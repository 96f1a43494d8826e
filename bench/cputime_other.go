//go:build !unix

package main

import (
	"os"
	"time"
)

// processCPU is not measured on this platform; CPU metrics read 0.
func processCPU() time.Duration { return 0 }

// childUsage is not measured on this platform; CPU and RSS read 0.
func childUsage(*os.ProcessState) (time.Duration, int64) { return 0, 0 }
