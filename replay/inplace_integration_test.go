package replay_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/weftstream/weft/internal/kafkatest"
	"github.com/weftstream/weft/processors"
	"github.com/weftstream/weft/replay"
	"github.com/weftstream/weft/topology"
)

// changedKeys counts the keys whose total differs between a and b
// (present in one only, or another value).
func changedKeys(a, b map[string]int64) int {
	n := 0
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			n++
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			n++
		}
	}
	return n
}

// committed is the sum of the committed offsets of group on topic, by
// partition.
func (f *fixture) committed(group string) map[int32]int64 {
	f.t.Helper()
	o, err := f.adm.FetchOffsets(f.t.Context(), group)
	if err != nil {
		f.t.Fatal(err)
	}
	out := map[int32]int64{}
	o.Each(func(r kadm.OffsetResponse) {
		if r.Topic == f.topic {
			out[r.Partition] = r.At
		}
	})
	return out
}

// tableEnds is the end offsets of a table topic, to see that nothing
// was written to it.
func (f *fixture) tableEnds(topic string) string {
	f.t.Helper()
	ends, err := f.adm.ListEndOffsets(f.t.Context(), topic)
	if err != nil {
		f.t.Fatal(err)
	}
	var parts []string
	ends.Each(func(l kadm.ListedOffset) {
		parts = append(parts, fmt.Sprintf("%s/%d:%d", l.Topic, l.Partition, l.Offset))
	})
	slices.Sort(parts)
	return strings.Join(parts, " ")
}

func (f *fixture) inPlace(spec replay.InPlaceSpec) (*replay.InPlacePlan, *replay.Summary, error) {
	f.t.Helper()
	ip, err := replay.MakeInPlacePlan(f.t.Context(), f.adm, f.opts, spec)
	if err != nil {
		f.t.Fatal(err)
	}
	s, err := replay.ExecuteInPlace(f.t.Context(), f.adm, f.opts, ip, replay.Options{Kafka: f.kafka, PollInterval: 100 * time.Millisecond})
	return ip, s, err
}

// The live tables (record cache on: their versions coalesce updates) are
// rewound in place to offset X of every partition and reprocessed to the
// end: the table equals the live one again. Rewound to X alone, it equals
// a fold of only the records before X, and the next run from there
// brings it back to the live table. The plan changes nothing and counts
// the keys that change as an independent fold does.
func TestIntegrationReplayInPlaceRewind(t *testing.T) {
	f := newFixture(t)
	f.produce(120, time.Now().Add(-time.Hour))
	state := filepath.Join(t.TempDir(), "live")
	f.runLive(state)
	f.produce(120, time.Now().Add(-time.Hour)) // a second batch: later versions
	f.runLive(state)
	table, group := f.app+"-totals-table", f.app+"-totals"
	live := f.table(table)
	x := int64(45)
	beforeX, _ := fold(f.events, func(e event) bool { return e.offset < x })
	allT, _ := fold(f.events, all)
	if !equalMaps(live, allT) {
		t.Fatalf("live totals %v, want %v", live, allT)
	}

	// The plan: rewinding to X changes the keys an independent fold says.
	spec := replay.InPlaceSpec{File: f.file, Pipelines: []string{"totals"}, From: replay.From{Offset: &x}, StateDir: state}
	before := f.snapshot(group) + f.tableEnds(table)
	ip, err := replay.MakeInPlacePlan(t.Context(), f.adm, f.opts, spec)
	if err != nil {
		t.Fatal(err)
	}
	if after := f.snapshot(group) + f.tableEnds(table); after != before {
		t.Fatalf("making the plan changed the cluster:\nbefore %s\nafter  %s", before, after)
	}
	if want := changedKeys(beforeX, allT); ip.KeysChanged != want || len(ip.Tables) != 1 || ip.Tables[0].Keys != len(allT) {
		t.Fatalf("plan: %d keys change, tables %+v; want %d of %d", ip.KeysChanged, ip.Tables, want, len(allT))
	}
	for _, r := range ip.Partitions {
		if r.Target == nil || *r.Target != x || r.From > x || r.To != r.LogEnd {
			t.Errorf("plan partition %+v: want target %d, a start at or before it, the end %d", r, x, r.LogEnd)
		}
	}

	// Rewind to X and reprocess to the end: the live table again.
	_, s, err := f.inPlace(spec)
	if err != nil {
		t.Fatal(err)
	}
	if got := f.table(table); !equalMaps(got, allT) {
		t.Errorf("rewound to %d and replayed: %v, want the live table %v", x, got, allT)
	}
	if s.Records < int64(len(f.events))-4*x {
		t.Errorf("the job read %d records, want at least the %d from the target on", s.Records, int64(len(f.events))-4*x)
	}

	// Rewind to X alone: the fold of the records before X; the groups
	// committed the target.
	spec.RewindOnly = true
	if _, _, err := f.inPlace(spec); err != nil {
		t.Fatal(err)
	}
	if got := f.table(table); !equalMaps(got, beforeX) {
		t.Errorf("rewound to %d: %v, want %v", x, got, beforeX)
	}
	for p, at := range f.committed(group) {
		if at != x {
			t.Errorf("after the rewind partition %d is committed at %d, want %d", p, at, x)
		}
	}
	// The next run processes from X on.
	f.runLive(state)
	if got := f.table(table); !equalMaps(got, allT) {
		t.Errorf("run after the rewind: %v, want %v", got, allT)
	}
}

// Without the record cache every update is a version of its own: the
// rewind is exact, the groups restart at the target itself.
func TestIntegrationReplayInPlaceExactVersions(t *testing.T) {
	f := newFixture(t)
	f.produce(160, time.Now().Add(-time.Hour))
	state := filepath.Join(t.TempDir(), "live")
	c, err := topology.Compile(f.file.Topology, topology.WithProcessorOptions(processors.WithKafka(f.kafka)))
	if err != nil {
		t.Fatal(err)
	}
	var groups []*topology.Group
	for _, g := range c.Groups {
		if string(g.Name) == f.app+"-totals" {
			groups = append(groups, g)
		}
	}
	procs, err := topology.NewProcessors(t.Context(), slog.New(slog.DiscardHandler), f.kafka, state, groups, processors.WithRecordCache(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- processors.RunAll(ctx, procs...) }()
	allT, _ := fold(f.events, all)
	table := f.app + "-totals-table"
	kafkatest.WaitFor(t, waitTimeout, "the live table", func() bool { return equalMaps(f.table(table), allT) })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	x := int64(17)
	ip, _, err := f.inPlace(replay.InPlaceSpec{File: f.file, Pipelines: []string{"totals"}, From: replay.From{Offset: &x}, StateDir: state, RewindOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if ip.Tables[0].Coalesced != 0 || ip.Tables[0].Versions != int64(len(f.events)) {
		t.Errorf("table rewind %+v: want %d versions, none coalesced", ip.Tables[0], len(f.events))
	}
	for _, r := range ip.Partitions {
		if r.From != x || r.Records != 0 {
			t.Errorf("partition %+v: want a restart at the target %d with nothing to process", r, x)
		}
	}
	beforeX, _ := fold(f.events, func(e event) bool { return e.offset < x })
	if got := f.table(table); !equalMaps(got, beforeX) {
		t.Errorf("rewound to %d: %v, want %v", x, got, beforeX)
	}
}

// An in-place job is refused while the live groups have members, naming
// them, and changes nothing.
func TestIntegrationReplayInPlaceRefusedWhileLive(t *testing.T) {
	f := newFixture(t)
	f.produce(100, time.Now().Add(-time.Hour))
	state := filepath.Join(t.TempDir(), "live")
	_, stop := f.startLive(state)
	defer stop()
	group, table := f.app+"-totals", f.app+"-totals-table"
	x := int64(5)
	spec := replay.InPlaceSpec{File: f.file, Pipelines: []string{"totals"}, From: replay.From{Offset: &x}, StateDir: state}
	ip, err := replay.MakeInPlacePlan(t.Context(), f.adm, f.opts, spec)
	if err != nil {
		t.Fatal(err)
	}
	if len(ip.Active) == 0 {
		t.Fatal("the plan names no active members of the live group")
	}
	// The live group commits its inputs after the flush that wrote the
	// table, and its offsets must not move under the comparison.
	f.waitCommitted(group, int64(len(f.events)))
	before := f.snapshot(group) + f.tableEnds(table)
	_, err = replay.ExecuteInPlace(t.Context(), f.adm, f.opts, ip, replay.Options{Kafka: f.kafka})
	member := strings.SplitN(strings.TrimPrefix(ip.Active[0], group+": "), " ", 2)[0]
	if err == nil || !strings.Contains(err.Error(), "active members") || !strings.Contains(err.Error(), member) {
		t.Fatalf("in place while live: %v; want a refusal naming member %s", err, member)
	}
	if after := f.snapshot(group) + f.tableEnds(table); after != before {
		t.Fatalf("the refused job changed the cluster:\nbefore %s\nafter  %s", before, after)
	}
	allT, _ := fold(f.events, all)
	if got := f.table(table); !equalMaps(got, allT) {
		t.Errorf("the live table after the refusal: %v, want %v", got, allT)
	}
}

// With Force the job does not refuse the live members: it waits for them
// to leave (here the live processors stop while it waits or before it
// looks) and then rewinds.
func TestIntegrationReplayInPlaceForceWaits(t *testing.T) {
	f := newFixture(t)
	f.produce(100, time.Now().Add(-time.Hour))
	state := filepath.Join(t.TempDir(), "live")
	_, stop := f.startLive(state)
	x := int64(9)
	spec := replay.InPlaceSpec{File: f.file, Pipelines: []string{"totals"}, From: replay.From{Offset: &x}, StateDir: state, RewindOnly: true, Force: true}
	ip, err := replay.MakeInPlacePlan(t.Context(), f.adm, f.opts, spec)
	if err != nil {
		t.Fatal(err)
	}
	if len(ip.Active) == 0 {
		t.Fatal("the plan names no active members of the live group")
	}
	done := make(chan error, 1)
	go func() {
		_, err := replay.ExecuteInPlace(t.Context(), f.adm, f.opts, ip, replay.Options{Kafka: f.kafka, PollInterval: 100 * time.Millisecond})
		done <- err
	}()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("in place with --force: %v", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("in place with --force did not finish after the live group stopped")
	}
	beforeX, _ := fold(f.events, func(e event) bool { return e.offset < x })
	if got := f.table(f.app + "-totals-table"); !equalMaps(got, beforeX) {
		t.Errorf("rewound to %d with --force: %v, want %v", x, got, beforeX)
	}
}

// A live group that stopped before the target (it lagged: records after
// its committed offsets were never processed) is rewound in place to a
// target past them: the job restarts where the group stopped, so the
// table holds every record before the target, as an independent fold
// says, and the next run goes on from the target to the live table.
func TestIntegrationReplayInPlaceLaggingGroup(t *testing.T) {
	f := newFixture(t)
	f.produce(120, time.Now().Add(-time.Hour))
	state := filepath.Join(t.TempDir(), "live")
	f.runLive(state)
	table, group := f.app+"-totals-table", f.app+"-totals"
	stopped := map[int32]int64{}
	for _, e := range f.events {
		stopped[e.partition] = e.offset + 1
	}
	f.produce(120, time.Now().Add(-time.Hour)) // not processed: the group lags
	target := replay.PartitionOffsets{}
	at := map[int32]int64{}
	for p, c := range stopped {
		at[p] = c + 10
		target.Set(f.topic, p, at[p])
	}
	ip, _, err := f.inPlace(replay.InPlaceSpec{File: f.file, Pipelines: []string{"totals"}, From: replay.From{Offsets: target}, StateDir: state, RewindOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range ip.Partitions {
		if r.From != stopped[r.Partition] || !strings.Contains(r.Note, "had processed only up to there") {
			t.Errorf("plan partition %+v: want a restart at %d, where the group stopped, with a note saying so", r, stopped[r.Partition])
		}
	}
	beforeX, _ := fold(f.events, func(e event) bool { return e.offset < at[e.partition] })
	if got := f.table(table); !equalMaps(got, beforeX) {
		t.Errorf("rewound to %v: %v, want %v", at, got, beforeX)
	}
	for p, c := range f.committed(group) {
		if c != at[p] {
			t.Errorf("after the rewind partition %d is committed at %d, want the target %d", p, c, at[p])
		}
	}
	f.runLive(state)
}

// The count per segment sits behind a group_by's repartition topic. The
// group writing that topic has processed a second batch of events that
// the count has not (it lags: the repartition topic holds records it has
// not read). Rewound in place to a target inside the second batch, the
// count holds the records before the target, as an independent fold
// says: the old repartition records emitted for records from the target
// on are skipped, the others applied. Run live again, it reaches the
// fold of every event; rewound to an earlier target (the count's
// versions hold updates on both sides of it) and reprocessed, it is
// that fold again.
func TestIntegrationReplayInPlaceBehindRepartition(t *testing.T) {
	f := newFixture(t)
	f.produce(120, time.Now().Add(-time.Hour))
	state := filepath.Join(t.TempDir(), "live")
	f.runLive(state)
	table := f.app + "-per-segment-table"
	stopped := map[int32]int64{}
	for _, e := range f.events {
		stopped[e.partition] = e.offset + 1
	}
	f.produce(120, time.Now().Add(-time.Hour))

	// Only the group writing the repartition topic runs on the second
	// batch.
	c, err := topology.Compile(f.file.Topology, topology.WithProcessorOptions(processors.WithKafka(f.kafka)))
	if err != nil {
		t.Fatal(err)
	}
	var upstream []*topology.Group
	for _, g := range c.Groups {
		if g.Table == "" && slices.Contains(g.Inputs, f.topic) {
			upstream = append(upstream, g)
		}
	}
	if len(upstream) != 1 {
		t.Fatalf("%d groups write the repartition topic, want 1", len(upstream))
	}
	procs, err := topology.NewProcessors(t.Context(), slog.New(slog.DiscardHandler), f.kafka, state, upstream)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- processors.RunAll(ctx, procs...) }()
	ends := map[int32]int64{}
	for _, e := range f.events {
		ends[e.partition] = e.offset + 1
	}
	kafkatest.WaitFor(t, waitTimeout, "the repartitioning of the second batch", func() bool {
		for p, at := range f.committed(string(upstream[0].Name)) {
			if at != ends[p] {
				return false
			}
		}
		return true
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	_, stoppedSegments := fold(f.events, func(e event) bool { return e.offset < stopped[e.partition] })
	if got := f.table(table); !equalMaps(got, stoppedSegments) {
		t.Fatalf("the count before the job: %v, want the first batch's %v", got, stoppedSegments)
	}

	target := replay.PartitionOffsets{}
	at := map[int32]int64{}
	for p, s := range stopped {
		at[p] = s + 10
		target.Set(f.topic, p, at[p])
	}
	spec := replay.InPlaceSpec{File: f.file, Pipelines: []string{"per-segment"}, From: replay.From{Offsets: target}, StateDir: state, RewindOnly: true}
	if _, _, err := f.inPlace(spec); err != nil {
		t.Fatal(err)
	}
	_, beforeX := fold(f.events, func(e event) bool { return e.offset < at[e.partition] })
	if got := f.table(table); !equalMaps(got, beforeX) {
		t.Errorf("rewound to %v: %v, want %v", at, got, beforeX)
	}
	f.runLive(state) // both tables the fold of every event

	// An earlier target, where the count's versions hold updates on both
	// sides: the rewind, then the whole job.
	y := int64(5)
	spec = replay.InPlaceSpec{File: f.file, Pipelines: []string{"per-segment"}, From: replay.From{Offset: &y}, StateDir: state, RewindOnly: true}
	if _, _, err := f.inPlace(spec); err != nil {
		t.Fatal(err)
	}
	_, beforeY := fold(f.events, func(e event) bool { return e.offset < y })
	if got := f.table(table); !equalMaps(got, beforeY) {
		t.Errorf("rewound to %d: %v, want %v", y, got, beforeY)
	}
	spec.RewindOnly = false
	if _, _, err := f.inPlace(spec); err != nil {
		t.Fatal(err)
	}
	_, allS := fold(f.events, all)
	if got := f.table(table); !equalMaps(got, allS) {
		t.Errorf("rewound to %d and replayed: %v, want %v", y, got, allS)
	}
}
