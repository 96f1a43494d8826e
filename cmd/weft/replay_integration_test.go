package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/weftstream/weft/internal/kafkatest"
	"github.com/weftstream/weft/kafkaclient"
	"github.com/weftstream/weft/replay"
)

// TestIntegrationReplayCommands drives weft replay and weft reset on a
// topology that weft run keeps a table of: the plan, a rebuild with
// --verify, the point-in-time read of a key, and a reset refused while the
// live group runs and applied after.
func TestIntegrationReplayCommands(t *testing.T) {
	brokers := strings.Join(kafkatest.Brokers(t), ",")
	topic, app := kafkatest.Topic(t, "payments"), kafkatest.Group(t, "pay")
	dir := t.TempDir()
	file := filepath.Join(dir, "pay.yaml")
	yaml := fmt.Sprintf(`app: %s
streams:
  payments: {topic: %s, codec: json}
pipelines:
  - name: balances
    from: payments
    steps:
      - group_by_key: {}
      - aggregate: {initial: "0", add: "aggregate + value.amount"}
`, app, topic)
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	// 200 payments over 10 accounts: acc-i gets amounts j%5+1 for j ≡ i mod 10.
	var lines []string
	want := map[string]int64{}
	for j := range 200 {
		acc := fmt.Sprintf("acc-%d", j%10)
		want[acc] += int64(j%5 + 1)
		lines = append(lines, fmt.Sprintf(`{"account":%q,"amount":%d}`, acc, j%5+1))
	}
	events := filepath.Join(dir, "payments.jsonl")
	if err := os.WriteFile(events, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	common := []string{"--brokers", brokers, "--log-level", "warn", "--partitions", "4"}
	if out, err := weft(t.Context(), append([]string{"produce", topic, events, "--key-field", "account"}, common...)...); err != nil {
		t.Fatalf("produce: %v\n%s", err, out)
	}

	state := filepath.Join(dir, "state")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := weft(ctx, append([]string{"run", file, "--state-dir", state, "--http-addr", ""}, common...)...)
		done <- err
	}()
	kafkatest.WaitFor(t, time.Minute, "the live table", func() bool {
		out, err := weft(t.Context(), append([]string{"get", app + "-balances", "acc-3"}, common...)...)
		return err == nil && strings.TrimSpace(out) == fmt.Sprint(want["acc-3"])
	})

	into := app + "-v2"
	out, err := weft(t.Context(), append([]string{"replay", file, "--into", into}, common...)...)
	if err != nil || !strings.Contains(out, "records: 200 (left to read: 200)") || !strings.Contains(out, "nothing changed") ||
		!strings.Contains(out, into+"-balances-table") {
		t.Fatalf("replay plan: %v\n%s", err, out)
	}
	if _, err := weft(t.Context(), append([]string{"replay", file, "--into", into, "--pipeline", "nope"}, common...)...); err == nil ||
		!strings.Contains(err.Error(), `--pipeline "nope"`) {
		t.Fatalf("an unknown pipeline: %v", err)
	}
	out, err = weft(t.Context(), append([]string{"replay", file, "--into", into, "--execute", "--verify", "--json",
		"--state-dir", filepath.Join(dir, "replay-state")}, common...)...)
	var summary struct {
		Plan struct {
			Job string `json:"job"`
		} `json:"plan"`
		Records int64 `json:"records"`
		Verify  []struct {
			Equal, Different, MissingInRebuilt, MissingInLive int
		} `json:"verify"`
	}
	if err != nil || json.Unmarshal([]byte(out), &summary) != nil {
		t.Fatalf("replay --execute --verify: %v\n%s", err, out)
	}
	if summary.Records != 200 || len(summary.Verify) != 1 || summary.Verify[0].Equal != 10 || summary.Verify[0].Different != 0 {
		t.Fatalf("replay summary %+v, want 200 records and 10 equal keys:\n%s", summary, out)
	}
	out, err = weft(t.Context(), append([]string{"get", into + "-balances", "acc-7"}, common...)...)
	if err != nil || strings.TrimSpace(out) != fmt.Sprint(want["acc-7"]) {
		t.Fatalf("rebuilt acc-7 = %q (%v), want %d", out, err, want["acc-7"])
	}
	// The lineage of a rebuilt value names the job, a live one none.
	if !regexp.MustCompile(`^into:` + regexp.QuoteMeta(into) + `@\d{8}T\d{6}Z$`).MatchString(summary.Plan.Job) {
		t.Fatalf("the job is named %q, want into:%s@<start time>:\n%s", summary.Plan.Job, into, out)
	}
	jobsOf := func(group string) map[string]int {
		t.Helper()
		out, err := weft(t.Context(), append([]string{"explain", group, "acc-7", "--json"}, common...)...)
		if err != nil {
			t.Fatalf("explain %s acc-7 --json: %v\n%s", group, err, out)
		}
		jobs := map[string]int{}
		for line := range strings.Lines(out) {
			var v struct {
				ReplayJob *string `json:"replay_job"`
			}
			if err := json.Unmarshal([]byte(line), &v); err != nil {
				t.Fatalf("explain --json line %q: %v", line, err)
			}
			if v.ReplayJob == nil {
				jobs[""]++
			} else {
				jobs[*v.ReplayJob]++
			}
		}
		return jobs
	}
	if got := jobsOf(into + "-balances"); len(got) != 1 || got[summary.Plan.Job] == 0 {
		t.Errorf("explain of the rebuilt acc-7: versions by replay job %v, want all named %s", got, summary.Plan.Job)
	}
	if got := jobsOf(app + "-balances"); len(got) != 1 || got[""] == 0 {
		t.Errorf("explain of the live acc-7: versions by replay job %v, want none named", got)
	}
	out, err = weft(t.Context(), append([]string{"explain", into + "-balances", "acc-7"}, common...)...)
	if err != nil || !strings.Contains(out, "REPLAY JOB") || !strings.Contains(out, " "+summary.Plan.Job+" ") {
		t.Errorf("explain of the rebuilt acc-7 does not name the job %s: %v\n%s", summary.Plan.Job, err, out)
	}
	if _, err := weft(t.Context(), append([]string{"replay", file, "--into", into, "--job-name", "two words"}, common...)...); err == nil ||
		!strings.Contains(err.Error(), "--job-name") {
		t.Errorf("--job-name with a space: %v, want a usage error naming the flag", err)
	}
	out, err = weft(t.Context(), append([]string{"replay", file, "--into", into + "-named", "--job-name", "fix-2026-05-28"}, common...)...)
	if err != nil || !strings.Contains(out, "job: fix-2026-05-28 ") {
		t.Errorf("the plan of a named job: %v\n%s", err, out)
	}
	out, err = weft(t.Context(), append([]string{"replay", file, "--key", "acc-7", "--until-time", time.Now().Format(time.RFC3339), "--json"}, common...)...)
	var st struct {
		Value   int64 `json:"value"`
		Records []any `json:"records"`
	}
	if err != nil || json.Unmarshal([]byte(out), &st) != nil || st.Value != want["acc-7"] || len(st.Records) != 20 {
		t.Fatalf("replay --key acc-7: %v\n%s", err, out)
	}

	_, err = weft(t.Context(), append([]string{"reset", file, "--execute", "--state-dir", state}, common...)...)
	if err == nil || !strings.Contains(err.Error(), "active members") {
		t.Fatalf("reset while the live group runs: %v", err)
	}
	// In place: the plan names the live members; --execute is refused.
	inPlace := append([]string{"replay", file, "--in-place", "--from-offset", "0", "--rewind-only", "--state-dir", state}, common...)
	out, err = weft(t.Context(), inPlace...)
	if err != nil || !strings.Contains(out, "keys that change: 10;") || !strings.Contains(out, "active member: "+app+"-balances") {
		t.Fatalf("in-place plan while live: %v\n%s", err, out)
	}
	_, err = weft(t.Context(), append(inPlace, "--execute")...)
	if err == nil || !strings.Contains(err.Error(), "--in-place") || !strings.Contains(err.Error(), "active members") {
		t.Fatalf("in place while the live group runs: %v", err)
	}
	if _, err := weft(t.Context(), append([]string{"replay", file, "--in-place", "--into", "x"}, common...)...); err == nil ||
		!strings.Contains(err.Error(), "--in-place and --into") {
		t.Fatalf("--in-place with --into: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	// Rewound to the start of the log: every key had no value then.
	kafkatest.WaitFor(t, time.Minute, "the in-place rewind to go through", func() bool {
		out, err = weft(t.Context(), append(inPlace, "--execute", "--json")...)
		return err == nil
	})
	var rewound struct {
		InPlace struct {
			KeysChanged int `json:"keys_changed"`
		} `json:"in_place"`
	}
	if err := json.Unmarshal([]byte(out), &rewound); err != nil || rewound.InPlace.KeysChanged != 10 {
		t.Fatalf("in place --execute: %v\n%s", err, out)
	}
	if out, err := weft(t.Context(), append([]string{"get", app + "-balances", "acc-3"}, common...)...); err == nil {
		t.Fatalf("acc-3 after the rewind to the start: %q, want no value", out)
	}
	kafkatest.WaitFor(t, time.Minute, "the reset to go through", func() bool {
		out, err = weft(t.Context(), append([]string{"reset", file, "--execute", "--state-dir", state}, common...)...)
		return err == nil
	})
	if !strings.Contains(out, "reset 1 groups") {
		t.Fatalf("reset: %s", out)
	}
	if _, err := os.Stat(filepath.Join(state, "processors", app+"-balances")); !os.IsNotExist(err) {
		t.Fatalf("the local state is still there: %v", err)
	}
}

// A `weft replay --execute` process killed (SIGKILL: no shutdown, no
// commit) on its first progress log line that says it has read part, not
// all, of the input, and started again with the same --into resumes and finishes with
// the same tables as an uninterrupted replay of the same records, and as
// an independent fold of them.
func TestIntegrationReplayKilledResumes(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic, app := kafkatest.Topic(t, "payments"), kafkatest.Group(t, "kill")
	kafkatest.CreateTopic(t, brokers, topic, 4)
	dir := t.TempDir()
	file := filepath.Join(dir, "pay.yaml")
	// Commits every 50ms: the progress (the committed offsets) moves
	// often enough to be seen half-way.
	yaml := fmt.Sprintf(`app: %s
commit_interval: 50ms
streams:
  payments: {topic: %s, codec: json}
pipelines:
  - name: balances
    from: payments
    steps:
      - group_by_key: {}
      - aggregate: {initial: "0", add: "aggregate + value.amount"}
`, app, topic)
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	// n payments over 50 accounts: acc-i gets amounts j%9+1 for j ≡ i mod 50.
	const n = 600000
	k := kafkaclient.Config{Brokers: brokers}
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
	want := map[string]string{}
	sums := map[string]int64{}
	recs := make([]*kgo.Record, 0, n)
	for j := range n {
		acc := fmt.Sprintf("acc-%d", j%50)
		sums[acc] += int64(j%9 + 1)
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(acc), Value: fmt.Appendf(nil, `{"amount":%d}`, j%9+1)})
	}
	if err := cl.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	for acc, s := range sums {
		want[acc] = fmt.Sprint(s)
	}
	common := []string{"--brokers", strings.Join(brokers, ","), "--log-level", "info", "--partitions", "4"}

	// Uninterrupted.
	whole := app + "-whole"
	if out, err := weft(t.Context(), append([]string{"replay", file, "--into", whole, "--execute", "--json", "--state-dir", filepath.Join(dir, "whole")}, common...)...); err != nil {
		t.Fatalf("uninterrupted replay: %v\n%s", err, out)
	}
	wholeTable := readTable(t, opts, whole+"-balances-table")
	if !maps.Equal(wholeTable, want) {
		t.Fatalf("uninterrupted replay: %v, want %v", wholeTable, want)
	}

	// Killed half-way, once the progress log shows records read.
	killed := app + "-killed"
	state := filepath.Join(dir, "killed")
	args := append([]string{"replay", file, "--into", killed, "--execute", "--state-dir", state, "--progress-interval", "1ms"}, common...)
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), envAsWeft+"=1")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	defer func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()
	progress := regexp.MustCompile(`msg="replay progress" done=(\d+) total=(\d+)`)
	var output strings.Builder
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	deadline := time.After(2 * time.Minute)
	var at int64
wait:
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("weft replay ended before it reported progress:\n%s", output.String())
			}
			output.WriteString(line + "\n")
			if m := progress.FindStringSubmatch(line); m != nil {
				done, _ := strconv.ParseInt(m[1], 10, 64)
				total, _ := strconv.ParseInt(m[2], 10, 64)
				if total != n {
					t.Fatalf("progress total %d, want %d", total, n)
				}
				if done > 0 && done < total {
					at = done
					break wait
				}
				if done >= total {
					t.Fatalf("weft replay reached %d of %d before it could be killed early enough; the test needs more records:\n%s", done, total, output.String())
				}
			}
		case <-deadline:
			t.Fatalf("no progress from weft replay in 2 minutes:\n%s", output.String())
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	for range lines { // drain
	}
	if strings.Contains(output.String(), "replayed ") {
		t.Fatalf("the job finished before it was killed:\n%s", output.String())
	}
	t.Logf("killed at %d of %d records", at, n)
	// The killed process's member stays in the group until its session
	// times out; the job refuses to run beside it.
	adm := kadm.NewClient(cl)
	kafkatest.WaitFor(t, time.Minute, "the killed job's member to leave its group", func() bool {
		d, err := adm.DescribeGroups(t.Context(), killed+"-balances")
		return err == nil && len(d[killed+"-balances"].Members) == 0
	})

	// Started again: it resumes and finishes.
	out, err := weft(t.Context(), append([]string{"replay", file, "--into", killed, "--execute", "--json", "--state-dir", state}, common...)...)
	if err != nil {
		t.Fatalf("resumed replay: %v\n%s", err, out)
	}
	var summary struct {
		Plan struct {
			Resume    bool   `json:"resume"`
			Remaining int64  `json:"remaining"`
			Job       string `json:"job"`
		} `json:"plan"`
	}
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &summary); err != nil {
		t.Fatalf("resumed replay output: %v\n%s", err, out)
	}
	if !summary.Plan.Resume || summary.Plan.Remaining >= n || summary.Plan.Remaining <= 0 {
		t.Errorf("the second run resume %v with %d of %d left, want a resume with part of the records left", summary.Plan.Resume, summary.Plan.Remaining, n)
	}
	if got := readTable(t, opts, killed+"-balances-table"); !maps.Equal(got, wholeTable) {
		t.Errorf("killed and resumed: %v\nuninterrupted: %v", got, wholeTable)
	}
	// The resumed run (seconds later) keeps the killed run's job name.
	first := regexp.MustCompile(`(?m)^job: (\S+) \(named`).FindStringSubmatch(output.String())
	if first == nil || summary.Plan.Job != first[1] {
		t.Errorf("the resumed job is named %q, want the killed run's name (%v):\n%s", summary.Plan.Job, first, output.String())
	}
}

// readTable reads a table topic's current values as strings.
func readTable(t *testing.T, opts []kgo.Opt, topic string) map[string]string {
	t.Helper()
	raw, err := replay.ReadTable(t.Context(), opts, topic)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for k, v := range raw {
		out[k] = string(v)
	}
	return out
}
