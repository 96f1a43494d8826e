package replay_test

import (
	"bytes"
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/weftstream/weft/internal/kafkatest"
	"github.com/weftstream/weft/kafkaclient"
	"github.com/weftstream/weft/processors"
	"github.com/weftstream/weft/replay"
	"github.com/weftstream/weft/statestore"
	"github.com/weftstream/weft/topofile"
	"github.com/weftstream/weft/topology"
)

// buildWeft builds the weft command into a temporary directory.
func buildWeft(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "weft")
	out, err := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "github.com/weftstream/weft/cmd/weft").CombinedOutput()
	if err != nil {
		t.Fatalf("go build ./cmd/weft: %v\n%s", err, out)
	}
	return bin
}

// lockedBuffer is the combined output of a process, read while it runs.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// weftRun is one weft process.
type weftRun struct {
	cmd    *exec.Cmd
	out    *lockedBuffer
	exited chan struct{}
	err    error
}

func startWeftProc(t *testing.T, bin string, args ...string) *weftRun {
	t.Helper()
	r := &weftRun{cmd: exec.Command(bin, args...), out: &lockedBuffer{}, exited: make(chan struct{})}
	r.cmd.Stdout, r.cmd.Stderr = r.out, r.out
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		r.err = r.cmd.Wait()
		close(r.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-r.exited:
		default:
			_ = r.cmd.Process.Kill()
			<-r.exited
		}
	})
	return r
}

// killUntil polls cond until it holds and kills the process (SIGKILL:
// no shutdown, no commit); it fails if the process ends first.
func (r *weftRun) killUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		select {
		case <-r.exited:
			t.Fatalf("weft ended (%v) before %s:\n%s", r.err, what, r.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s:\n%s", what, r.out.String())
		}
		time.Sleep(2 * time.Millisecond) // the poll interval
	}
	if err := r.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-r.exited
}

func (r *weftRun) wait(t *testing.T) error {
	t.Helper()
	select {
	case <-r.exited:
		return r.err
	case <-time.After(waitTimeout):
		t.Fatalf("weft did not finish:\n%s", r.out.String())
		return nil
	}
}

// jobOf is the job name a weft replay printed in its plan.
func jobOf(t *testing.T, out string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^job: (\S+) \(named`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no job name in the plan:\n%s", out)
	}
	return m[1]
}

// A live table whose versions coalesce updates across the target (the
// record cache wrote one version per key for a whole batch) is replayed
// in place by weft replay --in-place --execute, a process of its own,
// killed (SIGKILL) once when every rewound value is in the changelog
// (before the groups reprocess) and, in a second job, once some but not
// all of the reprocessing is committed; each time the same command run
// again (with --force, as its refusal says, while the killed member is
// still in the group) ends with the table of an independent fold of
// every input record, every version each run wrote naming that run's
// job, and the last version of every key that had records from the
// target on naming the last run (the others keep their live version).
func TestIntegrationReplayInPlaceKilledAndRunAgain(t *testing.T) {
	bin := buildWeft(t)
	brokers := kafkatest.Brokers(t)
	k := kafkaclient.Config{Brokers: brokers, Partitions: 4}
	opts, err := k.FranzOptions()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(append(opts, kgo.RecordPartitioner(kgo.StickyKeyPartitioner(kgo.SaramaCompatHasher(func(b []byte) uint32 {
		h := fnv.New32a()
		h.Write(b)
		return h.Sum32()
	}))))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	topic, app := kafkatest.Topic(t, "kill-events"), kafkatest.Group(t, "kill")
	kafkatest.CreateTopic(t, brokers, topic, 4)
	table := app + "-totals-table"
	dir := t.TempDir()
	path := filepath.Join(dir, "app.yaml")
	yaml := fmt.Sprintf(`app: %s
commit_interval: 50ms
streams:
  events: {topic: %s, codec: json}
pipelines:
  - name: totals
    from: events
    steps:
      - group_by_key: {}
      - aggregate: {initial: "0", add: "aggregate + value.amount"}
`, app, topic)
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	file, err := topofile.LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	// The input: event j is key k%03d (j mod keys) with amount j mod 7 + 1.
	type ev struct {
		key       string
		amount    int64
		partition int32
		offset    int64
	}
	var events []ev
	produce := func(n, keys int) {
		base := len(events)
		recs := make([]*kgo.Record, n)
		for i := range recs {
			j := base + i
			recs[i] = &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "k%03d", j%keys), Value: fmt.Appendf(nil, `{"amount":%d}`, j%7+1)}
		}
		if err := cl.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		for i, r := range recs {
			events = append(events, ev{key: string(r.Key), amount: int64((base+i)%7 + 1), partition: r.Partition, offset: r.Offset})
		}
	}
	// live runs the live group until it has processed n records, its
	// record cache flushing only when it stops: one version per key for
	// the whole run.
	state := filepath.Join(dir, "live")
	live := func(n int64) {
		t.Helper()
		c, err := topology.Compile(file.Topology, topology.WithProcessorOptions(processors.WithKafka(k)))
		if err != nil {
			t.Fatal(err)
		}
		procs, err := topology.NewProcessors(t.Context(), slog.New(slog.DiscardHandler), k, state, c.Groups,
			processors.WithRecordCache(processors.DefaultCacheMaxBytes, time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- processors.RunAll(ctx, procs...) }()
		kafkatest.WaitFor(t, waitTimeout, "the live group to process the batch", func() bool {
			select {
			case err := <-done:
				t.Fatalf("the live processors stopped: %v", err)
			default:
			}
			return c.Groups[0].Runtime.Tally().Processed() >= n
		})
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	// The first batch over 420 keys, the second over 400: k400..k419
	// have no records from the target on.
	produce(4000, 420)
	live(4000)
	ends1 := map[int32]int64{}
	for _, e := range events {
		ends1[e.partition] = e.offset + 1
	}
	produce(300000, 400)
	live(300000)

	// The target: 500 records into the second batch of every partition;
	// the second batch's one version per key holds updates on both sides.
	target := map[int32]int64{}
	var pairs []string
	for p := range int32(4) {
		target[p] = ends1[p] + 500
		pairs = append(pairs, fmt.Sprintf("%d=%d", p, target[p]))
	}
	wantTotals := map[string]int64{}
	fromTarget := map[string]bool{} // keys with records at or after the target
	for _, e := range events {
		wantTotals[e.key] += e.amount
		if e.offset >= target[e.partition] {
			fromTarget[e.key] = true
		}
	}
	tbl := func() map[string]int64 {
		raw, err := replay.ReadTable(t.Context(), opts, table)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]int64{}
		for key, v := range raw {
			if out[key], err = strconv.ParseInt(string(v), 10, 64); err != nil {
				t.Fatalf("%s[%s] = %q: not a number", table, key, v)
			}
		}
		return out
	}
	if got := tbl(); !equalMaps(got, wantTotals) {
		t.Fatalf("the live table: %v, want %v", got, wantTotals)
	}
	ends := func(topic string) map[int32]int64 {
		l, err := adm.ListEndOffsets(t.Context(), topic)
		if err == nil {
			err = l.Error()
		}
		if err != nil {
			t.Fatal(err)
		}
		out := map[int32]int64{}
		l.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
		return out
	}
	// grown is how many records the table has more than before.
	grown := func(before map[int32]int64) int64 {
		var n int64
		for p, e := range ends(table) {
			n += e - before[p]
		}
		return n
	}

	args := []string{"replay", path, "--in-place", "--from-offset", strings.Join(pairs, ","), "--execute",
		"--state-dir", state, "--brokers", strings.Join(brokers, ","), "--partitions", "4",
		"--log-level", "info", "--progress-interval", "1ms"}
	// toEnd runs the command to its end. Right after a kill, the killed
	// member is in the group until its session times out: the job
	// refuses, naming it and --force, which waits for it to leave, and
	// changes nothing; run again with --force it goes on.
	toEnd := func(what string) string {
		t.Helper()
		before := ends(table)
		r := startWeftProc(t, bin, args...)
		if err := r.wait(t); err != nil {
			if out := r.out.String(); !strings.Contains(out, "active members") || !strings.Contains(out, "--force") {
				t.Fatalf("%s: %v, want a refusal naming the killed member and --force:\n%s", what, err, out)
			}
			if e := ends(table); fmt.Sprint(e) != fmt.Sprint(before) {
				t.Fatalf("%s: the refused run wrote to the table: ends %v, before %v", what, e, before)
			}
			t.Logf("%s: refused while the killed member is in the group; again with --force", what)
			r = startWeftProc(t, bin, append(args, "--force")...)
			if err := r.wait(t); err != nil {
				t.Fatalf("%s with --force: %v\n%s", what, err, r.out.String())
			}
		}
		return jobOf(t, r.out.String())
	}
	f := &fixture{t: t, opts: opts, adm: adm}
	// check compares the table with the fold of the input, and the
	// versions run i wrote (from starts[i] to starts[i+1] in the
	// changelog) with its job name; the last version of a key names the
	// last run if the key had records from the target on, else none (it
	// is the live one).
	check := func(what string, runs []string, starts []map[int32]int64) {
		t.Helper()
		if got := tbl(); !equalMaps(got, wantTotals) {
			diff := 0
			for key, v := range wantTotals {
				if got[key] != v {
					diff++
				}
			}
			t.Fatalf("%s: %d of %d keys differ from the fold of the input:\n%v\nwant %v", what, diff, len(wantTotals), got, wantTotals)
		}
		for i, job := range runs {
			var written []*kgo.Record
			for _, rec := range f.changelog(table, starts[i]) {
				if rec.Offset < starts[i+1][rec.Partition] {
					written = append(written, rec)
				}
			}
			if got := f.jobs(written); len(got) != 1 || got[job] == 0 {
				t.Errorf("%s: run %d (%s) wrote values by replay job %v, want all named %s", what, i+1, job, got, job)
			}
		}
		last := map[string]*kgo.Record{}
		for _, rec := range f.changelog(table, nil) {
			last[string(rec.Key)] = rec
		}
		if len(last) != len(wantTotals) {
			t.Errorf("%s: %d keys in the changelog, want %d", what, len(last), len(wantTotals))
		}
		for key, rec := range last {
			env, err := statestore.DecodeEnvelope(rec.Value)
			if err != nil {
				t.Fatalf("%s: %s: %v", what, key, err)
			}
			want := ""
			if fromTarget[key] {
				want = runs[len(runs)-1]
			}
			if env.ReplayJob != want {
				t.Errorf("%s: the last version of %s names replay job %q, want %q", what, key, env.ReplayJob, want)
			}
		}
	}

	// 1. Killed once every rewound value is in the changelog, before the
	// reprocessing flushes a version (every 50ms); the same command again
	// runs to the end.
	starts := []map[int32]int64{ends(table)}
	r := startWeftProc(t, bin, args...)
	changes := regexp.MustCompile(`(?m)^keys that change: (\d+);`)
	r.killUntil(t, "the rewound values in the changelog", func() bool {
		m := changes.FindStringSubmatch(r.out.String())
		if m == nil {
			return false
		}
		n, _ := strconv.ParseInt(m[1], 10, 64)
		return grown(starts[0]) >= n
	})
	runs := []string{jobOf(t, r.out.String())}
	if m := regexp.MustCompile(`(\d+) coalesced across the target`).FindStringSubmatch(r.out.String()); m == nil || m[1] == "0" {
		t.Fatalf("the plan has no version coalesced across the target, which the test is about:\n%s", r.out.String())
	}
	t.Logf("killed after the rewind: %d records in the changelog", grown(starts[0]))
	starts = append(starts, ends(table))
	runs = append(runs, toEnd("run again after a kill after the rewind"))
	starts = append(starts, ends(table))
	check("killed after the rewind and run again", runs, starts)

	// 2. The same command, killed in the reprocessing once its groups
	// committed some of the records and not all, and run again to the
	// end. (Some, not a share: the committed offsets move when goka's
	// consumer commits, once a second, and on a loaded machine a job went
	// from 4,012 of 300,416 to all of them in one step.)
	starts = []map[int32]int64{ends(table)}
	r = startWeftProc(t, bin, args...)
	progress := regexp.MustCompile(`msg="replay progress" done=(\d+) total=(\d+)`)
	var at string
	r.killUntil(t, "some of the reprocessing committed", func() bool {
		for _, m := range progress.FindAllStringSubmatch(r.out.String(), -1) {
			done, _ := strconv.ParseInt(m[1], 10, 64)
			total, _ := strconv.ParseInt(m[2], 10, 64)
			if done > 0 && done < total {
				at = m[0]
				return true
			}
			if done >= total {
				t.Fatalf("the reprocessing reached its end before it could be killed; the test needs more records:\n%s", r.out.String())
			}
		}
		return false
	})
	if strings.Contains(r.out.String(), "replay job done") {
		t.Fatalf("the job finished before it was killed:\n%s", r.out.String())
	}
	t.Logf("killed in the reprocessing at %s", at)
	runs = []string{jobOf(t, r.out.String())}
	starts = append(starts, ends(table))
	runs = append(runs, toEnd("run again after a kill in the reprocessing"))
	starts = append(starts, ends(table))
	check("killed in the reprocessing and run again", runs, starts)
}
