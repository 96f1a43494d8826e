//go:build unix

package processors_test

import (
	"context"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/weftstream/weft/internal/kafkatest"
	"github.com/weftstream/weft/kafkaclient"
	"github.com/weftstream/weft/processors"
)

// BenchmarkCachedCounting measures a traced counting group (processors.Handle,
// ctx.Value, ctx.SetValue of an int64; tracing off) end to end on the
// embedded broker (or WEFT_KAFKA_BROKERS), with the record cache on (the
// default: 10 MiB, 1s) and off. The input, WEFT_BENCH_EVENTS events
// (default 200,000) over 10,000 keys in 8 partitions, is produced once;
// each run reads it from the start with its own group, from the processor's
// creation until every record is handled and the processor has stopped
// (every write acknowledged). Not timed: every key's count is checked.
// Metrics: <mode>-cpu-µs/ev (process CPU, broker and GC included) and
// <mode>-ev/s.
//
//	go test -run XXX -bench CachedCounting -benchtime=1x ./processors/
//	go test -run XXX -bench CachedCounting/on -benchtime=1x -cpuprofile cpu.out ./processors/
func BenchmarkCachedCounting(b *testing.B) {
	events := 200_000
	if v, err := strconv.Atoi(os.Getenv("WEFT_BENCH_EVENTS")); err == nil && v > 0 {
		events = v
	}
	const keys, parts = 10_000, 8
	kcfg := kafkaclient.Config{Brokers: kafkatest.Brokers(b), Partitions: parts}
	input := kafkatest.Topic(b, "cached-count")
	kafkatest.CreateTopic(b, kcfg.Brokers, input, parts)
	em, err := processors.NewEmitter(b.Context(), input, processors.WithKafka(kcfg))
	if err != nil {
		b.Fatal(err)
	}
	want := map[string]int64{}
	for i := range events {
		k := "key-" + strconv.Itoa(i%keys)
		want[k]++
		em.Emit(k, []byte("x"), nil)
	}
	if err := em.Close(); err != nil {
		b.Fatal(err)
	}
	for _, m := range []struct {
		name string
		opt  processors.Option
	}{
		{"on", processors.WithRecordCache(processors.DefaultCacheMaxBytes, processors.DefaultCommitInterval)},
		{"off", processors.WithRecordCache(0, 0)},
	} {
		b.Run(m.name, func(b *testing.B) {
			var cpu, wall time.Duration
			for b.Loop() {
				rt := processors.NewRuntime()
				group := kafkatest.Group(b, "cached-count-"+m.name)
				start, cpu0 := time.Now(), processCPU()
				p, err := processors.NewProcessor(context.Background(), countGraph(rt, group, input), processors.WithKafka(kcfg),
					processors.WithStateDir(b.TempDir()), processors.WithRuntime(rt), m.opt)
				if err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error, 1)
				go func() { done <- p.Run(ctx) }()
				tl := rt.Tally()
				kafkatest.WaitFor(b, 10*time.Minute, "every record handled", func() bool {
					return tl.Processed()+tl.Replayed()+tl.Rejected() >= int64(events)
				})
				b.StopTimer()
				pause, cpuPause := time.Now(), processCPU()
				if err := p.Flush(); err != nil {
					b.Fatal(err)
				}
				for k, n := range want {
					v, err := p.Goka().Get(k)
					if st, ok := v.(*processors.Stored); err != nil || !ok || st.Value.(int64) != n {
						b.Fatalf("%s = %v (%v), want %d", k, v, err, n)
					}
				}
				start, cpu0 = start.Add(time.Since(pause)), cpu0+processCPU()-cpuPause
				b.StartTimer()
				cancel()
				if err := <-done; err != nil {
					b.Fatal(err)
				}
				wall += time.Since(start)
				cpu += processCPU() - cpu0
			}
			n := float64(b.N) * float64(events)
			b.ReportMetric(float64(cpu.Microseconds())/n, m.name+"-cpu-µs/ev")
			b.ReportMetric(n/wall.Seconds(), m.name+"-ev/s")
		})
	}
}

func countGraph(rt *processors.Runtime, group, input string) *goka.GroupGraph {
	return processors.DefineGroup(rt, goka.Group(group),
		goka.Input(goka.Stream(input), new(codec.Bytes), processors.Handle(rt, identity, func(ctx goka.Context, _ []byte) error {
			n, _ := ctx.Value().(int64)
			ctx.SetValue(n + 1)
			return nil
		})),
		processors.Persist(new(codec.Int64)),
	)
}

// processCPU returns the CPU time (user + system) of the test process.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
