package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/tester"

	"github.com/weftstream/weft/eventfile"
	"github.com/weftstream/weft/internal/kafkatest"
	"github.com/weftstream/weft/kafkaclient"
	"github.com/weftstream/weft/processors"
	"github.com/weftstream/weft/topology"
)

// Parameters of BenchmarkTopologyYAMLvsDSL and BenchmarkBankAdder.
const (
	topoDefaultEvents = 200_000
	bankTopologyFile  = "../testdata/cqrs/bank.yaml"
	bankRejectsFile   = "../testdata/cqrs/bank-bad-rejects.jsonl"
	// topoTarget is the share of the Go DSL's throughput the YAML (CEL)
	// topology must reach.
	topoTarget = 0.80
	// adderCopies is how many copies of events.jsonl BenchmarkBankAdder
	// feeds one tester before it starts over on a fresh one.
	adderCopies = 20
	// bankPipeline is the pipeline (and table) name of bank.yaml; the DSL
	// topology uses the same, so both have group <app>-balances.
	bankPipeline = "balances"
)

// topoEngine is one way of writing the bank read model.
type topoEngine struct {
	name string // metric prefix and pprof label: yaml, dsl
	// build returns the topology with application name app, reading the
	// bank events from topic input.
	build func(tb testing.TB, app, input string) *topology.Topology
}

var topoEngines = []topoEngine{
	{name: "yaml", build: bankYAMLTopology},
	{name: "dsl", build: bankDSLTopology},
}

// bankYAMLTopology loads testdata/cqrs/bank.yaml with its app name and its
// input topic replaced (unique per run, as examples/cqrs does).
func bankYAMLTopology(tb testing.TB, app, input string) *topology.Topology {
	tb.Helper()
	top, err := loadBankYAML(bankTopologyFile, app, input)
	if err != nil {
		tb.Fatal(err)
	}
	return top
}

// bankDSLTopology is bank.yaml written with the Go DSL: the same source
// (JSON codec), group by key, and an aggregate "balances" (JSON codec)
// whose initial value is null and whose adder is bankAdd.
func bankDSLTopology(tb testing.TB, app, input string) *topology.Topology {
	tb.Helper()
	b := topology.New(app)
	b.Stream(input, topology.JSON{}).GroupByKey().
		Aggregate(bankPipeline, func() any { return nil }, bankAdd, topology.JSON{})
	top, err := b.Build()
	if err != nil {
		tb.Fatalf("build DSL topology: %v", err)
	}
	return top
}

// bankRejected is the error of a rejected event; the aggregate step wraps
// it like the CEL `reject(reason)` error ("... rejected: <reason>").
type bankRejected string

func (r bankRejected) Error() string { return "rejected: " + string(r) }

// bankAdd is the `add` expression of testdata/cqrs/bank.yaml in Go, on the
// same generic values (map[string]any, int64 numbers from topology.JSON):
// the same checks in the same order, the same rejection reasons, the same
// output maps. The equivalence is tested by TestBankTopologyYAMLvsDSL.
func bankAdd(key string, value, aggregate any) (any, error) {
	v, ok := value.(map[string]any)
	if !ok {
		return nil, bankRejected("1: not a JSON object")
	}
	typ, ok := v["type"].(string)
	switch typ {
	case "AccountCreated", "Deposited", "Withdrawn", "Closed":
	default:
		ok = false
	}
	if !ok {
		return nil, bankRejected("2: unknown event type")
	}
	account, ok := v["account"].(string)
	if !ok || account == "" {
		return nil, bankRejected("3: missing account")
	}
	if account != key {
		return nil, bankRejected("the account does not match the record key")
	}
	if typ == "AccountCreated" {
		if aggregate != nil {
			return nil, bankRejected("4: account already exists")
		}
		owner, ok := v["owner"] // value.?owner.orValue('')
		if !ok {
			owner = ""
		}
		return map[string]any{"account": account, "owner": owner, "balance": int64(0), "status": "open", "events": int64(1)}, nil
	}
	if aggregate == nil {
		return nil, bankRejected("5: unknown account")
	}
	cur, ok := aggregate.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("aggregate is a %T, not a map", aggregate)
	}
	if cur["status"] == "closed" {
		return nil, bankRejected("6: account closed")
	}
	events, ok := cur["events"].(int64)
	if !ok {
		return nil, fmt.Errorf("aggregate events is a %T, not an int", cur["events"])
	}
	if typ == "Closed" {
		return map[string]any{"account": cur["account"], "owner": cur["owner"], "balance": cur["balance"],
			"status": "closed", "events": events + 1}, nil
	}
	amount, ok := v["amount"].(int64)
	if !ok || amount <= 0 {
		return nil, bankRejected("7: bad amount")
	}
	balance, ok := cur["balance"].(int64)
	if !ok {
		return nil, fmt.Errorf("aggregate balance is a %T, not an int", cur["balance"])
	}
	if typ == "Withdrawn" {
		if amount > balance {
			return nil, bankRejected("8: insufficient funds")
		}
		balance -= amount
	} else {
		if balance > math.MaxInt64-amount {
			return nil, errors.New("integer overflow") // as CEL's int addition
		}
		balance += amount
	}
	return map[string]any{"account": cur["account"], "owner": cur["owner"], "balance": balance,
		"status": "open", "events": events + 1}, nil
}

// bankCopies is loadBankInput of testdata/bank for a benchmark or test.
func bankCopies(tb testing.TB, events, copies int) bankInput {
	tb.Helper()
	in, err := loadBankInput(bankDataDir, events, copies)
	if err != nil {
		tb.Fatal(err)
	}
	return in
}

// readLinesTB returns the non-blank lines of a file.
func readLinesTB(tb testing.TB, path string) [][]byte {
	tb.Helper()
	lines, err := readLines(path)
	if err != nil {
		tb.Fatal(err)
	}
	return lines
}

// checkBankAccounts compares the accounts of every copy with
// expected.jsonl; get returns the plain table value of a key (nil: none).
func checkBankAccounts(in bankInput, get func(key string) (any, error)) []error {
	var errs []error
	var applied int64
	for c := range in.copies {
		for _, w := range in.expected {
			id := copyAccount(w.Account, c)
			v, err := get(id)
			if err != nil {
				return append(errs, fmt.Errorf("get %s: %w", id, err))
			}
			m, ok := v.(map[string]any)
			if !ok {
				errs = append(errs, fmt.Errorf("account %s: value %#v, want %+v", id, v, w))
			} else {
				events, _ := m["events"].(int64)
				applied += events
				want := map[string]any{"account": id, "owner": w.Owner, "balance": w.Balance, "status": w.Status, "events": w.Events}
				if len(m) != len(want) || m["account"] != want["account"] || m["owner"] != want["owner"] ||
					m["balance"] != want["balance"] || m["status"] != want["status"] || m["events"] != want["events"] {
					errs = append(errs, fmt.Errorf("account %s = %v, want %v", id, m, want))
				}
			}
			if len(errs) >= 10 {
				return errs
			}
		}
	}
	if applied != int64(len(in.records)) {
		errs = append(errs, fmt.Errorf("accounts count %d applied events, want %d", applied, len(in.records)))
	}
	return errs
}

// produceBank writes the records to a new topic of benchParts partitions
// (no headers).
func produceBank(b *testing.B, kcfg kafkaclient.Config, records []record) string {
	b.Helper()
	topic := kafkatest.Topic(b, "bench-topo-bank-in")
	kafkatest.CreateTopic(b, kcfg.Brokers, topic, benchParts)
	ctx, cancel := context.WithTimeout(context.Background(), processTimeout)
	defer cancel()
	start := time.Now()
	if err := produce(ctx, kcfg, topic, records, nil); err != nil {
		b.Fatal(err)
	}
	b.Logf("produced %d records to %s in %v", len(records), topic, time.Since(start).Round(time.Millisecond))
	return topic
}

// topoInvocations rotates the order of the engines across invocations of
// the benchmark (-count=N), on top of the rotation across b.N iterations.
var topoInvocations atomic.Int64

// BenchmarkTopologyYAMLvsDSL runs the bank read model end to end on the
// embedded broker (or on WEFT_KAFKA_BROKERS), written two ways, within
// every b.N iteration:
//
//   - yaml: testdata/cqrs/bank.yaml (its `add` is one CEL expression with
//     reject()), loaded with topofile.Load, the app and topic names
//     rewritten to be unique to the run;
//   - dsl: the same topology with the Go DSL (topology.New(app).Stream(
//     input, topology.JSON{}).GroupByKey().Aggregate("balances", nil
//     initializer, bankAdd, topology.JSON{})): the same rules, rejections
//     and output maps in Go (TestBankTopologyYAMLvsDSL checks that).
//
// Both are compiled with topology.Compile and run like `weft run` runs a
// topology (processors.NewProcessor per group with its runtime, RunAll).
// Input: testdata/bank/events.jsonl copied until there are at least
// WEFT_BENCH_EVENTS records (default 200,000: 40 copies, 200,240 records),
// account ids suffixed per copy, copies interleaved so every account starts
// with its AccountCreated; produced once, before the timer starts. Each
// engine has its own app name per run, hence its own consumer group, table
// and dead-letter topic.
//
// An untimed warm-up run of the DSL topology comes first (the engine that
// ran first used to pay for a cold broker and runtime). Timed: from
// processor creation until every record is handled (the
// runtimes' Tally: processed + rejected + replayed = produced) and the
// processors stopped (RunAll returned). Not timed: every account of every
// copy, read back from the engine's table topic with a view, against
// testdata/bank/expected.jsonl; no record may be rejected or replayed.
//
// Metrics: <engine>-ev/s, <engine>-cpu-µs/ev (process CPU, broker and GC
// included), yaml/dsl-% (YAML throughput relative to the DSL's, wall
// clock) and yaml/dsl-cpu-% (relative throughput at equal CPU,
// cpu(dsl)/cpu(yaml)); target ≥ 80%.
//
//	go test -run XXX -bench TopologyYAMLvsDSL -benchtime=2x -count=3 ./bench/
//	WEFT_BENCH_EVENTS=20000 go test -run XXX -bench TopologyYAMLvsDSL -benchtime=1x ./bench/
func BenchmarkTopologyYAMLvsDSL(b *testing.B) {
	events := eventCountDefault(b, topoDefaultEvents)
	kcfg := kafkaclient.Config{Brokers: kafkatest.Brokers(b)}
	var in bankInput
	var input string
	pprof.Do(context.Background(), pprof.Labels("phase", "produce"), func(context.Context) {
		in = bankCopies(b, events, 0)
		input = produceBank(b, kcfg, in.records)
	})
	n := len(in.records)

	// Warm-up, not timed: the engine that ran first used to pay for a cold
	// broker and runtime (up to +30% CPU per event). One untimed run of the
	// DSL topology over the whole input takes that cost.
	pprof.Do(context.Background(), pprof.Labels("phase", "warmup"), func(context.Context) {
		c, err := topology.Compile(bankDSLTopology(b, kafkatest.Group(b, "bench-topo-warmup"), input),
			topology.WithProcessorOptions(processors.WithKafka(kcfg)))
		if err != nil {
			b.Fatalf("warm-up: compile: %v", err)
		}
		res := runCompiled(b, kcfg, "warm-up", c, n)
		b.Logf("warm-up (dsl, not timed): %d events in %v, process CPU %.2f µs/event",
			n, res.elapsed.Round(time.Millisecond), perEvent(res.cpu, n))
	})

	type totals struct{ elapsed, cpu time.Duration }
	tot := make([]totals, len(topoEngines))
	invocation := int(topoInvocations.Add(1) - 1)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		for j := range topoEngines {
			m := (i + invocation + j) % len(topoEngines)
			e := topoEngines[m]
			b.StopTimer()
			app := kafkatest.Group(b, "bench-topo-"+e.name)
			compiled, err := topology.Compile(e.build(b, app, input), topology.WithProcessorOptions(processors.WithKafka(kcfg)))
			if err != nil {
				b.Fatalf("%s: compile: %v", e.name, err)
			}
			if len(compiled.Groups) != 1 || compiled.Groups[0].Table == "" {
				b.Fatalf("%s: want one group with a table, got:\n%s", e.name, compiled)
			}
			runtime.GC() // do not bill one engine for the other's garbage
			b.StartTimer()
			var res topoResult
			pprof.Do(context.Background(), pprof.Labels("engine", e.name), func(context.Context) {
				res = runCompiled(b, kcfg, e.name, compiled, n)
			})
			b.StopTimer()
			pprof.Do(context.Background(), pprof.Labels("phase", "verify"), func(context.Context) {
				g := compiled.Groups[0]
				verifyView(b, kcfg, goka.Table(g.Table), processors.EnvelopeCodec(topology.JSON{}), func(get func(string) (any, error)) []error {
					return checkBankAccounts(in, func(key string) (any, error) {
						v, err := get(key)
						if st, ok := v.(*processors.Stored); ok {
							return st.Value, err
						}
						return nil, err
					})
				})
			})
			b.StartTimer()
			b.Logf("%s: %d events in %v = %.0f ev/s (start to first event %v, stop after last event %v); process CPU %v = %.2f µs/event",
				e.name, n, res.elapsed.Round(time.Millisecond), rate(n, res.elapsed), res.startup.Round(time.Millisecond),
				res.stopping.Round(time.Millisecond), res.cpu.Round(time.Millisecond), perEvent(res.cpu, n))
			tot[m].elapsed += res.elapsed
			tot[m].cpu += res.cpu
		}
	}
	b.StopTimer()

	total := n * b.N
	rates := make([]float64, len(topoEngines))
	cpus := make([]float64, len(topoEngines))
	for m, e := range topoEngines {
		rates[m] = rate(total, tot[m].elapsed)
		cpus[m] = perEvent(tot[m].cpu, total)
		b.ReportMetric(rates[m], e.name+"-ev/s")
		if cpus[m] > 0 {
			b.ReportMetric(cpus[m], e.name+"-cpu-µs/ev")
		}
	}
	wall := rates[0] / rates[1]
	b.ReportMetric(100*wall, "yaml/dsl-%")
	summary := fmt.Sprintf("bank topology, %d events (%d copies): yaml %.1fk ev/s, dsl %.1fk ev/s, yaml/dsl %.1f%% (wall clock, target ≥%.0f%% %s)",
		n, in.copies, rates[0]/1000, rates[1]/1000, 100*wall, 100*topoTarget, verdict(wall))
	if cpus[0] > 0 && cpus[1] > 0 {
		atCPU := cpus[1] / cpus[0]
		b.ReportMetric(100*atCPU, "yaml/dsl-cpu-%")
		summary += fmt.Sprintf("; CPU per event yaml %.2f µs, dsl %.2f µs (+%.2f µs), yaml/dsl at equal CPU %.1f%% (target ≥%.0f%% %s)",
			cpus[0], cpus[1], cpus[0]-cpus[1], 100*atCPU, 100*topoTarget, verdict(atCPU))
	}
	b.Log(summary)
}

func verdict(ratio float64) string {
	if ratio >= topoTarget {
		return "met"
	}
	return "MISSED"
}

// runCompiled runs the groups of a compiled topology, as `weft run` does,
// until they handled events records, then stops them (runTopology).
func runCompiled(b *testing.B, kcfg kafkaclient.Config, name string, c *topology.Compiled, events int) topoResult {
	b.Helper()
	res, err := runTopology(context.Background(), kcfg, c, events, b.TempDir(), processTimeout)
	if err != nil {
		b.Fatalf("%s: %v", name, err)
	}
	return res
}

// testerRun is one compiled topology running on goka's in-memory tester.
type testerRun struct {
	tt    *tester.Tester
	group *topology.Group
	stop  func()
}

// startOnTester compiles top and runs its only group on a new tester.
func startOnTester(tb testing.TB, top *topology.Topology) *testerRun {
	tb.Helper()
	c, err := topology.Compile(top)
	if err != nil {
		tb.Fatal(err)
	}
	if len(c.Groups) != 1 {
		tb.Fatalf("want one group, got:\n%s", c)
	}
	g := c.Groups[0]
	tt := tester.New(tb)
	p, err := goka.NewProcessor(nil, g.Graph, goka.WithTester(tt), goka.WithLogger(nopLogger{}))
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	return &testerRun{tt: tt, group: g, stop: func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			tb.Errorf("tester processor: %v", err)
		}
	}}
}

// nopLogger silences goka's per-processor log lines on the tester.
type nopLogger struct{}

func (nopLogger) Print(...any)          {}
func (nopLogger) Println(...any)        {}
func (nopLogger) Printf(string, ...any) {}

// value returns the plain table value of key (nil: none).
func (r *testerRun) value(key string) any {
	if st, ok := r.tt.TableValue(goka.Table(r.group.Table), key).(*processors.Stored); ok {
		return st.Value
	}
	return nil
}

// BenchmarkBankAdder measures the aggregate step of the bank read model
// without Kafka: the compiled topology (YAML with CEL: cel; Go DSL: go)
// runs on goka's in-memory tester (github.com/lovoo/goka/tester), one
// record per op, so an op is the whole compiled callback (span, JSON
// decode, state read, add, envelope encode, state write) around the adder,
// which is the only difference between the two. Records are the
// interleaved copies of testdata/bank/events.jsonl (20 copies, 100,120
// records); when they run out, the benchmark starts over on a fresh tester
// (not timed). No record may be rejected.
//
//	go test -run XXX -bench BankAdder -benchmem ./bench/
//	go test -run XXX -bench 'BankAdder/cel' -cpuprofile cpu.out -o bench.test ./bench/
func BenchmarkBankAdder(b *testing.B) {
	in := bankCopies(b, 0, adderCopies)
	const input = "bank-events"
	for _, e := range []struct {
		name string
		eng  topoEngine
	}{{"cel", topoEngines[0]}, {"go", topoEngines[1]}} {
		b.Run(e.name, func(b *testing.B) {
			top := e.eng.build(b, "bench-adder-"+e.name, input)
			var runs []*testerRun
			run := startOnTester(b, top)
			runs = append(runs, run)
			j := 0
			b.ResetTimer()
			cpuStart := processCPU()
			for b.Loop() {
				if j == len(in.records) {
					b.StopTimer()
					run.stop()
					run = startOnTester(b, top)
					runs = append(runs, run)
					j = 0
					b.StartTimer()
				}
				r := in.records[j]
				run.tt.Consume(input, r.key, r.value)
				j++
			}
			b.StopTimer()
			// Process CPU (the tester's goroutines and GC included) per
			// record; restarts are included too, a small share.
			b.ReportMetric(float64((processCPU()-cpuStart).Nanoseconds())/float64(b.N), "cpu-ns/op")
			run.stop()
			for _, r := range runs {
				if t := r.group.Runtime.Tally(); t.Rejected() != 0 || t.Replayed() != 0 {
					b.Fatalf("%s: %d rejected %v, %d replayed", e.name, t.Rejected(), t.RejectedByReason(), t.Replayed())
				}
			}
		})
	}
}

// TestBankTopologyYAMLvsDSL checks, on goka's tester (no broker), that the
// two bank topologies of BenchmarkTopologyYAMLvsDSL are the same read
// model: on testdata/bank/events.jsonl both give expected.jsonl exactly; on
// bad-events.jsonl both give bad-expected.jsonl and dead-letter the same
// lines for the same rules (bank-bad-rejects.jsonl).
func TestBankTopologyYAMLvsDSL(t *testing.T) {
	good := bankCopies(t, 0, 1)
	bad := readLinesTB(t, filepath.Join(bankDataDir, "bad-events.jsonl"))
	var badExpected []map[string]any
	for _, l := range readLinesTB(t, filepath.Join(bankDataDir, "bad-expected.jsonl")) {
		v, err := topology.JSON{}.Decode(l)
		if err != nil {
			t.Fatal(err)
		}
		badExpected = append(badExpected, v.(map[string]any))
	}
	ruleOf := map[string]int{} // bad line -> rule that rejects it
	for _, l := range readLinesTB(t, bankRejectsFile) {
		var r struct{ Line, Rule int }
		if err := json.Unmarshal(l, &r); err != nil {
			t.Fatal(err)
		}
		ruleOf[string(bad[r.Line-1])] = r.Rule
	}
	const input = "bank-events"
	for _, e := range topoEngines {
		t.Run(e.name, func(t *testing.T) {
			top := e.build(t, "bank-"+e.name, input)

			// The valid events: every account of expected.jsonl, nothing
			// rejected. (Copy 0 suffixes the account ids with -c00.)
			run := startOnTester(t, top)
			for _, r := range good.records {
				run.tt.Consume(input, r.key, r.value)
			}
			if errs := checkBankAccounts(good, func(k string) (any, error) { return run.value(k), nil }); len(errs) > 0 {
				t.Fatalf("events.jsonl:\n%v", errors.Join(errs...))
			}
			if n := run.group.Runtime.Tally().Rejected(); n != 0 {
				t.Fatalf("events.jsonl: %d rejected: %v", n, run.group.Runtime.Tally().RejectedByReason())
			}
			run.stop()

			// The bad events: the same table and the same dead letters.
			run = startOnTester(t, top)
			defer run.stop()
			dlq := run.tt.NewQueueTracker(string(processors.DeadLetterTopic(run.group.Name)))
			for rec, err := range eventfile.Read(bytes.NewReader(bytes.Join(bad, []byte("\n"))), "account") {
				if err != nil {
					t.Fatal(err)
				}
				run.tt.Consume(input, rec.Key, rec.Value)
			}
			for _, w := range badExpected {
				if got := run.value(w["account"].(string)); fmt.Sprint(got) != fmt.Sprint(w) {
					t.Errorf("bad-events.jsonl: %s = %v, want %v", w["account"], got, w)
				}
			}
			if v := run.value("acc-9999"); v != nil {
				t.Errorf("unknown account acc-9999 has a value: %v", v)
			}
			seen := map[string]bool{}
			for {
				h, _, value, ok := dlq.NextRawWithHeaders()
				if !ok {
					break
				}
				line, msg := string(value), string(h[processors.HeaderErrorMessage])
				rule, known := ruleOf[line]
				switch {
				case !known:
					t.Errorf("dead letter %q is not a line the reference rejects", line)
				case rule == 1 && string(h[processors.HeaderErrorReason]) == "decode":
				case !strings.Contains(msg, "rejected: "+strconv.Itoa(rule)+":"):
					t.Errorf("dead letter %q: message %q, want rule %d", line, msg, rule)
				}
				seen[line] = true
			}
			if len(seen) != len(ruleOf) {
				t.Errorf("%d distinct lines dead-lettered, the reference rejects %d", len(seen), len(ruleOf))
			}
			if n := run.group.Runtime.Tally().Rejected(); n != int64(len(ruleOf)) {
				t.Errorf("%d rejected, want %d", n, len(ruleOf))
			}
		})
	}
}
