package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/lovoo/goka/storage"

	"github.com/weftstream/weft/internal/kafkatest"
	"github.com/weftstream/weft/kafkaclient"
	"github.com/weftstream/weft/processors"
)

// Benchmark parameters. The event count can be lowered for a smoke run with
// the environment variable WEFT_BENCH_EVENTS.
const (
	envEvents      = "WEFT_BENCH_EVENTS"
	defaultEvents  = 500_000
	benchKeys      = 10_000
	benchParts     = 8
	benchSeed      = 42
	processTimeout = 10 * time.Minute // per engine; a hang fails instead of blocking CI forever
)

// engine is one state store under comparison. opts returns the processor
// options that select it, given a fresh state directory.
type engine struct {
	name string
	opts func(stateDir string) []processors.Option
}

var (
	countingWeft = engine{
		name: "weft-pebble",
		// processors.NewProcessor's default store: statestore (Pebble).
		opts: func(dir string) []processors.Option { return []processors.Option{processors.WithStateDir(dir)} },
	}
	countingGoka = engine{
		name: "goka-leveldb",
		// goka's default LevelDB store; a storage builder in the goka options
		// overrides the Pebble one processors.NewProcessor installs.
		opts: func(dir string) []processors.Option {
			return []processors.Option{
				processors.WithStateDir(dir),
				processors.WithGokaOptions(goka.WithStorageBuilder(storage.DefaultBuilder(filepath.Join(dir, "leveldb")))),
			}
		},
	}
)

// BenchmarkCounting runs the same goka counting processor end to end on the
// embedded broker (or on WEFT_KAFKA_BROKERS), once on weft's Pebble store and
// once on goka's LevelDB store, within each b.N iteration:
//
//   - input: WEFT_BENCH_EVENTS events (default 500,000) over 10,000 keys
//     (random, seeded, so per-key counts vary) in one 8-partition topic,
//     produced once before the timer starts; both engines read it from the
//     earliest offset with their own consumer group;
//   - processor: ctx.SetValue(count+1) with an int64 codec into a
//     goka.Persist group table;
//   - timed: from processor creation until every event has gone through the
//     callback AND the processor has been stopped (context cancel) and Run has
//     returned, i.e. every table write was acknowledged by the changelog and
//     the stores are closed;
//   - not timed: verification through a view of each engine's table
//     (processors.StartView, which rebuilds the table from the changelog): the
//     sum of the counts is the number of events and every key's count is the
//     number of events produced for it.
//
// Reported metrics: weft-ev/s, goka-ev/s, x-weft/goka (the speed-up), and a
// log line "counting N events: weft ..., goka ..., speed-up ...x"; also the
// CPU time of the whole process per event, weft-cpu-µs/ev and goka-cpu-µs/ev,
// which unlike the wall clock does not depend on other load on the machine.
// The engines take turns in going first across iterations (goka first in
// iteration 0), so with -benchtime=1x goka runs on the emptier broker.
//
//	go test -run XXX -bench Counting -benchtime=1x -count=3 ./bench/
//	WEFT_BENCH_EVENTS=20000 go test -run XXX -bench . -benchtime=1x ./bench/
func BenchmarkCounting(b *testing.B) {
	events := eventCount(b)
	brokers := kafkatest.Brokers(b)
	kcfg := kafkaclient.Config{Brokers: brokers}

	input := kafkatest.Topic(b, "bench-count-in")
	kafkatest.CreateTopic(b, brokers, input, benchParts)
	var want map[string]int64
	pprof.Do(context.Background(), pprof.Labels("phase", "produce"), func(context.Context) {
		want = produceInput(b, kcfg, input, events)
	})

	var weftTotal, gokaTotal, weftCPU, gokaCPU time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		order := []engine{countingGoka, countingWeft}
		if i%2 == 1 {
			order[0], order[1] = order[1], order[0]
		}
		for _, e := range order {
			b.StopTimer()
			runtime.GC() // do not bill one engine for the other's garbage
			b.StartTimer()
			var res countResult
			// The label lets a CPU profile (-cpuprofile) be split by engine:
			// go tool pprof -tagfocus engine=weft-pebble ...; goroutines the
			// processor starts inherit it, the broker's do not.
			pprof.Do(context.Background(), pprof.Labels("engine", e.name), func(context.Context) {
				res = runCounting(b, kcfg, e, input, events)
			})
			b.StopTimer()
			pprof.Do(context.Background(), pprof.Labels("phase", "verify"), func(context.Context) {
				verify(b, kcfg, res, want, events)
			})
			b.StartTimer()
			b.Logf("%s: %d events in %v = %.0f ev/s (start to first event %v, stop after last event %v; process CPU %v = %.2f µs/event)",
				e.name, events, res.elapsed.Round(time.Millisecond), rate(events, res.elapsed),
				res.startup.Round(time.Millisecond), res.stopping.Round(time.Millisecond),
				res.cpu.Round(time.Millisecond), perEvent(res.cpu, events))
			if e.name == countingWeft.name {
				weftTotal += res.elapsed
				weftCPU += res.cpu
			} else {
				gokaTotal += res.elapsed
				gokaCPU += res.cpu
			}
		}
	}
	b.StopTimer()

	n := b.N
	weftRate := rate(events*n, weftTotal)
	gokaRate := rate(events*n, gokaTotal)
	b.ReportMetric(weftRate, "weft-ev/s")
	b.ReportMetric(gokaRate, "goka-ev/s")
	b.ReportMetric(weftRate/gokaRate, "x-weft/goka")
	b.Logf("counting %d events: weft %.0fk ev/s, goka %.0fk ev/s, speed-up %.2fx",
		events, weftRate/1000, gokaRate/1000, weftRate/gokaRate)
	if weftCPU > 0 && gokaCPU > 0 {
		// CPU cost does not depend on what else runs on the machine, so it
		// is the steadier comparison on a busy (e.g. CI) machine.
		b.ReportMetric(perEvent(weftCPU, events*n), "weft-cpu-µs/ev")
		b.ReportMetric(perEvent(gokaCPU, events*n), "goka-cpu-µs/ev")
		b.Logf("CPU per event (whole process, broker included): weft %.2f µs, goka %.2f µs, goka/weft %.2fx",
			perEvent(weftCPU, events*n), perEvent(gokaCPU, events*n), gokaCPU.Seconds()/weftCPU.Seconds())
	}
}

func perEvent(d time.Duration, events int) float64 {
	return float64(d.Microseconds()) / float64(events)
}

func eventCount(b *testing.B) int {
	s := os.Getenv(envEvents)
	if s == "" {
		return defaultEvents
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q is not a positive number of events", envEvents, s)
	}
	return n
}

func rate(events int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(events) / d.Seconds()
}

// produceInput writes events records over benchKeys keys (countInput) to
// topic and returns how many records each key got.
func produceInput(b *testing.B, kcfg kafkaclient.Config, topic string, events int) map[string]int64 {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), processTimeout)
	defer cancel()
	records, want := countInput(events, benchKeys)
	start := time.Now()
	if err := produce(ctx, kcfg, topic, records, nil); err != nil {
		b.Fatal(err)
	}
	b.Logf("produced %d events over %d keys to %s in %v", events, len(want), topic, time.Since(start).Round(time.Millisecond))
	return want
}

// countResult is what one engine's run left behind for verification.
type countResult struct {
	engine   engine
	group    goka.Group
	stateDir string
	elapsed  time.Duration // processor creation to Run returned
	startup  time.Duration // processor creation to first callback
	cpu      time.Duration // CPU time of the whole process meanwhile
	stopping time.Duration // all events seen by the callback to Run returned
}

// runCounting runs the counting processor of engine e over input until all
// events are processed and the processor has stopped cleanly.
func runCounting(b *testing.B, kcfg kafkaclient.Config, e engine, input string, events int) countResult {
	b.Helper()
	group := goka.Group(kafkatest.Group(b, "bench-count-"+e.name))
	stateDir := b.TempDir()
	var processed atomic.Int64
	var firstAt atomic.Int64 // unix nanos of the first callback

	graph := goka.DefineGroup(group,
		goka.Input(goka.Stream(input), new(codec.Bytes), func(ctx goka.Context, _ any) {
			var n int64
			if v := ctx.Value(); v != nil {
				n = v.(int64)
			}
			ctx.SetValue(n + 1)
			if processed.Add(1) == 1 {
				firstAt.Store(time.Now().UnixNano())
			}
		}),
		goka.Persist(new(codec.Int64)),
	)

	start, cpuStart := time.Now(), processCPU()
	p, err := processors.NewProcessor(context.Background(), graph,
		append([]processors.Option{processors.WithKafka(kcfg)}, e.opts(stateDir)...)...)
	if err != nil {
		b.Fatalf("%s: %v", e.name, err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	defer stop()
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }()

	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	deadline := time.NewTimer(processTimeout)
	defer deadline.Stop()
	for processed.Load() < int64(events) {
		select {
		case err := <-done:
			b.Fatalf("%s: processor stopped after %d of %d events: %v", e.name, processed.Load(), events, err)
		case <-deadline.C:
			stop()
			<-done
			b.Fatalf("%s: processed %d of %d events in %v", e.name, processed.Load(), events, processTimeout)
		case <-tick.C:
		}
	}
	allProcessed := time.Now()
	stop()
	if err := <-done; err != nil {
		b.Fatalf("%s: stop processor: %v", e.name, err)
	}
	elapsed, cpu := time.Since(start), processCPU()-cpuStart
	if got := processed.Load(); got != int64(events) {
		// More callbacks than events means records were processed twice
		// (e.g. a rebalance); the counts would be off too.
		b.Fatalf("%s: %d callbacks for %d events", e.name, got, events)
	}
	return countResult{
		engine:   e,
		group:    group,
		stateDir: stateDir,
		elapsed:  elapsed,
		startup:  time.Unix(0, firstAt.Load()).Sub(start),
		cpu:      cpu,
		stopping: time.Since(allProcessed),
	}
}

// verify reads the engine's table back from its changelog, with a view on a
// fresh state directory, and checks every key's count and the total.
func verify(b *testing.B, kcfg kafkaclient.Config, res countResult, want map[string]int64, events int) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), processTimeout)
	defer cancel()
	v, err := processors.StartView(ctx, goka.GroupTable(res.group), new(codec.Int64),
		processors.WithKafka(kcfg), processors.WithStateDir(b.TempDir()))
	if err != nil {
		b.Fatalf("%s: verify: %v", res.engine.name, err)
	}
	defer func() {
		if err := v.Close(); err != nil {
			b.Errorf("%s: close view: %v", res.engine.name, err)
		}
	}()
	var sum int64
	var errs []error
	for k := range benchKeys {
		key := keyName(k)
		got, err := v.Get(key)
		if err != nil {
			b.Fatalf("%s: get %s: %v", res.engine.name, key, err)
		}
		var n int64
		if got != nil {
			n = got.(int64)
		}
		sum += n
		if n != want[key] && len(errs) < 10 {
			errs = append(errs, fmt.Errorf("key %s: count %d, produced %d", key, n, want[key]))
		}
	}
	if sum != int64(events) {
		errs = append(errs, fmt.Errorf("sum of counts %d, want %d", sum, events))
	}
	if len(errs) > 0 {
		b.Fatalf("%s: wrong table:\n%v", res.engine.name, errors.Join(errs...))
	}
}
