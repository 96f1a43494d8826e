package processors_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lovoo/goka"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/weftstream/weft/internal/kafkatest"
	"github.com/weftstream/weft/processors"
	"github.com/weftstream/weft/statestore"
	"github.com/weftstream/weft/tracing"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// The record cache coalesces the updates of a key into one table record
// per flush; the flushed version names every contributor, and the flush
// span links to them (coalesced) and to the writer of the previous flushed
// version (previous_value).
func TestIntegrationRecordCache(t *testing.T) {
	e := newEnv(t)
	input, group := kafkatest.Topic(t, "cached"), kafkatest.Group(t, "counter")
	table := string(goka.GroupTable(goka.Group(group)))
	var recs [][3]string
	for i := range 5 {
		tp, _, _ := traceparent(i)
		recs = append(recs, [3]string{"k", "x", tp})
	}
	e.produce(input, recs...)
	rt := e.runtime()
	// Flushes only when asked to: the interval is longer than the test.
	r := e.start(rt, counterGraph(rt, group, input), t.TempDir(), processors.WithRecordCache(processors.DefaultCacheMaxBytes, time.Hour))
	waitTally(t, r, 5)

	// Nothing is written before the flush; the handler read its own
	// cached updates (the count is 5 below).
	if v, err := r.p.Goka().Get("k"); err != nil || v != nil {
		t.Fatalf("store before the flush: %v (%v), want nothing", v, err)
	}
	// Processor.Get reads what the callbacks see.
	if v, err := r.p.Get("k"); err != nil || v.(*processors.Stored).Value != int64(5) {
		t.Fatalf("Get before the flush: %v (%v), want the cached 5", v, err)
	}
	if v, err := r.p.Get("absent"); err != nil || v != nil {
		t.Fatalf("Get of a key never written: %v (%v)", v, err)
	}
	if err := r.p.Flush(); err != nil {
		t.Fatal(err)
	}
	spans := processSpans(e, input)
	if len(spans) != 5 {
		t.Fatalf("%d process spans, want 5", len(spans))
	}
	st := storedOf(t, r, "k")
	if st.Value.(int64) != 5 || st.Meta.Version != 5 || st.Meta.Writer.SpanID != [8]byte(spans[4].SpanContext().SpanID()) {
		t.Fatalf("stored %v version %d writer %x; want 5, 5, %s", st.Value, st.Meta.Version, st.Meta.Writer.SpanID, spans[4].SpanContext().SpanID())
	}
	checkContributors(t, st.Meta, spans)
	if versions, err := r.p.Lineage("k"); err != nil || len(versions) != 1 || versions[0].Version != 5 {
		t.Fatalf("lineage %+v (%v), want the one flushed version 5", versions, err)
	}
	cl := kafkatest.Consume(t, e.kafka.Brokers, table, 1, waitTimeout)
	flush1 := flushSpans(e, table)
	if len(flush1) != 1 {
		t.Fatalf("%d flush spans, want 1", len(flush1))
	}
	checkFlushSpan(t, flush1[0], spans, nil, 0)
	if tp := header(cl[0], "traceparent"); !strings.Contains(tp, flush1[0].SpanContext().SpanID().String()) {
		t.Fatalf("changelog record traceparent %q, want the flush span %s", tp, flush1[0].SpanContext().SpanID())
	}

	// Three more updates: the next version names only them and links to
	// the writer of version 5.
	recs = recs[:0]
	for i := 5; i < 8; i++ {
		tp, _, _ := traceparent(i)
		recs = append(recs, [3]string{"k", "x", tp})
	}
	e.produce(input, recs...)
	waitTally(t, r, 8)
	if err := r.p.Flush(); err != nil {
		t.Fatal(err)
	}
	spans = processSpans(e, input)
	st = storedOf(t, r, "k")
	if st.Value.(int64) != 8 || st.Meta.Version != 8 {
		t.Fatalf("stored %v version %d; want 8, 8", st.Value, st.Meta.Version)
	}
	checkContributors(t, st.Meta, spans[5:])
	flushes := flushSpans(e, table)
	if len(flushes) != 2 {
		t.Fatalf("%d flush spans, want 2", len(flushes))
	}
	checkFlushSpan(t, flushes[1], spans[5:], spans[4], 5)
	kafkatest.Consume(t, e.kafka.Brokers, table, 2, waitTimeout)
	waitCommitted(t, e, group, input, 8)
}

// A counting group with a small cache budget and no timed flushes is
// killed (SIGKILL) while it holds unflushed updates; after a restart the
// counts are exactly those of an independent fold of the input.
func TestIntegrationRecordCacheSurvivesKill(t *testing.T) {
	e := newEnv(t)
	input, group := kafkatest.Topic(t, "cache-kill"), kafkatest.Group(t, "counter")
	kafkatest.CreateTopic(t, e.kafka.Brokers, input, 4)
	want := map[string]int64{}
	// 900 records over 400 keys overflow the budget (flushes); the next
	// 100, over 5 keys, fit in it: they stay in the cache.
	produce := func(from, to int) {
		var recs [][3]string
		for i := from; i < to; i++ {
			k := "key-" + strconv.Itoa(i%400)
			if i%1000 >= 900 {
				k = "key-" + strconv.Itoa(i%5)
			}
			want[k]++
			recs = append(recs, [3]string{k, "x", ""})
		}
		e.produce(input, recs...)
	}
	produce(0, 900)
	state := t.TempDir()

	cmd := exec.Command(os.Args[0], "-test.run=^TestRecordCacheChild$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), kafkatest.EnvBrokers+"="+strings.Join(e.kafka.Brokers, ","),
		"WEFT_CACHE_CHILD="+strings.Join([]string{input, group, state}, ","))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	handled := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if n, ok := strings.CutPrefix(sc.Text(), "handled "); ok {
				if v, _ := strconv.Atoi(n); v >= 1000 {
					close(handled)
					break
				}
			}
		}
		for sc.Scan() {
		}
	}()
	// The budget flushes commit the first 900 records; the next 100 are
	// held in the cache.
	kafkatest.WaitFor(t, waitTimeout, "the child's budget flushes", func() bool { return committed(t, e, group, input) == 900 })
	produce(900, 1000)
	select {
	case <-handled:
	case <-time.After(waitTimeout):
		_ = cmd.Process.Kill()
		t.Fatal("the child did not handle the input")
	}
	// The held records must stay uncommitted: watch for three of the
	// consumer's auto-commit intervals (one second), as long as a commit
	// of released records would take to show.
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if n := committed(t, e, group, input); n != 900 {
			_ = cmd.Process.Kill()
			t.Fatalf("%d records committed while the last 100 were only in the cache, want 900", n)
		}
	}
	before := committed(t, e, group, input)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	produce(1000, 2000)
	rt := e.runtime()
	r := e.start(rt, counterGraph(rt, group, input), state, processors.WithRecordCache(cacheKillBudget, time.Hour))
	// The budget alone makes flushes (the interval is an hour): the group
	// commits while it runs.
	kafkatest.WaitFor(t, waitTimeout, "commits from budget flushes", func() bool { return committed(t, e, group, input) > 1000 })

	kafkatest.WaitFor(t, waitTimeout, "the whole input handled", func() bool {
		if err := r.p.Flush(); err != nil {
			t.Fatal(err)
		}
		return committed(t, e, group, input) == 2000
	})
	t.Logf("killed with %d of 1000 records committed; after the restart: %d processed, %d replayed",
		before, rt.Tally().Processed(), rt.Tally().Replayed())
	for k, n := range want {
		if got := storedOf(t, r, k).Value.(int64); got != n {
			t.Errorf("%s = %d, want %d", k, got, n)
		}
	}
	if before != 900 || rt.Tally().Processed()+rt.Tally().Replayed() <= 1000 {
		t.Errorf("the restart handled %d records: the kill lost no unflushed update, the test proves nothing",
			rt.Tally().Processed()+rt.Tally().Replayed())
	}
}

// cacheKillBudget holds about 50 keys.
const cacheKillBudget = 16 << 10

// TestRecordCacheChild is the processor TestIntegrationRecordCacheSurvivesKill
// kills; it runs only as that test's child.
func TestRecordCacheChild(t *testing.T) {
	args := os.Getenv("WEFT_CACHE_CHILD")
	if args == "" {
		t.Skip("child of TestIntegrationRecordCacheSurvivesKill")
	}
	a := strings.Split(args, ",")
	input, group, state := a[0], a[1], a[2]
	e := newEnv(t)
	rt := e.runtime()
	e.start(rt, counterGraph(rt, group, input), state, processors.WithRecordCache(cacheKillBudget, time.Hour))
	for {
		tl := rt.Tally()
		fmt.Printf("handled %d\n", tl.Processed()+tl.Replayed()+tl.Rejected())
		time.Sleep(5 * time.Millisecond) // reports progress until killed
	}
}

// waitTally waits until r's runtime has handled n records, without
// flushing.
func waitTally(t *testing.T, r *running, n int64) {
	t.Helper()
	tl := r.rt.Tally()
	kafkatest.WaitFor(t, waitTimeout, fmt.Sprintf("%d records handled", n), func() bool {
		return tl.Processed()+tl.Rejected()+tl.Replayed() >= n
	})
}

func storedOf(t *testing.T, r *running, key string) *processors.Stored {
	t.Helper()
	v, err := r.p.Goka().Get(key)
	if err != nil {
		t.Fatal(err)
	}
	st, ok := v.(*processors.Stored)
	if !ok {
		t.Fatalf("%s holds %T", key, v)
	}
	return st
}

// checkContributors checks that meta names exactly spans, in order.
func checkContributors(t *testing.T, meta statestore.Envelope, spans []sdktrace.ReadOnlySpan) {
	t.Helper()
	if len(meta.Contributors) != len(spans) || meta.Dropped != 0 {
		t.Fatalf("%d contributors (%d dropped), want %d", len(meta.Contributors), meta.Dropped, len(spans))
	}
	for i, c := range meta.Contributors {
		if c.SpanID != [8]byte(spans[i].SpanContext().SpanID()) {
			t.Errorf("contributor %d = %x, want %s", i, c.SpanID, spans[i].SpanContext().SpanID())
		}
	}
}

// flushSpans returns the flush spans of table, oldest first.
func flushSpans(e *env, table string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range e.spans.Ended() {
		if s.Name() == "flush "+table {
			out = append(out, s)
		}
	}
	return out
}

// checkFlushSpan checks that s links (coalesced) to exactly contributors
// and (previous_value) to prev at version ver, if prev is not nil.
func checkFlushSpan(t *testing.T, s sdktrace.ReadOnlySpan, contributors []sdktrace.ReadOnlySpan, prev sdktrace.ReadOnlySpan, ver int64) {
	t.Helper()
	co := linksOfKind(s, tracing.LinkCoalesced)
	if len(co) != len(contributors) {
		t.Fatalf("flush span has %d coalesced links, want %d", len(co), len(contributors))
	}
	for i, l := range co {
		if l.SpanContext.SpanID() != contributors[i].SpanContext().SpanID() {
			t.Errorf("coalesced link %d to %s, want %s", i, l.SpanContext.SpanID(), contributors[i].SpanContext().SpanID())
		}
	}
	pv := linksOfKind(s, tracing.LinkPreviousValue)
	switch {
	case prev == nil && len(pv) != 0:
		t.Errorf("first flush links to a previous writer: %v", pv)
	case prev != nil && (len(pv) != 1 || pv[0].SpanContext.SpanID() != prev.SpanContext().SpanID() || linkVersion(pv[0]) != ver):
		t.Errorf("previous_value links %v, want %s version %d", pv, prev.SpanContext().SpanID(), ver)
	}
	last := contributors[len(contributors)-1].SpanContext()
	if s.Parent().SpanID() != last.SpanID() || s.SpanContext().TraceID() != last.TraceID() {
		t.Errorf("flush span parent %s, want the last sampled contributor %s", s.Parent().SpanID(), last.SpanID())
	}
	if s.SpanKind() != trace.SpanKindInternal {
		t.Errorf("flush span kind %v", s.SpanKind())
	}
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// committed returns the sum of the offsets group has committed on topic.
func committed(t *testing.T, e *env, group, topic string) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.kafka.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(cl).FetchOffsets(ctx, group)
	if err != nil {
		return -1
	}
	var sum int64
	for _, ps := range resp[topic] {
		if ps.Err == nil && ps.At > 0 {
			sum += ps.At
		}
	}
	return sum
}

func waitCommitted(t *testing.T, e *env, group, topic string, n int64) {
	t.Helper()
	kafkatest.WaitFor(t, waitTimeout, fmt.Sprintf("%d offsets committed", n), func() bool { return committed(t, e, group, topic) == n })
}

// With unsampled records the flush starts no span: the changelog record
// carries the writer's traceparent, and the version counts its
// contributors (in Dropped) instead of listing their span references,
// which no tracing backend holds.
func TestIntegrationRecordCacheUnsampled(t *testing.T) {
	e := newEnv(t)
	input, group := kafkatest.Topic(t, "cached-unsampled"), kafkatest.Group(t, "counter")
	table := string(goka.GroupTable(goka.Group(group)))
	e.produce(input, [3]string{"k", "x", ""}, [3]string{"k", "x", ""}, [3]string{"k", "x", ""})
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()), sdktrace.WithSpanProcessor(e.spans))
	rt := processors.NewRuntime(processors.WithTracerProvider(tp))
	r := e.start(rt, counterGraph(rt, group, input), t.TempDir(), processors.WithRecordCache(processors.DefaultCacheMaxBytes, time.Hour))
	r.waitHandled(t, 3) // flushes
	st := storedOf(t, r, "k")
	if st.Value.(int64) != 3 || len(st.Meta.Contributors) != 0 || st.Meta.Dropped != 3 {
		t.Fatalf("stored %v with %d contributors listed and %d counted, want 3 with 0 listed and 3 counted",
			st.Value, len(st.Meta.Contributors), st.Meta.Dropped)
	}
	if n := len(flushSpans(e, table)); n != 0 {
		t.Fatalf("%d flush spans of unsampled contributors, want none", n)
	}
	rec := kafkatest.Consume(t, e.kafka.Brokers, table, 1, waitTimeout)[0]
	w := processors.SpanContextOf(st.Meta.Writer)
	if got, want := header(rec, "traceparent"), "00-"+w.TraceID().String()+"-"+w.SpanID().String()+"-00"; got != want {
		t.Fatalf("changelog traceparent %q, want the writer's %q", got, want)
	}
}

// A key updated by more sampled records between two flushes than a
// version may list keeps the first MaxContributors and counts the rest,
// in the version (Dropped) and in the tally (LinksDropped, the metric
// weft.links.dropped).
func TestIntegrationRecordCacheLinksDropped(t *testing.T) {
	e := newEnv(t)
	input, group := kafkatest.Topic(t, "cached-full"), kafkatest.Group(t, "counter")
	const n = statestore.MaxContributors + 12
	var recs [][3]string
	for i := range n {
		tp, _, _ := traceparent(i)
		recs = append(recs, [3]string{"k", "x", tp})
	}
	e.produce(input, recs...)
	rt := e.runtime()
	r := e.start(rt, counterGraph(rt, group, input), t.TempDir(), processors.WithRecordCache(processors.DefaultCacheMaxBytes, time.Hour))
	waitTally(t, r, n)
	if got := rt.Tally().LinksDropped(); got != n-statestore.MaxContributors {
		t.Fatalf("LinksDropped = %d, want %d (%d sampled contributors, %d listed)", got, n-statestore.MaxContributors, n, statestore.MaxContributors)
	}
	if err := r.p.Flush(); err != nil {
		t.Fatal(err)
	}
	st := storedOf(t, r, "k")
	if st.Value.(int64) != n || len(st.Meta.Contributors) != statestore.MaxContributors || st.Meta.Dropped != n-statestore.MaxContributors {
		t.Fatalf("stored %v with %d contributors listed and %d dropped, want %d, %d and %d",
			st.Value, len(st.Meta.Contributors), st.Meta.Dropped, n, statestore.MaxContributors, n-statestore.MaxContributors)
	}
}
