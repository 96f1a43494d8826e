package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"
)

// envChild holds the JSON childSpec of an engine run: a process started
// with it runs that one engine and exits (runChild), instead of the harness.
const envChild = "WEFT_BENCH_CHILD"

// childSpec is what an engine process runs.
type childSpec struct {
	Engine   string   `json:"engine"`
	Workload string   `json:"workload"`
	Brokers  []string `json:"brokers"`
	Input    string   `json:"input"`
	Events   int      `json:"events"`
	App      string   `json:"app"` // consumer group / application name of the run
	StateDir string   `json:"state_dir"`
	BankYAML string   `json:"bank_yaml"`
	// Customers is the customer table topic of the join workload.
	Customers string `json:"customers,omitempty"`
	Timeout   string `json:"timeout"`
	// CPUProfile, when set, is the file the engine process writes its CPU
	// profile to (the whole run, start-up included).
	CPUProfile string `json:"cpu_profile,omitempty"`
}

// childResult is the last line an engine process prints on its stdout.
type childResult struct {
	Seen     int64  `json:"seen"`     // input records handled
	Rejected int64  `json:"rejected"` // of them rejected (dead-lettered); must be 0
	Bytes    int64  `json:"bytes"`    // raw-consume: key+value bytes read
	Table    string `json:"table"`    // the table's changelog topic
	Spans    int64  `json:"spans"`    // spans exported (traced weft)
	Links    int64  `json:"links"`    // links on them
	// Lookups of records' keys in weft's record cache, every group.
	CacheHits   int64  `json:"cache_hits,omitempty"`
	CacheMisses int64  `json:"cache_misses,omitempty"`
	RunNanos    int64  `json:"run_ns"`         // start until every record was handled
	StopNs      int64  `json:"stop_ns"`        // then until the engine had stopped cleanly
	PeakRSS     int64  `json:"peak_rss_bytes"` // the process's VmHWM when it was done
	Error       string `json:"error,omitempty"`
}

// childMain runs the engine of the spec in $WEFT_BENCH_CHILD, prints its
// result as one JSON line on stdout and returns the exit code.
func childMain(spec string, stdout io.Writer) int {
	var s childSpec
	if err := json.Unmarshal([]byte(spec), &s); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", envChild, err)
		return 2
	}
	timeout, err := time.ParseDuration(s.Timeout)
	if err != nil {
		timeout = 10 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout+time.Minute)
	defer cancel()
	stop, err := startCPUProfile(s.CPUProfile)
	if err != nil {
		fmt.Fprintf(os.Stderr, "cpu profile: %v\n", err)
		return 2
	}
	res, err := runEngine(ctx, s, timeout)
	stop()
	if err != nil {
		res.Error = err.Error()
	}
	res.PeakRSS = peakRSS()
	line, _ := json.Marshal(res)
	fmt.Fprintf(stdout, "%s\n", line)
	if err != nil {
		return 1
	}
	return 0
}

// runEngine runs one in-process engine over the input until it handled
// every record and stopped cleanly.
func runEngine(ctx context.Context, s childSpec, timeout time.Duration) (childResult, error) {
	switch s.Engine {
	case engineRaw:
		return runRawConsume(ctx, s, timeout)
	case engineGoka:
		return runGoka(ctx, s, timeout)
	case engineWeft, engineWeft1, engineWeft100:
		return runWeft(ctx, s, timeout)
	}
	return childResult{}, fmt.Errorf("engine %q does not run in a Go process", s.Engine)
}

// waitFor polls n until it reaches want, done reports an error, or the
// timeout passes.
func waitFor(n func() int64, want int64, done <-chan error, timeout time.Duration) error {
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for n() < want {
		select {
		case err := <-done:
			return fmt.Errorf("stopped after %d of %d records: %v", n(), want, err)
		case <-deadline.C:
			return fmt.Errorf("handled %d of %d records in %v", n(), want, timeout)
		case <-tick.C:
		}
	}
	return nil
}

// startCPUProfile starts writing a CPU profile to path (nothing when path is
// empty) and returns the function that stops it, closes the file and
// writes the run's allocation profile beside it (<name>.allocs.pprof).
func startCPUProfile(path string) (func(), error) {
	if path == "" {
		return func() {}, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("creating the profile directory: %w", err)
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("creating the profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting the profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
		// The allocations of the run beside it (go tool pprof -sample_index=alloc_space).
		if a, err := os.Create(strings.TrimSuffix(path, ".pprof") + ".allocs.pprof"); err == nil {
			_ = pprof.Lookup("allocs").WriteTo(a, 0)
			a.Close()
		}
	}, nil
}
