package main

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/weftstream/weft/examples/bank"
	"github.com/weftstream/weft/internal/kafkatest"
	"github.com/weftstream/weft/kafkaclient"
	"github.com/weftstream/weft/processors"
)

// Parameters of BenchmarkTracingOverhead. The event count comes from
// WEFT_BENCH_EVENTS like BenchmarkCounting's, with a smaller default
// because every workload runs three times.
const (
	tracingDefaultEvents = 200_000
	// upstreamSampleRatio is the share of input records whose traceparent
	// says "sampled": the upstream producers sample 1% of their traces.
	upstreamSampleRatio = 0.01
	bankDataDir         = "../testdata/bank"
)

// tracingMode is one tracing configuration under comparison. sampler nil
// means the runtime's default provider (tracing.Unexported: a never-sample
// SDK provider, spans get ids but are not recorded).
type tracingMode struct {
	name    string // metric and pprof label: off, 100pct, 1pct
	title   string // for log lines
	sampler func() sdktrace.Sampler
}

var tracingModes = []tracingMode{
	{name: "off", title: "off"},
	{name: "100pct", title: "100%", sampler: sdktrace.AlwaysSample},
	{name: "1pct", title: "1%", sampler: func() sdktrace.Sampler {
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(upstreamSampleRatio))
	}},
}

// tracingInvocations rotates the order of the modes across invocations of
// the benchmark (-count=N), on top of the rotation across b.N iterations.
var tracingInvocations atomic.Int64

// tracingWorkload is one processor under test with its prepared input.
type tracingWorkload struct {
	name    string
	input   string
	events  int   // records in input
	sampled int64 // records whose traceparent has the sampled flag
	graph   func(input string, group goka.Group, rt *processors.Runtime) *goka.GroupGraph
	verify  func(b *testing.B, kcfg kafkaclient.Config, group goka.Group)
}

// BenchmarkTracingOverhead measures what weft's tracing costs, end to end on
// the embedded broker (or on WEFT_KAFKA_BROKERS), for two workloads run as
// sub-benchmarks, each with three tracing modes within every b.N iteration:
//
//   - workloads: "counting", a processor built with weft's traced runtime
//     (processors.Handle with an identity decoder, processors.Persist of an
//     int64, ctx.SetValue(count+1)) over WEFT_BENCH_EVENTS events (default
//     200,000) on 10,000 keys in 8 partitions; and "bank", the bank-account
//     projection (examples/bank.Graph) over testdata/bank/events.jsonl
//     repeated until it has at least as many events, every copy with its own
//     account ids (acc-0001-c00, ...), so that all events stay valid;
//   - modes: "off", processors.NewRuntime() without a tracer provider
//     (tracing.Unexported, spans have ids but are not recorded or exported);
//     "100pct", an SDK provider with AlwaysSample and a batch span processor
//     in front of an exporter that discards (and counts) the spans; "1pct",
//     the same with ParentBased(TraceIDRatioBased(0.01));
//   - input: produced once per workload, before the timer starts, and read
//     by every mode from the earliest offset with its own consumer group.
//     Every record carries a W3C traceparent with its own random trace id,
//     as if each event had been published by a traced upstream service; its
//     sampled flag is set for 1% of the records (by the trace id, the rule
//     of TraceIDRatioBased), i.e. the upstream services sample 1% and
//     propagate their decision. "100pct" ignores that flag and records
//     every span; "1pct", being parent based, follows it (exactly the
//     upstream-sampled records get recorded spans). Without a traceparent
//     the ratio sampler would pick ~1% of new root traces instead: the same
//     share of recorded spans;
//   - timed: from the creation of the tracer provider and the processor
//     until every record is handled (Tally: processed + rejected +
//     replayed), the processor is stopped (Run returned: every write
//     acknowledged, stores closed) and the tracer provider is shut down
//     (its last batch exported);
//   - not timed: verification of the table through a view rebuilt from the
//     changelog: every key's count and their sum (counting), every account
//     of every copy against testdata/bank/expected.jsonl (bank); no record
//     may be rejected or replayed.
//
// Metrics per workload: <mode>-ev/s and <mode>-cpu-µs/ev (CPU time of the
// whole process, broker and GC included, per event; unlike the wall clock
// it does not depend on other load on the machine), and for 100pct and
// 1pct the cost relative to off: <mode>-loss-% (throughput lost, wall
// clock) and <mode>-cpu-% (extra CPU per event). One summary line per
// workload gives the same figures and the throughput lost at equal CPU,
// 1 - cpu(off)/cpu(mode), against the targets (100%: at most 25% of the
// throughput, 1%: at most 5%).
//
// The modes take turns in going first across iterations and invocations.
// Processor goroutines carry the pprof labels workload and mode:
//
//	go test -run XXX -bench TracingOverhead -benchtime=1x -count=2 ./bench/
//	go test -run XXX -bench TracingOverhead/counting -benchtime=1x -cpuprofile cpu.out -o bench.test ./bench/
//	go tool pprof -top -nodecount=40 -tagfocus mode=100pct bench.test cpu.out
//	WEFT_BENCH_EVENTS=20000 go test -run XXX -bench TracingOverhead -benchtime=1x ./bench/
func BenchmarkTracingOverhead(b *testing.B) {
	b.Run("counting", func(b *testing.B) { benchTracing(b, prepareCountingWorkload) })
	b.Run("bank", func(b *testing.B) { benchTracing(b, prepareBankWorkload) })
}

type modeTotals struct {
	elapsed, cpu time.Duration
	spans, links int64
}

func benchTracing(b *testing.B, prepare func(*testing.B, kafkaclient.Config, int) tracingWorkload) {
	events := eventCountDefault(b, tracingDefaultEvents)
	kcfg := kafkaclient.Config{Brokers: kafkatest.Brokers(b)}
	var wl tracingWorkload
	pprof.Do(context.Background(), pprof.Labels("phase", "produce"), func(context.Context) {
		wl = prepare(b, kcfg, events)
	})

	totals := make([]modeTotals, len(tracingModes))
	invocation := int(tracingInvocations.Add(1) - 1)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		for j := range tracingModes {
			m := (i + invocation + j) % len(tracingModes)
			mode := tracingModes[m]
			b.StopTimer()
			runtime.GC() // do not bill one mode for the other's garbage
			b.StartTimer()
			var res tracedResult
			pprof.Do(context.Background(), pprof.Labels("workload", wl.name, "mode", mode.name), func(context.Context) {
				res = runTraced(b, kcfg, wl, mode)
			})
			b.StopTimer()
			pprof.Do(context.Background(), pprof.Labels("phase", "verify"), func(context.Context) {
				wl.verify(b, kcfg, res.group)
			})
			b.StartTimer()
			b.Logf("%s, tracing %s: %d events in %v = %.0f ev/s, stop after last event %v; process CPU %v = %.2f µs/event; spans exported %d, links %d",
				wl.name, mode.title, wl.events, res.elapsed.Round(time.Millisecond), rate(wl.events, res.elapsed),
				res.stopping.Round(time.Millisecond), res.cpu.Round(time.Millisecond), perEvent(res.cpu, wl.events),
				res.spans, res.links)
			if mode.sampler != nil && res.spans == 0 {
				b.Fatalf("%s, tracing %s: no span was exported", wl.name, mode.title)
			}
			t := &totals[m]
			t.elapsed += res.elapsed
			t.cpu += res.cpu
			t.spans += res.spans
			t.links += res.links
		}
	}
	b.StopTimer()
	reportTracing(b, wl, totals, b.N)
}

// reportTracing reports the metrics and the summary line of a workload.
func reportTracing(b *testing.B, wl tracingWorkload, totals []modeTotals, n int) {
	total := wl.events * n
	rates := make([]float64, len(totals))
	cpus := make([]float64, len(totals))
	for m, mode := range tracingModes {
		rates[m] = rate(total, totals[m].elapsed)
		cpus[m] = perEvent(totals[m].cpu, total)
		b.ReportMetric(rates[m], mode.name+"-ev/s")
		if cpus[m] > 0 {
			b.ReportMetric(cpus[m], mode.name+"-cpu-µs/ev")
		}
	}
	summary := fmt.Sprintf("tracing overhead, %s, %d events (%d with a sampled traceparent): off %.1fk ev/s, %.2f µs CPU/ev",
		wl.name, wl.events, wl.sampled, rates[0]/1000, cpus[0])
	targets := map[string]float64{"100pct": 25, "1pct": 5}
	for m, mode := range tracingModes {
		if mode.sampler == nil {
			continue
		}
		loss := 100 * (1 - rates[m]/rates[0])
		b.ReportMetric(loss, mode.name+"-loss-%")
		summary += fmt.Sprintf("; %s %.1fk ev/s (throughput %+.1f%%), %.2f µs CPU/ev",
			mode.title, rates[m]/1000, -loss, cpus[m])
		if cpus[0] > 0 && cpus[m] > 0 {
			extra := 100 * (cpus[m]/cpus[0] - 1)
			atEqualCPU := 100 * (1 - cpus[0]/cpus[m])
			b.ReportMetric(extra, mode.name+"-cpu-%")
			verdict := "met"
			if atEqualCPU > targets[mode.name] {
				verdict = "MISSED"
			}
			summary += fmt.Sprintf(" (CPU %+.1f%%, throughput lost at equal CPU %.1f%%, target ≤%.0f%% %s)",
				extra, atEqualCPU, targets[mode.name], verdict)
		}
		summary += fmt.Sprintf(", %d spans / %d links exported", totals[m].spans/int64(n), totals[m].links/int64(n))
	}
	b.Log(summary)
}

// tracedResult is what one mode's run left behind.
type tracedResult struct {
	group    goka.Group
	elapsed  time.Duration // provider + processor creation to Run returned and provider shut down
	cpu      time.Duration // CPU time of the whole process meanwhile
	stopping time.Duration // all records handled to the end of the timed region
	spans    int64         // spans the exporter received
	links    int64         // links on those spans
}

// runTraced runs workload wl with tracing mode over its input until every
// record is handled and the processor and the tracer provider are stopped.
func runTraced(b *testing.B, kcfg kafkaclient.Config, wl tracingWorkload, mode tracingMode) tracedResult {
	b.Helper()
	group := goka.Group(kafkatest.Group(b, "bench-trace-"+wl.name+"-"+mode.name))
	stateDir := b.TempDir()
	exp := new(discardExporter)

	start, cpuStart := time.Now(), processCPU()
	var tp *sdktrace.TracerProvider
	var rtOpts []processors.Option
	if mode.sampler != nil {
		tp = sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithSampler(mode.sampler()))
		rtOpts = append(rtOpts, processors.WithTracerProvider(tp))
	}
	rt := processors.NewRuntime(rtOpts...)
	tally := rt.Tally()
	p, err := processors.NewProcessor(context.Background(), wl.graph(wl.input, group, rt),
		processors.WithKafka(kcfg), processors.WithStateDir(stateDir))
	if err != nil {
		b.Fatalf("%s/%s: %v", wl.name, mode.name, err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	defer stop()
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }()

	handled := func() int64 { return tally.Processed() + tally.Rejected() + tally.Replayed() }
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	deadline := time.NewTimer(processTimeout)
	defer deadline.Stop()
	for handled() < int64(wl.events) {
		select {
		case err := <-done:
			b.Fatalf("%s/%s: processor stopped after %d of %d records: %v", wl.name, mode.name, handled(), wl.events, err)
		case <-deadline.C:
			stop()
			<-done
			b.Fatalf("%s/%s: handled %d of %d records in %v", wl.name, mode.name, handled(), wl.events, processTimeout)
		case <-tick.C:
		}
	}
	allHandled := time.Now()
	stop()
	if err := <-done; err != nil {
		b.Fatalf("%s/%s: stop processor: %v", wl.name, mode.name, err)
	}
	if tp != nil {
		// Exports what the batch span processor still holds.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err := tp.Shutdown(ctx)
		cancel()
		if err != nil {
			b.Fatalf("%s/%s: shut down tracer provider: %v", wl.name, mode.name, err)
		}
	}
	elapsed, cpu := time.Since(start), processCPU()-cpuStart
	if got := handled(); got != int64(wl.events) || tally.Rejected() != 0 || tally.Replayed() != 0 {
		b.Fatalf("%s/%s: %d records: %d processed, %d rejected %v, %d replayed; want %d processed",
			wl.name, mode.name, got, tally.Processed(), tally.Rejected(), tally.RejectedByReason(), tally.Replayed(), wl.events)
	}
	return tracedResult{
		group:    group,
		elapsed:  elapsed,
		cpu:      cpu,
		stopping: time.Since(allHandled),
		spans:    exp.spans.Load(),
		links:    exp.links.Load(),
	}
}

// produceTraced writes records to a new topic of benchParts partitions,
// each with a traceparent of its own random trace and parent span; the
// sampled flag is set on the trace ids a TraceIDRatioBased(0.01) sampler
// would pick. It returns the topic and how many records are sampled.
func produceTraced(b *testing.B, kcfg kafkaclient.Config, prefix string, records []record) (string, int64) {
	b.Helper()
	topic := kafkatest.Topic(b, prefix)
	kafkatest.CreateTopic(b, kcfg.Brokers, topic, benchParts)
	ctx, cancel := context.WithTimeout(context.Background(), processTimeout)
	defer cancel()
	rng := rand.New(rand.NewPCG(benchSeed, benchSeed+1))
	ratio := upstreamSampleRatio
	threshold := uint64(ratio * (1 << 63)) // as TraceIDRatioBased computes it
	var sampled int64
	start := time.Now()
	err := produce(ctx, kcfg, topic, records, func(int) map[string]string {
		var tid [16]byte
		var sid [8]byte
		binary.BigEndian.PutUint64(tid[:8], rng.Uint64())
		binary.BigEndian.PutUint64(tid[8:], rng.Uint64()|1) // never all zero
		binary.BigEndian.PutUint64(sid[:], rng.Uint64()|1)
		flags := "00"
		if binary.BigEndian.Uint64(tid[8:])>>1 < threshold { // TraceIDRatioBased's rule
			flags = "01"
			sampled++
		}
		return map[string]string{"traceparent": "00-" + hex.EncodeToString(tid[:]) + "-" + hex.EncodeToString(sid[:]) + "-" + flags}
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("produced %d records (%d with a sampled traceparent) to %s in %v",
		len(records), sampled, topic, time.Since(start).Round(time.Millisecond))
	return topic, sampled
}

// prepareCountingWorkload produces the counting input: events records over
// benchKeys seeded random keys, like BenchmarkCounting's.
func prepareCountingWorkload(b *testing.B, kcfg kafkaclient.Config, events int) tracingWorkload {
	records, want := countInput(events, benchKeys)
	input, sampled := produceTraced(b, kcfg, "bench-trace-count-in", records)
	identity := func(data []byte) ([]byte, error) { return data, nil }
	return tracingWorkload{
		name:    "counting",
		input:   input,
		events:  events,
		sampled: sampled,
		graph: func(input string, group goka.Group, rt *processors.Runtime) *goka.GroupGraph {
			return processors.DefineGroup(rt, group,
				goka.Input(goka.Stream(input), new(codec.Bytes), processors.Handle(rt, identity,
					func(ctx goka.Context, _ []byte) error {
						var n int64
						if v := ctx.Value(); v != nil {
							n = v.(int64)
						}
						ctx.SetValue(n + 1)
						return nil
					})),
				processors.Persist(new(codec.Int64)),
			)
		},
		verify: func(b *testing.B, kcfg kafkaclient.Config, group goka.Group) {
			verifyView(b, kcfg, goka.GroupTable(group), processors.EnvelopeCodec(new(codec.Int64)), func(get func(string) (any, error)) []error {
				var sum int64
				var errs []error
				for k := range benchKeys {
					key := keyName(k)
					v, err := get(key)
					if err != nil {
						return append(errs, fmt.Errorf("get %s: %w", key, err))
					}
					var n int64
					if v != nil {
						n = v.(*processors.Stored).Value.(int64)
					}
					sum += n
					if n != want[key] && len(errs) < 10 {
						errs = append(errs, fmt.Errorf("key %s: count %d, produced %d", key, n, want[key]))
					}
				}
				if sum != int64(events) {
					errs = append(errs, fmt.Errorf("sum of counts %d, want %d", sum, events))
				}
				return errs
			})
		},
	}
}

// prepareBankWorkload produces copies of testdata/bank/events.jsonl, at
// least events records in all, the account ids of copy c suffixed with
// "-cNN". Copies are interleaved line by line, so every account still gets
// its AccountCreated first (Kafka keeps the order per key).
func prepareBankWorkload(b *testing.B, kcfg kafkaclient.Config, events int) tracingWorkload {
	in := bankCopies(b, events, 0)
	records, copies, expected := in.records, in.copies, in.expected
	input, sampled := produceTraced(b, kcfg, "bench-trace-bank-in", records)
	return tracingWorkload{
		name:    "bank",
		input:   input,
		events:  len(records),
		sampled: sampled,
		graph: func(input string, group goka.Group, rt *processors.Runtime) *goka.GroupGraph {
			return bank.Graph(input, string(group), rt)
		},
		verify: func(b *testing.B, kcfg kafkaclient.Config, group goka.Group) {
			verifyView(b, kcfg, bank.Table(string(group)), processors.EnvelopeCodec(bank.AccountCodec{}), func(get func(string) (any, error)) []error {
				var errs []error
				var applied int64
				for c := range copies {
					for _, w := range expected {
						id := copyAccount(w.Account, c)
						v, err := get(id)
						if err != nil {
							return append(errs, fmt.Errorf("get %s: %w", id, err))
						}
						if v == nil {
							errs = append(errs, fmt.Errorf("account %s missing", id))
							continue
						}
						g := v.(*processors.Stored).Value.(*bank.Account)
						applied += g.Events
						if g.Account != id || g.Owner != w.Owner || g.Balance != w.Balance || g.Status != w.Status || g.Events != w.Events {
							errs = append(errs, fmt.Errorf("account %s = %+v, want %+v", id, *g, w))
						}
						if len(errs) >= 10 {
							return errs
						}
					}
				}
				if applied != int64(len(records)) {
					errs = append(errs, fmt.Errorf("accounts count %d applied events, want %d", applied, len(records)))
				}
				return errs
			})
		},
	}
}

// verifyView reads table back from its changelog with a view on a fresh
// state directory and fails the benchmark with what check finds wrong.
func verifyView(b *testing.B, kcfg kafkaclient.Config, table goka.Table, cdc goka.Codec, check func(get func(string) (any, error)) []error) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), processTimeout)
	defer cancel()
	v, err := processors.StartView(ctx, table, cdc, processors.WithKafka(kcfg), processors.WithStateDir(b.TempDir()))
	if err != nil {
		b.Fatalf("verify %s: %v", table, err)
	}
	defer func() {
		if err := v.Close(); err != nil {
			b.Errorf("close view of %s: %v", table, err)
		}
	}()
	if errs := check(v.Get); len(errs) > 0 {
		b.Fatalf("wrong table %s:\n%v", table, errors.Join(errs...))
	}
}

// eventCountDefault is eventCount with another default.
func eventCountDefault(b *testing.B, def int) int {
	if os.Getenv(envEvents) == "" {
		return def
	}
	return eventCount(b)
}
