package replay_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/weftstream/weft/internal/kafkatest"
	"github.com/weftstream/weft/processors"
	"github.com/weftstream/weft/replay"
	"github.com/weftstream/weft/topology"
)

// BenchmarkReplay measures a rebuild of N input records (WEFT_REPLAY_BENCH_N,
// default 200000) against a raw franz-go consume of the same topic on the
// same broker in the same run, and reports both rates and their ratio;
// then live processing of the same records, unless WEFT_REPLAY_BENCH_LIVE=0
// (for a CPU profile of the replay alone). WEFT_REPLAY_BENCH_CPUPROFILE=file
// writes a CPU profile of the replay job alone (Execute, not the produce
// nor the raw consume) to file.
//
//	go test ./replay/ -run '^$' -bench Replay -benchtime 1x
func BenchmarkReplay(b *testing.B) {
	n := 200000
	if s := os.Getenv("WEFT_REPLAY_BENCH_N"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n <= 0 {
			b.Fatalf("WEFT_REPLAY_BENCH_N=%q: give a positive number", s)
		}
	}
	f := newFixture(b)
	start := time.Now()
	for done := 0; done < n; done += 10000 {
		f.produce(min(10000, n-done), time.Now())
	}
	b.Logf("produced %d records in %s", n, time.Since(start).Round(time.Millisecond))
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		rawStart := time.Now()
		if got := rawConsume(b, f.opts, f.topic, int64(n)); got != int64(n) {
			b.Fatalf("raw consume read %d records, want %d", got, n)
		}
		raw := time.Since(rawStart)
		b.StartTimer()

		p, err := replay.MakePlan(b.Context(), f.adm, replay.Spec{File: f.file, Into: fmt.Sprintf("%s-bench%d", f.app, i), Pipelines: []string{"totals"}})
		if err != nil {
			b.Fatal(err)
		}
		stopProfile := startCPUProfile(b, os.Getenv("WEFT_REPLAY_BENCH_CPUPROFILE"))
		repStart := time.Now()
		// When the groups' committed offsets first moved and when they
		// reached the end: the job's start-up (group join, table
		// recovery) and its tail (the last commit, stopping) are the rest.
		var firstCommit, allCommitted time.Duration
		progress := func(done, total int64) {
			if done > 0 && firstCommit == 0 {
				firstCommit = time.Since(repStart)
			}
			if done >= total && allCommitted == 0 {
				allCommitted = time.Since(repStart)
			}
		}
		s, err := replay.Execute(b.Context(), f.adm, p, replay.Options{Kafka: f.kafka, StateDir: b.TempDir(), PollInterval: 100 * time.Millisecond,
			Progress: progress})
		if err != nil {
			b.Fatal(err)
		}
		rep := time.Since(repStart)
		stopProfile()
		b.Logf("replay: first committed progress after %s, all committed after %s, done after %s",
			firstCommit.Round(time.Millisecond), allCommitted.Round(time.Millisecond), rep.Round(time.Millisecond))
		if s.Records != int64(n) {
			b.Fatalf("replay read %d records, want %d", s.Records, n)
		}
		b.StopTimer()
		rawRate, repRate := float64(n)/raw.Seconds(), float64(n)/rep.Seconds()
		b.ReportMetric(rawRate, "raw-records/s")
		b.ReportMetric(repRate, "replay-records/s")
		b.ReportMetric(repRate/rawRate, "ratio")
		if os.Getenv("WEFT_REPLAY_BENCH_LIVE") == "0" {
			b.Logf("N=%d: raw consume %s (%.0f records/s), replay %s (%.0f records/s); replay/raw %.3f",
				n, raw.Round(time.Millisecond), rawRate, rep.Round(time.Millisecond), repRate, repRate/rawRate)
			b.StartTimer()
			continue
		}
		live := liveRun(b, f, fmt.Sprintf("%s-live%d", f.app, i), int64(n))
		b.StartTimer()
		liveRate := float64(n) / live.Seconds()
		b.ReportMetric(liveRate, "live-records/s")
		b.Logf("N=%d: raw consume %s (%.0f records/s), replay %s (%.0f records/s), live processing of the same records %s (%.0f records/s); replay/raw %.3f, replay/live %.2f",
			n, raw.Round(time.Millisecond), rawRate, rep.Round(time.Millisecond), repRate, live.Round(time.Millisecond), liveRate,
			repRate/rawRate, repRate/liveRate)
	}
}

// startCPUProfile starts a CPU profile into path ("": none) and returns
// what stops it.
func startCPUProfile(b *testing.B, path string) (stop func()) {
	if path == "" {
		return func() {}
	}
	fh, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(fh); err != nil {
		b.Fatalf("WEFT_REPLAY_BENCH_CPUPROFILE: %v (is -cpuprofile given too?)", err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := fh.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// rawConsume reads topic from its start until n records, without a group.
func rawConsume(b *testing.B, opts []kgo.Opt, topic string, n int64) int64 {
	cl, err := kgo.NewClient(append(opts, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(b.Context(), 5*time.Minute)
	defer cancel()
	var got int64
	for got < n && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(*kgo.Record) { got++ })
	}
	return got
}

// liveRun runs the totals pipeline as weft run does, as application app,
// from the start of the topic until its group has committed all n records,
// and returns how long that took.
func liveRun(b *testing.B, f *fixture, app string, n int64) time.Duration {
	top := *f.file.Topology
	top.App = app
	c, err := topology.Compile(&top, topology.WithProcessorOptions(processors.WithKafka(f.kafka)))
	if err != nil {
		b.Fatal(err)
	}
	var groups []*topology.Group
	for _, g := range c.Groups {
		if string(g.Name) == app+"-totals" {
			groups = append(groups, g)
		}
	}
	start := time.Now()
	procs, err := topology.NewProcessors(b.Context(), slog.New(slog.DiscardHandler), f.kafka, b.TempDir(), groups)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(b.Context())
	done := make(chan error, 1)
	go func() { done <- processors.RunAll(ctx, procs...) }()
	kafkatest.WaitFor(b, 5*time.Minute, "the live group to commit every record", func() bool {
		o, err := f.adm.FetchOffsets(b.Context(), app+"-totals")
		if err != nil {
			return false
		}
		var sum int64
		o.Each(func(r kadm.OffsetResponse) { sum += max(r.At, 0) })
		return sum >= n
	})
	took := time.Since(start)
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	return took
}
