package replay_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/weftstream/weft/internal/kafkatest"
	"github.com/weftstream/weft/kafkaclient"
	"github.com/weftstream/weft/processors"
	"github.com/weftstream/weft/replay"
	"github.com/weftstream/weft/topofile"
	"github.com/weftstream/weft/topology"
	"github.com/weftstream/weft/tracing"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

const waitTimeout = time.Minute

// event is one produced input record and where it landed.
type event struct {
	key       string
	amount    int64
	segment   string
	partition int32
	offset    int64
	ts        time.Time
}

// fixture is a topology (an aggregate per key and a count per segment,
// the latter through a repartition topic) over a fresh input topic.
type fixture struct {
	t      testing.TB
	kafka  kafkaclient.Config
	opts   []kgo.Opt
	adm    *kadm.Client
	file   *topofile.File
	topic  string
	app    string
	events []event
}

func newFixture(t testing.TB) *fixture {
	brokers := kafkatest.Brokers(t)
	f := &fixture{t: t, kafka: kafkaclient.Config{Brokers: brokers, Partitions: 4},
		topic: kafkatest.Topic(t, "events"), app: kafkatest.Group(t, "app")}
	kafkatest.CreateTopic(t, brokers, f.topic, 4)
	yaml := fmt.Sprintf(`app: %s
streams:
  events: {topic: %s, codec: json}
pipelines:
  - name: totals
    from: events
    steps:
      - group_by_key: {}
      - aggregate: {initial: "0", add: "aggregate + value.amount"}
  - name: per-segment
    from: events
    steps:
      - group_by: "value.segment"
      - count: {}
`, f.app, f.topic)
	file, err := topofile.Load("test.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	f.file = file
	opts, err := f.kafka.FranzOptions()
	if err != nil {
		t.Fatal(err)
	}
	f.opts = opts
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	f.adm = kadm.NewClient(cl)
	return f
}

// produce produces n events (keys k00..k19, amounts 1..7, segments s0..s2)
// with timestamp ts, partitioned as goka does (fnv-1a).
func (f *fixture) produce(n int, ts time.Time) {
	f.t.Helper()
	cl, err := kgo.NewClient(append(f.opts, kgo.RecordPartitioner(kgo.StickyKeyPartitioner(kgo.SaramaCompatHasher(func(b []byte) uint32 {
		h := fnv.New32a()
		h.Write(b)
		return h.Sum32()
	}))))...)
	if err != nil {
		f.t.Fatal(err)
	}
	defer cl.Close()
	base := len(f.events)
	recs := make([]*kgo.Record, n)
	evs := make([]event, n)
	for i := range n {
		j := base + i
		evs[i] = event{key: fmt.Sprintf("k%02d", j%20), amount: int64(j%7 + 1), segment: fmt.Sprintf("s%d", j%3), ts: ts}
		v, _ := json.Marshal(map[string]any{"amount": evs[i].amount, "segment": evs[i].segment})
		recs[i] = &kgo.Record{Topic: f.topic, Key: []byte(evs[i].key), Value: v, Timestamp: ts,
			Headers: []kgo.RecordHeader{{Key: "traceparent", Value: []byte(traceparent(j))}}}
	}
	if err := cl.ProduceSync(f.t.Context(), recs...).FirstErr(); err != nil {
		f.t.Fatal(err)
	}
	for i, r := range recs {
		evs[i].partition, evs[i].offset = r.Partition, r.Offset
	}
	f.events = append(f.events, evs...)
}

// fold computes the two tables from the events keep selects, independently
// of weft: the sum of amounts per key and the count per segment.
func fold(evs []event, keep func(event) bool) (totals, segments map[string]int64) {
	totals, segments = map[string]int64{}, map[string]int64{}
	for _, e := range evs {
		if keep(e) {
			totals[e.key] += e.amount
			segments[e.segment]++
		}
	}
	return totals, segments
}

func all(event) bool { return true }

// traceparent is the W3C trace context of the j-th produced event: trace
// id j+1, span id j+1, sampled.
func traceparent(j int) string { return fmt.Sprintf("00-%032x-%016x-01", j+1, j+1) }

// table reads a table topic as numbers.
func (f *fixture) table(topic string) map[string]int64 {
	f.t.Helper()
	raw, err := replay.ReadTable(f.t.Context(), f.opts, topic)
	if err != nil {
		f.t.Fatal(err)
	}
	out := map[string]int64{}
	for k, v := range raw {
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			f.t.Fatalf("%s[%s] = %q: not a number", topic, k, v)
		}
		out[k] = n
	}
	return out
}

func equalMaps(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// runLive runs the live topology until both tables equal the fold of all
// events, then stops it.
func (f *fixture) runLive(stateDir string) {
	f.t.Helper()
	_, stop := f.startLive(stateDir)
	if err := stop(); err != nil {
		f.t.Fatal(err)
	}
}

// startLive runs the live topology until both tables equal the fold of all
// events; stop stops it.
func (f *fixture) startLive(stateDir string) (groups []*topology.Group, stop func() error) {
	f.t.Helper()
	c, err := topology.Compile(f.file.Topology, topology.WithProcessorOptions(processors.WithKafka(f.kafka)))
	if err != nil {
		f.t.Fatal(err)
	}
	procs, err := topology.NewProcessors(f.t.Context(), slog.New(slog.DiscardHandler), f.kafka, stateDir, c.Groups)
	if err != nil {
		f.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(f.t.Context())
	done := make(chan error, 1)
	go func() { done <- processors.RunAll(ctx, procs...) }()
	wantT, wantS := fold(f.events, all)
	kafkatest.WaitFor(f.t, waitTimeout, "the live tables", func() bool {
		select {
		case err := <-done:
			f.t.Fatalf("the live processors stopped: %v", err)
		default:
		}
		return equalMaps(f.table(f.app+"-totals-table"), wantT) && equalMaps(f.table(f.app+"-per-segment-table"), wantS)
	})
	return c.Groups, func() error {
		cancel()
		return <-done
	}
}

func (f *fixture) execute(ctx context.Context, spec replay.Spec, stateDir string) (*replay.Plan, *replay.Summary, error) {
	f.t.Helper()
	p, err := replay.MakePlan(f.t.Context(), f.adm, spec)
	if err != nil {
		f.t.Fatal(err)
	}
	s, err := replay.Execute(ctx, f.adm, p, replay.Options{Kafka: f.kafka, StateDir: stateDir, PollInterval: 100 * time.Millisecond})
	return p, s, err
}

// snapshot is what a plan must not change: the topics and the committed
// offsets of the rebuild's groups.
func (f *fixture) snapshot(groups ...string) string {
	f.t.Helper()
	topics, err := f.adm.ListTopics(f.t.Context())
	if err != nil {
		f.t.Fatal(err)
	}
	names := topics.Names()
	slices.Sort(names)
	s := fmt.Sprint(names)
	for _, g := range groups {
		o, err := f.adm.FetchOffsets(f.t.Context(), g)
		if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
			f.t.Fatal(err)
		}
		s += fmt.Sprintf(" %s:%v", g, o.Offsets())
	}
	return s
}

// waitCommitted waits until group's committed offsets add up to n records.
func (f *fixture) waitCommitted(group string, n int64) {
	f.t.Helper()
	kafkatest.WaitFor(f.t, waitTimeout, fmt.Sprintf("group %s to commit %d records", group, n), func() bool {
		o, err := f.adm.FetchOffsets(f.t.Context(), group)
		if err != nil {
			return false
		}
		var sum int64
		for _, ps := range o.Offsets() {
			for _, off := range ps {
				sum += off.At
			}
		}
		return sum == n
	})
}

func TestIntegrationReplayRebuildEqualsLive(t *testing.T) {
	f := newFixture(t)
	f.produce(300, time.Now().Add(-time.Hour))
	f.runLive(filepath.Join(t.TempDir(), "live"))

	into := f.app + "-v2"
	spec := replay.Spec{File: f.file, Into: into}
	before := f.snapshot(into+"-totals", into+"-per-segment")
	p, err := replay.MakePlan(t.Context(), f.adm, spec)
	if err != nil {
		t.Fatal(err)
	}
	if after := f.snapshot(into+"-totals", into+"-per-segment"); after != before {
		t.Fatalf("making the plan changed the cluster:\nbefore %s\nafter  %s", before, after)
	}
	if p.Records != 300 || p.Resume || len(p.Partitions) != 4 {
		t.Fatalf("plan: %d records over %d partitions, resume %v; want 300 over 4, no resume", p.Records, len(p.Partitions), p.Resume)
	}
	wantTables := []string{into + "-per-segment-table", into + "-totals-table"}
	tables := slices.Sorted(slices.Values(p.Tables))
	if !slices.Equal(tables, wantTables) || !slices.Contains(p.InternalTopics, into+"-per-segment-repartition") {
		t.Fatalf("plan tables %v internal %v; want %v and %s", tables, p.InternalTopics, wantTables, into+"-per-segment-repartition")
	}

	s, err := replay.Execute(t.Context(), f.adm, p, replay.Options{Kafka: f.kafka, StateDir: t.TempDir(), PollInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if s.Records != 300 {
		t.Errorf("summary: %d records read, want 300", s.Records)
	}
	wantT, wantS := fold(f.events, all)
	if got := f.table(into + "-totals-table"); !equalMaps(got, wantT) {
		t.Errorf("rebuilt totals %v, want %v", got, wantT)
	}
	if got := f.table(into + "-per-segment-table"); !equalMaps(got, wantS) {
		t.Errorf("rebuilt per-segment %v, want %v", got, wantS)
	}
	diffs, err := replay.Verify(t.Context(), f.opts, p)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range diffs {
		if !d.Same() || d.Equal == 0 {
			t.Errorf("verify %s vs %s: %+v", d.Rebuilt, d.Live, d)
		}
	}

	// The same job again: done already. With --restart: everything again,
	// to the same tables.
	again, err := replay.MakePlan(t.Context(), f.adm, spec)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Resume || again.Remaining != 0 {
		t.Errorf("the finished job planned again: resume %v, %d records left; want a resume with 0 left", again.Resume, again.Remaining)
	}
	spec.Restart = true
	_, s, err = f.execute(t.Context(), spec, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if s.Records != 300 || s.Groups[0].Processed != 300 {
		t.Errorf("--restart: %d records read, %+v; want all 300 again", s.Records, s.Groups)
	}
	if got := f.table(into + "-totals-table"); !equalMaps(got, wantT) {
		t.Errorf("restarted totals %v, want %v", got, wantT)
	}
	if got := f.table(into + "-per-segment-table"); !equalMaps(got, wantS) {
		t.Errorf("restarted per-segment %v, want %v", got, wantS)
	}
}

func TestIntegrationReplayFromOffsetAndTime(t *testing.T) {
	f := newFixture(t)
	t0 := time.Now().Add(-2 * time.Hour).Truncate(time.Millisecond)
	f.produce(150, t0)
	f.produce(150, t0.Add(time.Hour))

	from := int64(20)
	into := f.app + "-off"
	if _, _, err := f.execute(t.Context(), replay.Spec{File: f.file, Into: into, From: replay.From{Offset: &from}}, t.TempDir()); err != nil {
		t.Fatal(err)
	}
	wantT, wantS := fold(f.events, func(e event) bool { return e.offset >= from })
	if got := f.table(into + "-totals-table"); !equalMaps(got, wantT) {
		t.Errorf("from offset %d: totals %v, want %v", from, got, wantT)
	}
	if got := f.table(into + "-per-segment-table"); !equalMaps(got, wantS) {
		t.Errorf("from offset %d: per-segment %v, want %v", from, got, wantS)
	}

	into = f.app + "-time"
	at := t0.Add(30 * time.Minute)
	if _, _, err := f.execute(t.Context(), replay.Spec{File: f.file, Into: into, Pipelines: []string{"totals"}, From: replay.From{Time: at}}, t.TempDir()); err != nil {
		t.Fatal(err)
	}
	wantT, _ = fold(f.events, func(e event) bool { return !e.ts.Before(at) })
	if got := f.table(into + "-totals-table"); !equalMaps(got, wantT) {
		t.Errorf("from time: totals %v, want %v", got, wantT)
	}

	// A bounded job: from the start up to the first hour only.
	into = f.app + "-until"
	p, _, err := f.execute(t.Context(), replay.Spec{File: f.file, Into: into, Until: replay.Until{Time: t0.Add(time.Minute)}}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if p.Records != 150 {
		t.Errorf("until time: plan reads %d records, want 150", p.Records)
	}
	wantT, wantS = fold(f.events, func(e event) bool { return !e.ts.After(t0.Add(time.Minute)) })
	if got := f.table(into + "-totals-table"); !equalMaps(got, wantT) {
		t.Errorf("until time: totals %v, want %v", got, wantT)
	}
	if got := f.table(into + "-per-segment-table"); !equalMaps(got, wantS) {
		t.Errorf("until time: per-segment %v, want %v", got, wantS)
	}
	// The same job without an end continues where the bounded one ended:
	// the records it skipped past its end are read now.
	p, s, err := f.execute(t.Context(), replay.Spec{File: f.file, Into: into}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if !p.Resume || p.Remaining != 150 || s.Records != 150 {
		t.Errorf("continuing the bounded job: resume %v, %d left, %d read; want a resume reading the other 150", p.Resume, p.Remaining, s.Records)
	}
	wantT, wantS = fold(f.events, all)
	if got := f.table(into + "-totals-table"); !equalMaps(got, wantT) {
		t.Errorf("continued: totals %v, want %v", got, wantT)
	}
	if got := f.table(into + "-per-segment-table"); !equalMaps(got, wantS) {
		t.Errorf("continued: per-segment %v, want %v", got, wantS)
	}

	// Bad input, before anything changes.
	if _, err := replay.MakePlan(t.Context(), f.adm, replay.Spec{File: f.file, Into: "x", Pipelines: []string{"nope"}}); err == nil {
		t.Error("an unknown pipeline was accepted")
	}
	if _, err := replay.MakePlan(t.Context(), f.adm, replay.Spec{File: f.file, Into: "x", From: replay.From{Time: time.Now().Add(time.Hour)}}); err == nil {
		t.Error("a start time in the future was accepted")
	}
	big := int64(1 << 40)
	p, err = replay.MakePlan(t.Context(), f.adm, replay.Spec{File: f.file, Into: "x", From: replay.From{Offset: &big}})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range p.Partitions {
		if r.From != r.LogEnd || r.Note == "" {
			t.Errorf("offset past the end: %+v, want clamped to the end with a note", r)
		}
	}
}

func TestIntegrationReplayResume(t *testing.T) {
	f := newFixture(t)
	f.produce(40000, time.Now().Add(-time.Hour))
	into := f.app + "-resume"
	state := t.TempDir()
	spec := replay.Spec{File: f.file, Into: into}
	p, err := replay.MakePlan(t.Context(), f.adm, spec)
	if err != nil {
		t.Fatal(err)
	}
	// Kill the job (cancel its context) once it has committed progress.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	_, err = replay.Execute(ctx, f.adm, p, replay.Options{Kafka: f.kafka, StateDir: state, PollInterval: 50 * time.Millisecond,
		Progress: func(done, total int64) {
			if done > 0 {
				cancel()
			}
		}})
	if err == nil {
		t.Fatal("the cancelled job reported success")
	}
	// The second run starts in another second than the first, so that its
	// own name differs from the first run's.
	kafkatest.WaitFor(t, 2*time.Second, "the next second", func() bool {
		return replay.JobName("into", into, nil, time.Now()) != p.Job
	})
	p2, err := replay.MakePlan(t.Context(), f.adm, spec)
	if err != nil {
		t.Fatal(err)
	}
	if !p2.Resume {
		t.Fatalf("the second plan does not resume: resume %v, %d of %d records left", p2.Resume, p2.Remaining, p2.Records)
	}
	if p2.Job == p.Job {
		t.Fatalf("the second plan is named %s before ContinueJob, as the first", p2.Job)
	}
	if err := p2.ContinueJob(t.Context(), f.opts); err != nil {
		t.Fatal(err)
	}
	if p2.Job != p.Job {
		t.Fatalf("the resumed job is named %s, want the first run's %s (notes %v)", p2.Job, p.Job, p2.Notes)
	}
	t.Logf("killed after %d of %d records", p2.Records-p2.Remaining, p2.Records)
	if _, err := replay.Execute(t.Context(), f.adm, p2, replay.Options{Kafka: f.kafka, StateDir: state, PollInterval: 100 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	wantT, wantS := fold(f.events, all)
	if got := f.table(into + "-totals-table"); !equalMaps(got, wantT) {
		t.Errorf("resumed totals %v, want %v", got, wantT)
	}
	if got := f.table(into + "-per-segment-table"); !equalMaps(got, wantS) {
		t.Errorf("resumed per-segment %v, want %v", got, wantS)
	}
	for _, table := range []string{into + "-totals-table", into + "-per-segment-table"} {
		if got := f.jobs(f.changelog(table, nil)); len(got) != 1 || got[p.Job] == 0 {
			t.Errorf("resumed %s: values by replay job %v, want all named %s", table, got, p.Job)
		}
	}
}

func TestIntegrationReplaySpansLinkToOriginals(t *testing.T) {
	f := newFixture(t)
	f.produce(60, time.Now().Add(-time.Hour))
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithSpanProcessor(spans))
	p, err := replay.MakePlan(t.Context(), f.adm, replay.Spec{File: f.file, Into: f.app + "-traced", Pipelines: []string{"totals"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := replay.Execute(t.Context(), f.adm, p, replay.Options{Kafka: f.kafka, StateDir: t.TempDir(), TracerProvider: tp,
		PollInterval: 100 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	original := map[string]string{} // partition@offset -> traceparent
	for j, e := range f.events {
		original[fmt.Sprintf("%d@%d", e.partition, e.offset)] = traceparent(j)
	}
	checked := 0
	for _, s := range spans.Ended() {
		if s.Name() != "process "+f.topic {
			continue
		}
		var part, off string
		replayed := false
		for _, a := range s.Attributes() {
			switch a.Key {
			case "messaging.destination.partition.id":
				part = a.Value.Emit()
			case "messaging.kafka.offset":
				off = a.Value.Emit()
			case tracing.AttrReplay:
				replayed = a.Value.AsBool()
			}
		}
		want, ok := original[part+"@"+off]
		if !ok {
			t.Fatalf("span for %s@%s: no such record", part, off)
		}
		if !replayed {
			t.Errorf("span for %s@%s lacks weft.replay=true", part, off)
		}
		if s.Parent().IsValid() {
			t.Errorf("span for %s@%s has parent %s; a replay span is a new root", part, off, s.Parent().TraceID())
		}
		var links []string
		for _, l := range s.Links() {
			for _, a := range l.Attributes {
				if a.Key == tracing.AttrLinkKind && a.Value.AsString() == string(tracing.LinkReplayedFrom) {
					links = append(links, fmt.Sprintf("00-%s-%s-01", l.SpanContext.TraceID(), l.SpanContext.SpanID()))
				}
			}
		}
		if len(links) != 1 || links[0] != want {
			t.Errorf("span for %s@%s: replayed_from links %v, want [%s]", part, off, links, want)
		}
		checked++
	}
	if checked != len(f.events) {
		t.Errorf("checked %d process spans, want one per record (%d)", checked, len(f.events))
	}
}

func TestIntegrationResetReprocessesFromEarliest(t *testing.T) {
	f := newFixture(t)
	f.produce(300, time.Now().Add(-time.Hour))
	state := t.TempDir()
	_, stop := f.startLive(state)
	spec := replay.ResetSpec{File: f.file, StateDir: state}
	rp, err := replay.MakeResetPlan(t.Context(), f.adm, spec)
	if err != nil {
		t.Fatal(err)
	}
	if len(rp.Active) == 0 {
		t.Fatal("the plan shows no active members while the live groups run")
	}
	err = replay.ExecuteReset(t.Context(), f.adm, slog.New(slog.DiscardHandler), state, rp)
	if err == nil || !strings.Contains(err.Error(), "active members") || !strings.Contains(err.Error(), f.app+"-totals") {
		t.Fatalf("reset while the groups run: %v; want a refusal naming the group and its members", err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// The members leave the groups when they stop; the plan sees it.
	kafkatest.WaitFor(t, waitTimeout, "the groups to be empty", func() bool {
		rp, err = replay.MakeResetPlan(t.Context(), f.adm, spec)
		return err == nil && len(rp.Active) == 0
	})
	wantDeleted := []string{f.app + "-per-segment-repartition", f.app + "-per-segment-table", f.app + "-totals-table"}
	if !slices.Equal(rp.DeleteTopics, wantDeleted) {
		t.Errorf("plan deletes %v, want %v", rp.DeleteTopics, wantDeleted)
	}
	if err := replay.ExecuteReset(t.Context(), f.adm, slog.New(slog.DiscardHandler), state, rp); err != nil {
		t.Fatal(err)
	}
	for _, g := range rp.Groups {
		if _, err := os.Stat(filepath.Join(state, "processors", g.Group)); !os.IsNotExist(err) {
			t.Errorf("local state of %s is still there (%v)", g.Group, err)
		}
		o, err := f.adm.FetchOffsets(t.Context(), g.Group)
		if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
			t.Fatal(err)
		}
		for _, r := range o.Sorted() {
			if r.Topic != f.topic || r.At != 0 {
				t.Errorf("group %s after the reset: committed %s/%d@%d, want only %s at 0", g.Group, r.Topic, r.Partition, r.At, f.topic)
			}
		}
	}
	// The live topology runs again and reprocesses every record.
	groups, stop := f.startLive(state)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	for _, g := range groups {
		if n := g.Runtime.Tally().Processed(); n != 300 {
			t.Errorf("group %s processed %d records after the reset, want 300", g.Name, n)
		}
	}
}

func TestIntegrationReplayKeyUntilTime(t *testing.T) {
	f := newFixture(t)
	t0 := time.Now().Add(-2 * time.Hour).Truncate(time.Millisecond)
	f.produce(150, t0)
	f.produce(150, t0.Add(time.Hour))
	until := t0.Add(30 * time.Minute)
	st, err := replay.KeyAt(t.Context(), f.opts, replay.KeySpec{File: f.file, Pipeline: "totals", Key: "k03", Until: until})
	if err != nil {
		t.Fatal(err)
	}
	var want, n, inPartition int64
	var offsets []int64
	for _, e := range f.events {
		if e.partition == st.Partition {
			inPartition++
		}
		if e.key == "k03" && !e.ts.After(until) {
			want += e.amount
			n++
			offsets = append(offsets, e.offset)
		}
	}
	if !st.Found || string(st.Value) != strconv.FormatInt(want, 10) {
		t.Errorf("k03 at %s = %q (found %v), want %d", until, st.Value, st.Found, want)
	}
	var got []int64
	for _, r := range st.Records {
		got = append(got, r.Offset)
	}
	if !slices.Equal(got, offsets) {
		t.Errorf("records folded at offsets %v, want %v", got, offsets)
	}
	if st.Read != inPartition {
		t.Errorf("read %d records, want the %d of partition %d", st.Read, inPartition, st.Partition)
	}
	if _, err := replay.KeyAt(t.Context(), f.opts, replay.KeySpec{File: f.file, Pipeline: "per-segment", Key: "s1", Until: until}); err == nil {
		t.Error("--key on a re-keyed pipeline was accepted")
	}
}

func TestIntegrationReplayFromPartitionOffsets(t *testing.T) {
	f := newFixture(t)
	f.produce(200, time.Now().Add(-time.Hour))
	// Partition 0 from 10, 1 from 0, 3 past its end (clamped: nothing),
	// 2 not named (from the log start).
	csv := fmt.Sprintf("%s,0,10\n%s,1,0\n%s,3,100000\n", f.topic, f.topic, f.topic)
	offs, err := replay.ReadOffsetsCSV(strings.NewReader(csv))
	if err != nil {
		t.Fatal(err)
	}
	into := f.app + "-file"
	p, _, err := f.execute(t.Context(), replay.Spec{File: f.file, Into: into, Pipelines: []string{"totals"}, From: replay.From{Offsets: offs}}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	start := map[int32]int64{0: 10, 1: 0, 2: 0, 3: 1 << 62}
	for _, r := range p.Partitions {
		want := min(start[r.Partition], r.LogEnd)
		if r.From != want {
			t.Errorf("partition %d starts at %d, want %d", r.Partition, r.From, want)
		}
		if (r.Partition == 2 || r.Partition == 3) && r.Note == "" {
			t.Errorf("partition %d: no note saying why it starts at %d", r.Partition, r.From)
		}
	}
	wantT, _ := fold(f.events, func(e event) bool { return e.offset >= start[e.partition] })
	if got := f.table(into + "-totals-table"); !equalMaps(got, wantT) {
		t.Errorf("from the file's offsets: totals %v, want %v", got, wantT)
	}

	// Per partition on every input topic, as --from-offset 1=5 gives it.
	offs, err = replay.ParsePartitionOffsets("1=5")
	if err != nil {
		t.Fatal(err)
	}
	into = f.app + "-parts"
	if _, _, err := f.execute(t.Context(), replay.Spec{File: f.file, Into: into, Pipelines: []string{"totals"}, From: replay.From{Offsets: offs}}, t.TempDir()); err != nil {
		t.Fatal(err)
	}
	wantT, _ = fold(f.events, func(e event) bool { return e.partition != 1 || e.offset >= 5 })
	if got := f.table(into + "-totals-table"); !equalMaps(got, wantT) {
		t.Errorf("from partition 1 offset 5: totals %v, want %v", got, wantT)
	}

	// An unknown topic or partition is an error before anything changes.
	for _, bad := range []replay.PartitionOffsets{{"no-such-topic": {0: 1}}, {f.topic: {9: 1}}, {"": {4: 0}}} {
		before := f.snapshot(f.app + "-bad-totals")
		if _, err := replay.MakePlan(t.Context(), f.adm, replay.Spec{File: f.file, Into: f.app + "-bad", From: replay.From{Offsets: bad}}); err == nil {
			t.Errorf("start offsets %v were accepted", bad)
		}
		if after := f.snapshot(f.app + "-bad-totals"); after != before {
			t.Errorf("a refused plan changed the cluster:\nbefore %s\nafter  %s", before, after)
		}
	}
}
