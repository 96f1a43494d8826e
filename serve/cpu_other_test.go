//go:build !unix

package serve_test

import "time"

// processCPU is not measured here (0): cpu-µs/req and cpu-% read 0.
func processCPU() time.Duration { return 0 }
