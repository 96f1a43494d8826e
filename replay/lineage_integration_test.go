package replay_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/weftstream/weft/internal/kafkatest"
	"github.com/weftstream/weft/processors"
	"github.com/weftstream/weft/replay"
	"github.com/weftstream/weft/serve"
	"github.com/weftstream/weft/statestore"
	"github.com/weftstream/weft/topology"
)

// changelog returns the records of a table topic from offset from[p] of
// each partition p (0 for those not in from) to its end now.
func (f *fixture) changelog(topic string, from map[int32]int64) []*kgo.Record {
	f.t.Helper()
	ends, err := f.adm.ListEndOffsets(f.t.Context(), topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		f.t.Fatal(err)
	}
	left := map[int32]int64{}
	consume := map[string]map[int32]kgo.Offset{topic: {}}
	ends.Each(func(l kadm.ListedOffset) {
		if start := from[l.Partition]; l.Offset > start {
			left[l.Partition] = l.Offset
			consume[topic][l.Partition] = kgo.NewOffset().At(start)
		}
	})
	if len(left) == 0 {
		return nil
	}
	cl, err := kgo.NewClient(append(f.opts, kgo.ConsumePartitions(consume))...)
	if err != nil {
		f.t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(f.t.Context(), waitTimeout)
	defer cancel()
	var out []*kgo.Record
	for len(left) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			f.t.Fatalf("read %s: %v (partitions left: %v)", topic, err, left)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if end, ok := left[r.Partition]; ok && r.Offset < end {
				out = append(out, r)
				if r.Offset >= end-1 {
					delete(left, r.Partition)
				}
			}
		})
	}
	return out
}

// jobs counts the values of records by the replay job their envelope
// names ("" for none); tombstones are not counted.
func (f *fixture) jobs(records []*kgo.Record) map[string]int {
	f.t.Helper()
	out := map[string]int{}
	for _, r := range records {
		if r.Value == nil {
			continue
		}
		env, err := statestore.DecodeEnvelope(r.Value)
		if err != nil {
			f.t.Fatalf("%s/%d@%d: %v", r.Topic, r.Partition, r.Offset, err)
		}
		out[env.ReplayJob]++
	}
	return out
}

// lineageVersion is what the test reads of a version in GET
// /tables/{t}/{k}/lineage.
type lineageVersion struct {
	Version   uint64 `json:"version"`
	Value     int64  `json:"value"`
	ReplayJob string `json:"replay_job"`
}

// A rebuild (--into) names its job in every version it writes, through a
// repartition topic too, and live processing in none: in the changelogs,
// and in the lineage the query API answers for the rebuilt table once it
// runs live, where the versions of the job and the live one after them
// are told apart. An in-place job names its own job (--job-name) in the
// values it rewinds and in those it writes again.
func TestIntegrationReplayLineageNamesTheJob(t *testing.T) {
	f := newFixture(t)
	f.produce(120, time.Now().Add(-time.Hour))
	state := filepath.Join(t.TempDir(), "live")
	f.runLive(state)
	totals, segments := f.app+"-totals-table", f.app+"-per-segment-table"
	for _, table := range []string{totals, segments} {
		if got := f.jobs(f.changelog(table, nil)); len(got) != 1 || got[""] == 0 {
			t.Fatalf("live %s: values by replay job %v, want all without one", table, got)
		}
	}

	into := f.app + "-v2"
	started := time.Now().UTC().Truncate(time.Second)
	p, _, err := f.execute(t.Context(), replay.Spec{File: f.file, Into: into}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// The default name: mode, application, start time.
	m := regexp.MustCompile(`^into:` + regexp.QuoteMeta(into) + `@(\d{8}T\d{6}Z)$`).FindStringSubmatch(p.Job)
	if m == nil {
		t.Fatalf("job name %q, want into:%s@<start time>", p.Job, into)
	}
	if at, err := time.Parse("20060102T150405Z", m[1]); err != nil || at.Before(started) || at.After(time.Now()) {
		t.Fatalf("job name %q: start time %v (%v), want between %v and now", p.Job, at, err, started)
	}
	for _, table := range []string{into + "-totals-table", into + "-per-segment-table"} {
		if got := f.jobs(f.changelog(table, nil)); len(got) != 1 || got[p.Job] == 0 {
			t.Errorf("rebuilt %s: values by replay job %v, want all named %s", table, got, p.Job)
		}
	}

	// The rebuild runs live from where the job ended, behind the query API.
	top := *f.file.Topology
	top.App = into
	c, err := topology.Compile(&top, topology.WithProcessorOptions(processors.WithKafka(f.kafka)))
	if err != nil {
		t.Fatal(err)
	}
	procs, err := topology.NewProcessors(t.Context(), slog.New(slog.DiscardHandler), f.kafka, t.TempDir(), c.Groups)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- processors.RunAll(ctx, procs...) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("the rebuild's processors: %v", err)
		}
	}()
	var readers []*processors.TableReader
	for _, pr := range procs {
		if r := pr.TableReader(); r != nil && string(r.Group()) == into+"-totals" {
			readers = append(readers, r)
		}
	}
	if len(readers) != 1 {
		t.Fatalf("%d table readers of %s-totals, want 1", len(readers), into)
	}
	s, err := serve.New(readers)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	lineage := func(key string) (int, []lineageVersion) {
		resp, err := srv.Client().Get(srv.URL + "/tables/" + into + "-totals/" + key + "/lineage")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct {
			Versions []lineageVersion `json:"versions"`
		}
		if resp.StatusCode == http.StatusOK {
			if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
				t.Fatal(err)
			}
		}
		return resp.StatusCode, out.Versions
	}
	// k00 had the events 0, 20, ..., 100: six updates (the record cache
	// may have written fewer versions for them), all the job's.
	wantT, _ := fold(f.events, all)
	var versions []lineageVersion
	kafkatest.WaitFor(t, waitTimeout, "the lineage of k00 served", func() bool {
		code, v := lineage("k00")
		versions = v
		return code == http.StatusOK
	})
	if len(versions) == 0 || versions[0].Version != 6 || versions[0].Value != wantT["k00"] {
		t.Fatalf("lineage of the rebuilt k00: %+v, want version 6 = %d newest", versions, wantT["k00"])
	}
	for _, v := range versions {
		if v.ReplayJob != p.Job {
			t.Errorf("rebuilt version %d names replay job %q, want %q", v.Version, v.ReplayJob, p.Job)
		}
	}
	// A new event (the 121st: k00 again) is processed live: its version
	// names no job, the ones before it still name the job.
	target := replay.PartitionOffsets{}
	inputEnds, err := f.adm.ListEndOffsets(t.Context(), f.topic)
	if err != nil {
		t.Fatal(err)
	}
	inputEnds.Each(func(l kadm.ListedOffset) { target.Set(f.topic, l.Partition, l.Offset) })
	f.produce(1, time.Now())
	wantT, _ = fold(f.events, all)
	kafkatest.WaitFor(t, waitTimeout, "the live version of k00", func() bool {
		code, v := lineage("k00")
		versions = v
		return code == http.StatusOK && len(v) > 0 && v[0].Version == 7
	})
	if versions[0].Value != wantT["k00"] || versions[0].ReplayJob != "" || len(versions) < 2 {
		t.Fatalf("the live version of k00: %+v, want value %d and no replay job, before the rebuilt ones", versions, wantT["k00"])
	}
	for _, v := range versions[1:] {
		if v.ReplayJob != p.Job {
			t.Errorf("rebuilt version %d after a live one names replay job %q, want %q", v.Version, v.ReplayJob, p.Job)
		}
	}

	// In place, with its own name, to just before the 121st event: the
	// value it rewinds (k00's) and those it writes again name it; what
	// came before stays unnamed.
	f.runLive(state) // the live app catches up with the 121st event
	before := map[int32]int64{}
	ends, err := f.adm.ListEndOffsets(t.Context(), totals)
	if err != nil {
		t.Fatal(err)
	}
	ends.Each(func(l kadm.ListedOffset) { before[l.Partition] = l.Offset })
	ip, _, err := f.inPlace(replay.InPlaceSpec{File: f.file, Pipelines: []string{"totals"}, From: replay.From{Offsets: target}, StateDir: state, Job: "fix-totals-1"})
	if err != nil {
		t.Fatal(err)
	}
	if ip.Job != "fix-totals-1" || ip.Tables[0].Rewound != 1 || ip.KeysChanged != 1 {
		t.Fatalf("in-place plan: job %q, %+v; want fix-totals-1 and one key (k00) rewound", ip.Job, ip.Tables)
	}
	written := f.changelog(totals, before)
	if got := f.jobs(written); len(got) != 1 || got["fix-totals-1"] < 2 {
		t.Errorf("written by the in-place job: values by replay job %v, want all (k00 rewound and k00 again) named fix-totals-1", got)
	}
	for _, r := range written {
		if string(r.Key) != "k00" {
			t.Errorf("the in-place job wrote %s, want k00 only", r.Key)
		}
	}
	if got := f.jobs(f.changelog(totals, nil)); got[""] == 0 {
		t.Errorf("the live versions before the in-place job lost their (absent) name: %v", got)
	}
	if got := f.table(totals); !equalMaps(got, wantT) {
		t.Errorf("in place to the end: %v, want %v", got, wantT)
	}
}
