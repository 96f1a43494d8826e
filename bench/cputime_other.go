//go:build !unix

package main

import (
	"os"
	"time"
)

// processCPU is not measured on this platform; CPU metrics read 0.
func processCPU() time.Duration { return 0 }

// childCPU is not measured on this platform; CPU reads 0.
func childCPU(*os.ProcessState) time.Duration { return 0 }
