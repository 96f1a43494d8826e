package processors_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/weftstream/weft/internal/kafkatest"
	"github.com/weftstream/weft/kafkaclient"
	"github.com/weftstream/weft/processors"
	"github.com/weftstream/weft/tracing"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

const waitTimeout = 2 * time.Minute

// env is one test's brokers, names, tracer provider and span recorder.
type env struct {
	t     *testing.T
	kafka kafkaclient.Config
	spans *tracetest.SpanRecorder
	tp    *sdktrace.TracerProvider
}

func newEnv(t *testing.T) *env {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithSpanProcessor(spans))
	return &env{t: t, kafka: kafkaclient.Config{Brokers: kafkatest.Brokers(t), Partitions: 4}, spans: spans, tp: tp}
}

func (e *env) runtime() *processors.Runtime {
	return processors.NewRuntime(processors.WithTracerProvider(e.tp))
}

// noCache turns the record cache off, for tests of one changelog record
// per update.
var noCache = processors.WithRecordCache(0, 0)

// running is a processor running in the background.
type running struct {
	rt     *processors.Runtime
	p      *processors.Processor
	cancel context.CancelFunc
	done   chan struct{} // closed when Run returned
	err    error         // what Run returned
}

func (e *env) start(rt *processors.Runtime, g *goka.GroupGraph, stateDir string, opts ...processors.Option) *running {
	e.t.Helper()
	p, err := processors.NewProcessor(e.t.Context(), g, append([]processors.Option{processors.WithKafka(e.kafka),
		processors.WithStateDir(stateDir), processors.WithRuntime(rt)}, opts...)...)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{rt: rt, p: p, cancel: cancel, done: make(chan struct{})}
	go func() {
		r.err = p.Run(ctx)
		close(r.done)
	}()
	e.t.Cleanup(func() { r.stop(e.t) })
	return r
}

func (r *running) stop(t *testing.T) {
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case <-r.done:
		if r.err != nil {
			t.Errorf("processor stopped with error: %v", r.err)
		}
	case <-time.After(time.Minute):
		t.Error("processor did not stop within a minute")
	}
}

// waitHandled waits until the processor has handled n records in all
// (processed, rejected or skipped as replayed).
func (r *running) waitHandled(t *testing.T, n int64) {
	t.Helper()
	tl := r.rt.Tally()
	kafkatest.WaitFor(t, waitTimeout, fmt.Sprintf("%d records handled", n), func() bool {
		select {
		case <-r.done:
			t.Fatalf("processor stopped: %v", r.err)
		default:
		}
		return tl.Processed()+tl.Rejected()+tl.Replayed() >= n
	})
	// Reads of the store and the changelog see what the record cache
	// flushed.
	if err := r.p.Flush(); err != nil {
		t.Fatal(err)
	}
}

// produce sends records (key, value, traceparent) to topic.
func (e *env) produce(topic string, recs ...[3]string) {
	e.t.Helper()
	em, err := processors.NewEmitter(e.t.Context(), topic, processors.WithKafka(e.kafka))
	if err != nil {
		e.t.Fatal(err)
	}
	for _, r := range recs {
		var h map[string]string
		if r[2] != "" {
			h = map[string]string{"traceparent": r[2]}
		}
		em.Emit(r[0], []byte(r[1]), h)
	}
	if err := em.Close(); err != nil {
		e.t.Fatal(err)
	}
}

func traceparent(i int) (string, trace.TraceID, trace.SpanID) {
	var tid trace.TraceID
	var sid trace.SpanID
	tid[0], tid[15] = 0xab, byte(i+1)
	sid[0], sid[7] = 0xcd, byte(i+1)
	return fmt.Sprintf("00-%s-%s-01", tid, sid), tid, sid
}

func identity(b []byte) ([]byte, error) { return b, nil }

// counterGraph counts records per key in its table.
func counterGraph(rt *processors.Runtime, group, input string) *goka.GroupGraph {
	return processors.DefineGroup(rt, goka.Group(group),
		goka.Input(goka.Stream(input), new(codec.Bytes), processors.Handle(rt, identity, func(ctx goka.Context, _ []byte) error {
			var n int64
			if v := ctx.Value(); v != nil {
				n = v.(int64)
			}
			ctx.SetValue(n + 1)
			return nil
		})),
		processors.Persist(new(codec.Int64)),
	)
}

func processSpans(e *env, topic string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range e.spans.Ended() {
		if s.Name() == "process "+topic {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b sdktrace.ReadOnlySpan) int {
		return int(attrInt(a, "messaging.kafka.offset") - attrInt(b, "messaging.kafka.offset"))
	})
	return out
}

func attrInt(s sdktrace.ReadOnlySpan, key attribute.Key) int64 {
	for _, kv := range s.Attributes() {
		if kv.Key == key {
			return kv.Value.AsInt64()
		}
	}
	return -1
}

func linksOfKind(s sdktrace.ReadOnlySpan, kind tracing.LinkKind) []sdktrace.Link {
	var out []sdktrace.Link
	for _, l := range s.Links() {
		for _, kv := range l.Attributes {
			if kv.Key == tracing.AttrLinkKind && kv.Value.AsString() == string(kind) {
				out = append(out, l)
			}
		}
	}
	return out
}

func linkVersion(l sdktrace.Link) int64 {
	for _, kv := range l.Attributes {
		if kv.Key == tracing.AttrStateVersion {
			return kv.Value.AsInt64()
		}
	}
	return -1
}

// Five updates of one key: each write links to the writer of the previous
// value, in order, with versions 1..4 of the values replaced.
func TestIntegrationUpdatesLinkToPreviousWriter(t *testing.T) {
	e := newEnv(t)
	input, group := kafkatest.Topic(t, "updates"), kafkatest.Group(t, "counter")
	var recs [][3]string
	for i := range 5 {
		tp, _, _ := traceparent(i)
		recs = append(recs, [3]string{"k", "x", tp})
	}
	e.produce(input, recs...)
	rt := e.runtime()
	// One changelog record (lineage version) per update: no record cache
	// (TestIntegrationRecordCache covers the cached lineage).
	r := e.start(rt, counterGraph(rt, group, input), t.TempDir(), noCache)
	r.waitHandled(t, 5)

	spans := processSpans(e, input)
	if len(spans) != 5 {
		t.Fatalf("%d process spans, want 5", len(spans))
	}
	for i, s := range spans {
		_, tid, sid := traceparent(i)
		if s.Parent().TraceID() != tid || s.Parent().SpanID() != sid {
			t.Errorf("span %d: parent %s/%s, want the record's traceparent %s/%s", i, s.Parent().TraceID(), s.Parent().SpanID(), tid, sid)
		}
		if s.SpanKind() != trace.SpanKindConsumer {
			t.Errorf("span %d kind %v", i, s.SpanKind())
		}
		prev := linksOfKind(s, tracing.LinkPreviousValue)
		if i == 0 {
			if len(prev) != 0 {
				t.Errorf("first write links to a previous writer: %v", prev)
			}
			continue
		}
		if len(prev) != 1 {
			t.Fatalf("span %d has %d previous_value links, want 1", i, len(prev))
		}
		if prev[0].SpanContext.SpanID() != spans[i-1].SpanContext().SpanID() || prev[0].SpanContext.TraceID() != spans[i-1].SpanContext().TraceID() {
			t.Errorf("span %d links to %s, want the writer of version %d, %s", i, prev[0].SpanContext.SpanID(), i, spans[i-1].SpanContext().SpanID())
		}
		if v := linkVersion(prev[0]); v != int64(i) {
			t.Errorf("span %d: link version %d, want %d", i, v, i)
		}
	}
	v, err := r.p.Goka().Get("k")
	if err != nil {
		t.Fatal(err)
	}
	st := v.(*processors.Stored)
	if st.Value.(int64) != 5 || st.Meta.Version != 5 {
		t.Fatalf("stored %v version %d, want 5 and 5", st.Value, st.Meta.Version)
	}
	if processors.SpanContextOf(st.Meta.Writer).SpanID() != spans[4].SpanContext().SpanID() {
		t.Fatalf("stored writer %x, want the last process span %s", st.Meta.Writer.SpanID, spans[4].SpanContext().SpanID())
	}

	// The lineage index explains the value: five versions, newest first,
	// each with its writer span and its source record.
	versions, err := r.p.Lineage("k")
	if err != nil {
		t.Fatal(err)
	}
	if len(versions) != 5 {
		t.Fatalf("lineage has %d versions, want 5", len(versions))
	}
	for i, v := range versions {
		span := spans[4-i]
		if v.Version != uint64(5-i) || processors.SpanContextOf(v.Writer).SpanID() != span.SpanContext().SpanID() ||
			v.Sources[0].Topic != input || v.Sources[0].Offset != attrInt(span, "messaging.kafka.offset") {
			t.Errorf("lineage[%d] = version %d writer %x source %+v; want version %d by %s from offset %d",
				i, v.Version, v.Writer.SpanID, v.Sources[0], 5-i, span.SpanContext().SpanID(), attrInt(span, "messaging.kafka.offset"))
		}
	}
}

// After the local state is deleted and restored from the changelog, the
// next update still links to the writer from before the restore.
func TestIntegrationLinksSurviveRestore(t *testing.T) {
	e := newEnv(t)
	input, group := kafkatest.Topic(t, "restore"), kafkatest.Group(t, "counter")
	state := t.TempDir()
	tp0, _, _ := traceparent(0)
	tp1, _, _ := traceparent(1)
	e.produce(input, [3]string{"k", "a", tp0}, [3]string{"k", "b", tp1})
	rt := e.runtime()
	// One lineage version per update: no record cache.
	r := e.start(rt, counterGraph(rt, group, input), state, noCache)
	r.waitHandled(t, 2)
	r.stop(t)
	before := processSpans(e, input)
	if len(before) != 2 {
		t.Fatalf("%d spans before restore", len(before))
	}
	if err := os.RemoveAll(state); err != nil {
		t.Fatal(err)
	}

	tp2, _, _ := traceparent(2)
	e.produce(input, [3]string{"k", "c", tp2})
	rt = e.runtime()
	r = e.start(rt, counterGraph(rt, group, input), state, noCache)
	r.waitHandled(t, 1)
	after := processSpans(e, input)
	if len(after) != 3 {
		t.Fatalf("%d spans after restart, want 3 (no reprocessing)", len(after))
	}
	prev := linksOfKind(after[2], tracing.LinkPreviousValue)
	if len(prev) != 1 || prev[0].SpanContext.SpanID() != before[1].SpanContext().SpanID() || linkVersion(prev[0]) != 2 {
		t.Fatalf("update after restore links %v, want previous_value to %s version 2", prev, before[1].SpanContext().SpanID())
	}
	v, err := r.p.Goka().Get("k")
	if err != nil || v.(*processors.Stored).Value.(int64) != 3 {
		t.Fatalf("count after restore = %v (%v), want 3", v, err)
	}
	// The lineage was rebuilt from the changelog during the restore.
	versions, err := r.p.Lineage("k")
	if err != nil {
		t.Fatal(err)
	}
	if len(versions) != 3 || versions[2].Version != 1 || processors.SpanContextOf(versions[1].Writer).SpanID() != before[1].SpanContext().SpanID() {
		t.Fatalf("lineage after restore: %d versions %+v", len(versions), versions)
	}
}

// Redelivered records that the state already holds (a crash between the
// table write and the offset commit) are not applied again.
func TestIntegrationReplayedRecordsDoNotChangeState(t *testing.T) {
	e := newEnv(t)
	input, group := kafkatest.Topic(t, "replay"), kafkatest.Group(t, "counter")
	state := t.TempDir()
	var recs [][3]string
	for i := range 20 {
		recs = append(recs, [3]string{"k" + strconv.Itoa(i%3), "x", ""})
	}
	e.produce(input, recs...)
	rt := e.runtime()
	r := e.start(rt, counterGraph(rt, group, input), state)
	r.waitHandled(t, 20)
	r.stop(t)

	// Rewind the group to the start, as if its commits had been lost.
	rewind(t, e, group, input, 4)

	rt = e.runtime()
	r = e.start(rt, counterGraph(rt, group, input), state)
	r.waitHandled(t, 20)
	if rt.Tally().Replayed() != 20 || rt.Tally().Processed() != 0 {
		t.Fatalf("after rewind: %d replayed, %d processed; want 20 and 0", rt.Tally().Replayed(), rt.Tally().Processed())
	}
	// 20 records over keys k0,k1,k2: 7, 7 and 6.
	for key, want := range map[string]int64{"k0": 7, "k1": 7, "k2": 6} {
		v, err := r.p.Goka().Get(key)
		if err != nil || v.(*processors.Stored).Value.(int64) != want {
			t.Errorf("%s = %v (%v), want %d", key, v, err, want)
		}
	}
}

// A redelivered record is re-run against the value it was first applied
// to, with its state write suppressed: its other outputs come out again,
// identical, and the state does not change.
func TestIntegrationReplayedRecordsProduceTheirOutputsAgain(t *testing.T) {
	// With the record cache the six updates become one version: the
	// re-runs rebuild the values in between from the version before it.
	// Without it, each update is a version of its own.
	t.Run("cache", func(t *testing.T) { replayedRecordsProduceTheirOutputsAgain(t) })
	t.Run("no-cache", func(t *testing.T) { replayedRecordsProduceTheirOutputsAgain(t, noCache) })
}

func replayedRecordsProduceTheirOutputsAgain(t *testing.T, opts ...processors.Option) {
	e := newEnv(t)
	input, output, group := kafkatest.Topic(t, "replay-in"), kafkatest.Topic(t, "replay-out"), kafkatest.Group(t, "counter")
	kafkatest.CreateTopic(t, e.kafka.Brokers, input, 1)
	graph := func(rt *processors.Runtime) *goka.GroupGraph {
		return processors.DefineGroup(rt, goka.Group(group),
			goka.Input(goka.Stream(input), new(codec.Bytes), processors.Handle(rt, identity, func(ctx goka.Context, _ []byte) error {
				var n int64
				if v := ctx.Value(); v != nil {
					n = v.(int64)
				}
				ctx.SetValue(n + 1)
				ctx.Emit(goka.Stream(output), ctx.Key(), []byte(ctx.Key()+"="+strconv.FormatInt(n+1, 10)))
				return nil
			})),
			processors.Persist(new(codec.Int64)),
			goka.Output(goka.Stream(output), new(codec.Bytes)),
		)
	}
	var recs [][3]string
	for i := range 6 {
		recs = append(recs, [3]string{"k" + strconv.Itoa(i%2), "x", ""})
	}
	e.produce(input, recs...)
	state := t.TempDir()
	rt := e.runtime()
	r := e.start(rt, graph(rt), state, opts...)
	r.waitHandled(t, 6)
	r.stop(t)
	rewind(t, e, group, input, 1)

	rt = e.runtime()
	r = e.start(rt, graph(rt), state, opts...)
	r.waitHandled(t, 6)
	if rt.Tally().Replayed() != 6 || rt.Tally().Processed() != 0 {
		t.Fatalf("replayed %d processed %d, want 6 and 0", rt.Tally().Replayed(), rt.Tally().Processed())
	}
	r.stop(t)

	// Per key (one partition each), the three outputs appear twice.
	perKey := map[string][]string{}
	for _, v := range consumeAll(t, e, output, 12) {
		k, n, _ := strings.Cut(v, "=")
		perKey[k] = append(perKey[k], n)
	}
	for _, k := range []string{"k0", "k1"} {
		if got := strings.Join(perKey[k], ","); got != "1,2,3,1,2,3" {
			t.Errorf("outputs of %s: %s, want 1,2,3,1,2,3", k, got)
		}
	}
}

// rewind commits offset 0 for every partition of topic, as if the group's
// commits had been lost.
func rewind(t *testing.T, e *env, group, topic string, partitions int32) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.kafka.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	offsets := kadm.Offsets{}
	for p := range partitions {
		offsets.AddOffset(topic, p, 0, -1)
	}
	resp, err := kadm.NewClient(cl).CommitOffsets(t.Context(), group, offsets)
	if err != nil || resp.Error() != nil {
		t.Fatalf("rewind: %v %v", err, resp.Error())
	}
}

// consumeAll reads n record values from topic, in partition order.
func consumeAll(t *testing.T, e *env, topic string, n int) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.kafka.Brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var got []string
	kafkatest.WaitFor(t, waitTimeout, fmt.Sprintf("%d records in %s", n, topic), func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
		return len(got) >= n
	})
	return got
}
