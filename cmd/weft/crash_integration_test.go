package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/weftstream/weft/examples/bank"
	"github.com/weftstream/weft/internal/kafkatest"
	"github.com/weftstream/weft/kafkaclient"
	"github.com/weftstream/weft/processors"
)

// envAsWeft makes the test binary run weft's main instead of the tests, so
// that a test can start `weft` as a process and kill it.
const envAsWeft = "WEFT_TEST_RUN_AS_WEFT"

func TestMain(m *testing.M) {
	if os.Getenv(envAsWeft) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// weftProcess is `weft` running as a process of its own.
type weftProcess struct {
	t   *testing.T
	cmd *exec.Cmd
	out bytes.Buffer
}

// startWeft starts `weft args...` (this test binary as weft); it is
// killed when the test ends, if still running.
func startWeft(t *testing.T, args ...string) *weftProcess {
	t.Helper()
	p := &weftProcess{t: t, cmd: exec.Command(os.Args[0], args...)}
	p.cmd.Env = append(os.Environ(), envAsWeft+"=1")
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			_ = p.cmd.Wait()
		}
		if t.Failed() {
			t.Logf("output of weft %s:\n%s", strings.Join(args, " "), p.out.String())
		}
	})
	return p
}

// kill kills the process (SIGKILL: no shutdown, no commit).
func (p *weftProcess) kill() {
	p.t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		p.t.Fatal(err)
	}
	_ = p.cmd.Wait()
}

// stop stops the process like Ctrl-C and expects a clean exit.
func (p *weftProcess) stop() {
	p.t.Helper()
	_ = p.cmd.Process.Signal(os.Interrupt)
	if err := p.cmd.Wait(); err != nil {
		p.t.Errorf("weft %s: %v", strings.Join(p.cmd.Args[1:], " "), err)
	}
}

// noRejections fails the test if the process dead-lettered records.
func (p *weftProcess) noRejections() {
	p.t.Helper()
	if n := strings.Count(p.out.String(), "rejected input record"); n > 0 {
		p.t.Errorf("weft %s rejected %d records", strings.Join(p.cmd.Args[1:], " "), n)
	}
}

// A `weft run` process is killed (SIGKILL: no shutdown, no commit) in the
// middle of a topology with two repartitions, a windowed count and a
// suppress until window close; a second process continues from the
// changelogs and the local stores the first left behind. The counts must
// come out exact (every order counted once, although records are
// processed and emitted again after the crash), and every window's final
// count must be emitted, always with the exact value (a window may be
// emitted twice around the crash: outputs are at-least-once).
func TestIntegrationCrashMidTopology(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	b := strings.Join(brokers, ",")
	app := kafkatest.Topic(t, "crash")
	orders := kafkatest.Topic(t, "orders")
	final := kafkatest.Topic(t, "final")
	kafkatest.CreateTopic(t, brokers, orders, 1)
	file := writeHourlyTopology(t, app, orders, final)

	// 3,000 orders of 7 customers, two minutes apart (100 hours), then one
	// order per partition of the suppressor's input a day later, so that
	// every window of the orders closes.
	const n = 3000
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	type order struct{ id, customer, at string }
	var all []order
	want := map[string]int64{}
	for i := range n {
		at := base.Add(time.Duration(i) * 2 * time.Minute)
		o := order{fmt.Sprintf("o%d", i), fmt.Sprintf("c%d", i*5%7), at.Format(time.RFC3339)}
		all = append(all, o)
		want[o.customer+"@"+at.Truncate(time.Hour).Format(time.RFC3339)]++
	}
	tickAt := base.Add(n*2*time.Minute + 24*time.Hour)
	day := tickAt.Truncate(time.Hour).Format(time.RFC3339)
	for i, key := range kafkatest.KeysCovering(t, 4, func(i int) string { return fmt.Sprintf("tick%d@%s", i, day) }) {
		all = append(all, order{fmt.Sprintf("t%d", i), strings.TrimSuffix(key, "@"+day), tickAt.Format(time.RFC3339)})
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(orders))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	produce := func(os []order) {
		t.Helper()
		for _, o := range os {
			v, _ := json.Marshal(map[string]string{"customer": o.customer, "at": o.at})
			cl.Produce(t.Context(), &kgo.Record{Key: []byte(o.id), Value: v}, nil)
		}
		if err := cl.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
	}

	stateDir := t.TempDir()
	start := func() *weftProcess {
		return startWeft(t, "run", file, "--brokers", b, "--partitions", "4", "--state-dir", stateDir, "--log-level", "warn")
	}

	finals := map[string][]int64{}
	reader, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(final),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	read := func() int {
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		reader.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			var v int64
			if err := json.Unmarshal(r.Value, &v); err != nil {
				t.Errorf("final %s: %q is not a count", r.Key, r.Value)
			}
			finals[string(r.Key)] = append(finals[string(r.Key)], v)
		})
		return len(finals)
	}

	first := start()
	produce(all[:n/2])
	kafkatest.WaitFor(t, 2*time.Minute, "the first final counts", func() bool { return read() >= 20 })
	first.kill()
	t.Logf("killed the first process with %d windows emitted", len(finals))

	produce(all[n/2:])
	second := start()
	defer func() {
		second.stop()
		// Nothing is late or bad: records handled again after the crash
		// are recognised, not dead-lettered.
		first.noRejections()
		second.noRejections()
	}()
	kafkatest.WaitFor(t, 3*time.Minute, fmt.Sprintf("final counts of all %d windows", len(want)), func() bool {
		read()
		for key := range want {
			if len(finals[key]) == 0 {
				return false
			}
		}
		return true
	})

	dups := 0
	for key, got := range finals {
		w, ok := want[key]
		if !ok {
			t.Errorf("final count of %s, which never closed", key)
			continue
		}
		for _, v := range got {
			if v != w {
				t.Errorf("final count of %s = %d, want %d", key, v, w)
			}
		}
		dups += len(got) - 1
	}
	t.Logf("%d windows, %d emitted twice or more around the crash", len(want), dups)

	// The window table holds each count exactly once.
	k := kafkaclient.Config{Brokers: brokers}
	view, err := processors.StartView(t.Context(), goka.Table(app+"-hourly-table"), processors.EnvelopeCodec(new(codec.Int64)),
		processors.WithKafka(k), processors.WithStateDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer view.Close()
	// The record cache writes the table within its commit interval of the
	// finals (which go downstream at once).
	var wrong []string
	defer func() {
		if t.Failed() && len(wrong) > 0 {
			t.Logf("%d windows wrong in the table, e.g. %s", len(wrong), wrong[0])
		}
	}()
	kafkatest.WaitFor(t, time.Minute, "the window table to hold every count", func() bool {
		wrong = wrong[:0]
		for key, w := range want {
			v, err := view.Get(key)
			if err != nil {
				t.Fatal(err)
			}
			if st, _ := v.(*processors.Stored); st == nil || st.Value != w {
				wrong = append(wrong, fmt.Sprintf("%s = %v, want %d", key, v, w))
			}
		}
		return len(wrong) == 0
	})
}

// The built-in bank projection, killed (SIGKILL) in the middle of the
// 5,006 account events of testdata/bank and started again, ends with
// every account exactly as the reference computes it: no event applied
// twice, none lost.
func TestIntegrationCrashBank(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	b := strings.Join(brokers, ",")
	input, group := kafkatest.Topic(t, "bank-events"), kafkatest.Group(t, "bank")
	common := []string{"--brokers", b, "--log-level", "warn", "--partitions", "4"}
	lines, want := bankReference(t)
	produce := bankProducer(t, input, common)

	state := t.TempDir()
	// A small record cache: it flushes while the first process runs, so
	// that the kill finds updates flushed and others only in memory.
	run := append([]string{"run", "--input", input, "--group", group, "--state-dir", state, "--log-format", "json",
		"--cache-max-bytes", "32768"}, common...)
	run = append(run, "--log-level", "info")
	table := group + "-table"
	// Kill the first process once the table topic holds some updates of
	// the first half of the events; the second process gets the rest.
	produce(lines[:len(lines)/2])
	first := startWeft(t, run...)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(table),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	updates := 0
	kafkatest.WaitFor(t, 2*time.Minute, "the first table updates", func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		updates += cl.PollFetches(ctx).NumRecords()
		return updates >= 100 // the cache's flushes write one record per account
	})
	first.kill()
	t.Logf("killed the first process after %d table updates", updates)

	produce(lines[len(lines)/2:])
	second := startWeft(t, run...)
	view, err := processors.StartView(t.Context(), goka.Table(table), processors.EnvelopeCodec(bank.AccountCodec{}),
		processors.WithKafka(kafkaclient.Config{Brokers: brokers}), processors.WithStateDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer view.Close()
	differ := func() []string {
		var bad []string
		for key, w := range want {
			v, err := view.Get(key)
			if err != nil {
				t.Fatal(err)
			}
			var got map[string]any
			if st, ok := v.(*processors.Stored); ok {
				data, _ := json.Marshal(st.Value)
				_ = json.Unmarshal(data, &got)
			}
			for field, wv := range w { // the reference's fields (the table also has updated_at)
				if !reflect.DeepEqual(got[field], wv) {
					bad = append(bad, fmt.Sprintf("%s = %v, want %v", key, got, w))
					break
				}
			}
		}
		return bad
	}
	kafkatest.WaitFor(t, 3*time.Minute, "every account to match the reference", func() bool { return len(differ()) == 0 })
	second.stop()
	first.noRejections()
	second.noRejections()
	// The second process saw the records the first had applied without
	// committing them, and recognised them.
	var summary struct {
		Processed, Rejected, Replayed int64
	}
	for _, line := range strings.Split(second.out.String(), "\n") {
		if strings.Contains(line, `"msg":"summary"`) {
			if err := json.Unmarshal([]byte(line), &summary); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Logf("second process: %+v", summary)
	// The first process applied the whole first half (its table updates
	// show it), so the second applies exactly the second half.
	if second := int64(len(lines) - len(lines)/2); updates == len(lines)/2 && summary.Processed != second {
		t.Errorf("second process: %+v; want exactly the %d events of the second half applied", summary, second)
	}
}

// A suppress every interval holds back the commits of the records it
// coalesces until its flush: a process killed before any flush loses
// nothing. The second process gets the records again (the first committed
// none of them), and its flush when it stops emits each key's final value.
func TestIntegrationCrashBeforeFlush(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	b := strings.Join(brokers, ",")
	app := kafkatest.Topic(t, "flush")
	clicks := kafkatest.Topic(t, "clicks")
	totals := kafkatest.Topic(t, "totals")
	file := filepath.Join(t.TempDir(), "clicks.yaml")
	topology := strings.NewReplacer("APP", app, "CLICKS", clicks, "TOTALS", totals, "COPY", clicks+"-copy").Replace(`app: APP
streams:
  clicks: {topic: CLICKS}
pipelines:
  - name: per-user
    from: clicks
    steps:
      - group_by_key: {}
      - count: {}
  - name: per-user-out
    from: table:per-user
    steps:
      - suppress: {every: 1h}
      - to: {topic: TOTALS, codec: json}
  - name: copy
    from: clicks
    steps:
      - to: {topic: COPY}
`)
	if err := os.WriteFile(file, []byte(topology), 0o644); err != nil {
		t.Fatal(err)
	}
	kafkatest.CreateTopic(t, brokers, clicks, 4)
	// Keys go where goka looks for them: its fnv-1a hash partitioning.
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(clicks),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(kgo.SaramaCompatHasher(func(b []byte) uint32 {
			h := fnv.New32a()
			_, _ = h.Write(b)
			return h.Sum32()
		}))))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	want := map[string]int64{}
	produce := func(from, to, users int) {
		t.Helper()
		for i := from; i < to; i++ {
			user := fmt.Sprintf("u%d", i%users)
			want[user]++
			cl.Produce(t.Context(), &kgo.Record{Key: []byte(user), Value: []byte(`{}`)}, nil)
		}
		if err := cl.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	state := t.TempDir()
	run := []string{"run", file, "--brokers", b, "--partitions", "4", "--state-dir", state, "--log-level", "warn"}

	produce(0, 500, 13)
	first := startWeft(t, run...)
	// Wait until the counts are in the table topic: every click was
	// processed, and the coalescer holds them all.
	table, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(app+"-per-user-table"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer table.Close()
	// The record cache writes one record per user and flush: fold the
	// topic into each user's latest count.
	counts := map[string]int64{}
	clicksIn := func() int64 {
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		table.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			v, err := processors.EnvelopeCodec(new(codec.Int64)).Decode(r.Value)
			if err != nil {
				t.Fatalf("table record %s: %v", r.Key, err)
			}
			counts[string(r.Key)] = v.(*processors.Stored).Value.(int64)
		})
		var n int64
		for _, c := range counts {
			n += c
		}
		return n
	}
	kafkatest.WaitFor(t, 2*time.Minute, "500 clicks in the table", func() bool { return clicksIn() == 500 })
	// The group that copies the clicks commits its offsets; the counting
	// group, whose records wait in the coalescer, must not.
	adm := kadm.NewClient(cl)
	committed := func(group string) int64 {
		offs, err := adm.FetchOffsets(t.Context(), group)
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		offs.Each(func(o kadm.OffsetResponse) {
			if o.Topic == clicks && o.At > 0 {
				n += o.At
			}
		})
		return n
	}
	kafkatest.WaitFor(t, 2*time.Minute, "the copying group to commit its 500 clicks", func() bool {
		return committed(app+"-"+clicks) >= 500
	})
	if n := committed(app + "-per-user"); n != 0 {
		t.Fatalf("the counting group committed %d clicks before its coalescer flushed", n)
	}
	first.kill()

	// New clicks of 4 of the 13 users only: the other 9 come out only if
	// the second process gets the first 500 clicks again.
	produce(500, 800, 4)
	second := startWeft(t, run...)
	// The second process handles the 300 new clicks and the 500 again
	// (replayed: its state has them; their outputs go to the coalescer).
	kafkatest.WaitFor(t, 2*time.Minute, "800 clicks in the table", func() bool { return clicksIn() == 800 })
	// Its flush when it stops writes each user's final count. A coalesced
	// topic holds the latest value of a key last, so the test reads the
	// whole topic and keeps each key's last record.
	second.stop()
	ends, err := adm.ListEndOffsets(t.Context(), totals)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	ends.Each(func(o kadm.ListedOffset) { n += int(o.Offset) })
	got := map[string]int64{}
	for _, r := range kafkatest.Consume(t, brokers, totals, n, time.Minute) {
		var n int64
		if err := json.Unmarshal(r.Value, &n); err != nil {
			t.Fatalf("total of %s: %q", r.Key, r.Value)
		}
		got[string(r.Key)] = n
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("totals %v, want %v", got, want)
	}
	first.noRejections()
	second.noRejections()
}

// bankReference returns the lines of testdata/bank/events.jsonl and the
// read model of every account after them (expected.jsonl), by account.
func bankReference(t *testing.T) (lines []string, want map[string]map[string]any) {
	t.Helper()
	events, err := os.ReadFile(filepath.Join(bankData, "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lines = strings.SplitAfter(strings.TrimSpace(string(events)), "\n")
	want = map[string]map[string]any{}
	data, err := os.ReadFile(filepath.Join(bankData, "expected.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var acc map[string]any
		if err := json.Unmarshal([]byte(line), &acc); err != nil {
			t.Fatal(err)
		}
		want[acc["account"].(string)] = acc
	}
	return lines, want
}

// bankProducer returns a function that produces event lines to input
// with weft produce (keyed by account), checking that all went out.
func bankProducer(t *testing.T, input string, common []string) func(part []string) {
	return func(part []string) {
		t.Helper()
		f := filepath.Join(t.TempDir(), "events.jsonl")
		if err := os.WriteFile(f, []byte(strings.Join(part, "")), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := weft(t.Context(), append([]string{"produce", input, f, "--key-field", "account"}, common...)...)
		if err != nil || !strings.Contains(out, fmt.Sprintf("produced %d records", len(part))) {
			t.Fatalf("produce: %v\n%s", err, out)
		}
	}
}

// writeHourlyTopology writes the windowed topology of the crash and fault
// tests (hourly counts per customer, their finals on final) and returns
// its file.
func writeHourlyTopology(t *testing.T, app, orders, final string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "hourly.yaml")
	topology := strings.NewReplacer("APP", app, "ORDERS", orders, "FINAL", final).Replace(`app: APP
streams:
  orders: {topic: ORDERS, timestamp: "timestamp(value.at)"}
pipelines:
  - name: hourly
    from: orders
    steps:
      - group_by: "value.customer"
      - window: {size: 1h, grace: 0s}
      - count: {}
  - name: hourly-final
    from: table:hourly
    steps:
      - suppress: {until: window_close}
      - to: {topic: FINAL, codec: json}
`)
	if err := os.WriteFile(file, []byte(topology), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}
