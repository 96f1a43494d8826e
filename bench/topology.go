package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/weftstream/weft/kafkaclient"
	"github.com/weftstream/weft/processors"
	"github.com/weftstream/weft/topofile"
	"github.com/weftstream/weft/topology"
)

// pollEvery is how often a run checks whether every record is handled.
const pollEvery = 5 * time.Millisecond

var (
	bankAppLine   = regexp.MustCompile(`(?m)^app:[ \t]*[A-Za-z0-9._-]+`)
	bankTopicLine = regexp.MustCompile(`\btopic:[ \t]*bank-events\b`)
)

// loadBankYAML loads the bank topology file (testdata/cqrs/bank.yaml) with
// its app name and its input topic replaced, so that every run has its own
// consumer group, table and dead-letter topic.
func loadBankYAML(path, app, input string) (*topology.Topology, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	data = bankAppLine.ReplaceAllLiteral(data, []byte("app: "+app))
	data = bankTopicLine.ReplaceAllLiteral(data, []byte("topic: "+input))
	f, err := topofile.Load(filepath.Base(path), data)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	if f.App != app || len(f.Streams) != 1 || f.Streams[0].Topic != input {
		return nil, fmt.Errorf("%s: app %q, streams %+v; the names were not rewritten to %s / %s", path, f.App, f.Streams, app, input)
	}
	return f.Topology, nil
}

// topoResult is what one run of a compiled topology left behind.
type topoResult struct {
	elapsed  time.Duration // processor creation to RunAll returned
	cpu      time.Duration // CPU time of the whole process meanwhile
	startup  time.Duration // processor creation to first handled record
	stopping time.Duration // all records handled to RunAll returned
	// The records' lookups of their key in the record caches.
	cacheHits, cacheMisses int64
}

// runTopology runs the groups of a compiled topology, as `weft run` does
// (processors.NewProcessor per group with its options, RunAll), until they
// every group handled events records, then stops them. Every record must
// be processed: a rejected or replayed one is an error.
func runTopology(ctx context.Context, kcfg kafkaclient.Config, c *topology.Compiled, events int, stateDir string, timeout time.Duration) (topoResult, error) {
	// The least any group handled: every group (a windowed count has
	// two, the second reading the first's repartition topic) gets each
	// record once.
	handled := func() int64 {
		least := int64(-1)
		for _, g := range c.Groups {
			t := g.Runtime.Tally()
			if n := t.Processed() + t.Rejected() + t.Replayed(); least < 0 || n < least {
				least = n
			}
		}
		return max(least, 0)
	}
	start, cpuStart := time.Now(), processCPU()
	procs := make([]*processors.Processor, 0, len(c.Groups))
	for _, g := range c.Groups {
		opts := append([]processors.Option{processors.WithKafka(kcfg), processors.WithStateDir(stateDir)}, g.Options()...)
		p, err := processors.NewProcessor(ctx, g.Graph, opts...)
		if err != nil {
			return topoResult{}, fmt.Errorf("create processor of group %s: %w", g.Name, err)
		}
		procs = append(procs, p)
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- processors.RunAll(runCtx, procs...) }()

	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	var firstAt time.Time
	for handled() < int64(events) {
		select {
		case err := <-done:
			return topoResult{}, fmt.Errorf("processors stopped after %d of %d records: %w", handled(), events, err)
		case <-deadline.C:
			stop()
			<-done
			return topoResult{}, fmt.Errorf("handled %d of %d records in %v", handled(), events, timeout)
		case <-tick.C:
			if firstAt.IsZero() && handled() > 0 {
				firstAt = time.Now()
			}
		}
	}
	allHandled := time.Now()
	stop()
	if err := <-done; err != nil {
		return topoResult{}, fmt.Errorf("stop processors: %w", err)
	}
	elapsed, cpu := time.Since(start), processCPU()-cpuStart
	for _, g := range c.Groups {
		t := g.Runtime.Tally()
		if t.Rejected() != 0 || t.Replayed() != 0 || t.Processed() != int64(events) {
			return topoResult{}, fmt.Errorf("group %s: %d processed, %d rejected %v, %d replayed; want %d processed",
				g.Name, t.Processed(), t.Rejected(), t.RejectedByReason(), t.Replayed(), events)
		}
	}
	if firstAt.IsZero() {
		firstAt = allHandled
	}
	res := topoResult{elapsed: elapsed, cpu: cpu, startup: firstAt.Sub(start), stopping: time.Since(allHandled)}
	for _, p := range procs {
		h, m := p.CacheLookups()
		res.cacheHits += h
		res.cacheMisses += m
	}
	return res, nil
}
