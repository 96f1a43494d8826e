package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/weftstream/weft/kafkaclient"
	"github.com/weftstream/weft/replay"
	"github.com/weftstream/weft/topofile"
	"github.com/weftstream/weft/tracing"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"golang.org/x/term"
)

// targetFlags are where a replay or reset starts.
type targetFlags struct {
	earliest   bool
	fromOffset string
	fromTime   string
	byDuration string
	fromFile   string
}

func (t *targetFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.BoolVar(&t.earliest, "from-earliest", false, "start at the earliest offset still in the log (the default)")
	fl.StringVar(&t.fromOffset, "from-offset", "", "start at offset N in every partition, or per partition P=N,P=N (the others from the earliest); clamped to the log")
	fl.StringVar(&t.fromTime, "from-time", "", "start at the first record at or after this RFC 3339 time")
	fl.StringVar(&t.byDuration, "by-duration", "", "start at the first record at or after now minus this duration: Go (24h, 90m) or ISO-8601 (P1DT2H, PT30M)")
	fl.StringVar(&t.fromFile, "from-file", "", "start at the offsets of this CSV file, lines topic,partition,offset (partitions not in it from the earliest)")
}

// from resolves the flags; at most one may be given.
func (t *targetFlags) from(cmd *cobra.Command) (replay.From, error) {
	var set []string
	for _, n := range []string{"from-earliest", "from-offset", "from-time", "by-duration", "from-file"} {
		if cmd.Flags().Changed(n) {
			set = append(set, "--"+n)
		}
	}
	if len(set) > 1 {
		return replay.From{}, &usageError{fmt.Errorf("%s: give only one start", strings.Join(set, " and "))}
	}
	switch {
	case cmd.Flags().Changed("from-offset"):
		if !strings.Contains(t.fromOffset, "=") {
			o, err := strconv.ParseInt(strings.TrimSpace(t.fromOffset), 10, 64)
			if err != nil || o < 0 {
				return replay.From{}, &usageError{fmt.Errorf("--from-offset %q: give an offset of 0 or more, or partition=offset pairs such as 0=120,1=80", t.fromOffset)}
			}
			return replay.From{Offset: &o}, nil
		}
		offs, err := replay.ParsePartitionOffsets(t.fromOffset)
		if err != nil {
			return replay.From{}, &usageError{fmt.Errorf("--from-offset %q: %w", t.fromOffset, err)}
		}
		return replay.From{Offsets: offs}, nil
	case cmd.Flags().Changed("from-file"):
		fh, err := os.Open(t.fromFile)
		if err != nil {
			return replay.From{}, &usageError{fmt.Errorf("--from-file: %w", err)}
		}
		defer fh.Close()
		offs, err := replay.ReadOffsetsCSV(fh)
		if err != nil {
			return replay.From{}, &usageError{fmt.Errorf("--from-file %s: %w", t.fromFile, err)}
		}
		return replay.From{Offsets: offs}, nil
	case t.fromTime != "":
		at, err := time.Parse(time.RFC3339Nano, t.fromTime)
		if err != nil {
			return replay.From{}, &usageError{fmt.Errorf("--from-time %q: give an RFC 3339 time such as 2026-05-28T00:00:00Z", t.fromTime)}
		}
		return replay.From{Time: at}, nil
	case cmd.Flags().Changed("by-duration"):
		d, err := replay.ParseDuration(t.byDuration)
		if err != nil {
			return replay.From{}, &usageError{fmt.Errorf("--by-duration: %w", err)}
		}
		if d <= 0 {
			return replay.From{}, &usageError{fmt.Errorf("--by-duration %s: give a positive duration such as 24h or P1D", t.byDuration)}
		}
		return replay.From{Time: time.Now().Add(-d)}, nil
	}
	return replay.From{}, nil
}

type replayFlags struct {
	target      targetFlags
	into        string
	pipelines   []string
	untilOffset int64
	untilTime   string
	execute     bool
	json        bool
	verify      bool
	restart     bool
	sampleRatio float64
	key         string
	progress    time.Duration
	inPlace     bool
	rewindOnly  bool
	force       bool
	jobName     string
}

func newReplayCommand(g *globalFlags) *cobra.Command {
	f := &replayFlags{}
	cmd := &cobra.Command{
		Use:   "replay <topology.yaml> --into <new-app> | --in-place [--pipeline <name>...] [start] | --key <key> --until-time <time>",
		Short: "Rebuild a topology's tables from the event log beside the live ones, or fold one key's state at a time",
		Long: `Rebuild (--into): run the topology's groups under a new application name,
so into new consumer groups <new-app>-<pipeline> and new tables
<new-app>-<pipeline>-table beside the live ones, which keep running. The new
groups start at --from-earliest (the default), --from-offset N (every
partition, clamped to the log), --from-time T or --by-duration D, and run up
to the end offsets of the inputs taken when the job starts, or to
--until-offset / --until-time (then records past the end are skipped). The
job stops once every group has committed up to its end: the groups reading
the input topics when their committed offsets reach the planned ends, the
groups reading the job's own repartition or table topics when their writers
are done and they have committed up to those topics' ends.

Without --execute the job prints its plan (per input partition: from, to,
record count; the groups, tables and internal topics it creates) and changes
nothing. A job killed half-way resumes from its groups' committed offsets
when started again with the same --into (--restart clears them, its tables
and its local state and starts again). --verify compares every key of the
rebuilt tables with the live ones afterwards (exit code 1 on differences).

Replayed records run in spans marked weft.replay=true, new roots linked
(replayed_from) to the records' original trace context, sampled at
--sample-ratio. Every version the job writes names it in its lineage
(weft explain, GET /tables/{table}/{key}/lineage: replay_job): by default
<mode>:<app>[/<pipelines>]@<start time>, such as into:bank-v2@20261202T023100Z
(the plan and the logs print it; a resumed job keeps the name of its first
run), or --job-name; a live version names none.

In place (--in-place [start] [--rewind-only] [--force]): rewind the live
tables to their state just before the start offsets, from their changelogs
(each stored version names the input offsets it applied), reset the live
groups' committed offsets there and reprocess to the end of the inputs.
Where the record cache wrote one version for updates on both sides of the
start, the groups start again earlier and skip what each key holds already.
--rewind-only stops at the start: the next weft run reprocesses from there.
The plan says how many keys change. It refuses while the live groups have
members, naming them; --force waits for members that are gone (a killed
instance until its session times out). Tables fed by the input topics, or
by a group_by's repartition topic after them, can be rewound (not those
behind a table topic or a second repartition topic).

Point in time (--key K --until-time T [--pipeline P]): fold the records of
key K up to T (the record timestamps, or the event time the topology's
timestamp expression extracts) with the pipeline's own steps and print the
value the key had then, with the records that made it. Only the key's
partition is read.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return &usageError{fmt.Errorf("replay takes one topology file, got %d arguments", len(args))}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error { return runReplay(cmd, g, f, args[0]) },
	}
	f.target.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&f.into, "into", "", "application name of the rebuild: new groups <into>-<pipeline>, tables <into>-<pipeline>-table")
	fl.StringSliceVar(&f.pipelines, "pipeline", nil, "pipeline to rebuild (repeatable; the groups it reads from come along); default all")
	fl.Int64Var(&f.untilOffset, "until-offset", 0, "stop before this offset in every partition")
	fl.StringVar(&f.untilTime, "until-time", "", "stop after the last record at or before this RFC 3339 time")
	fl.BoolVar(&f.execute, "execute", false, "run the job (without it, only print the plan)")
	fl.BoolVar(&f.json, "json", false, "print the plan, summary or key state as JSON")
	fl.BoolVar(&f.verify, "verify", false, "after the run, compare the rebuilt tables with the live ones; exit code 1 on differences")
	fl.BoolVar(&f.restart, "restart", false, "discard the progress of an earlier run with the same --into and start again")
	fl.Float64Var(&f.sampleRatio, "sample-ratio", 0.01, "trace sample ratio of the replayed records")
	fl.StringVar(&f.key, "key", "", "print the state of this key at --until-time, folded from the log")
	fl.DurationVar(&f.progress, "progress-interval", 5*time.Second, "how often to log progress when stderr is not a terminal")
	fl.BoolVar(&f.inPlace, "in-place", false, "rewind the live tables to their state before the start offsets, reset the live groups' offsets there and reprocess to the end")
	fl.BoolVar(&f.rewindOnly, "rewind-only", false, "with --in-place: stop at the start offsets (the next weft run reprocesses from there)")
	fl.StringVar(&f.jobName, "job-name", "", "name of the job in the lineage of every version it writes (default <mode>:<app>[/<pipelines>]@<start time>)")
	fl.BoolVar(&f.force, "force", false, "with --in-place: run although the live groups have members, waiting for them to leave (for instances that are gone)")
	return cmd
}

func runReplay(cmd *cobra.Command, g *globalFlags, f *replayFlags, path string) error {
	from, err := f.target.from(cmd)
	if err != nil {
		return err
	}
	var until replay.Until
	if cmd.Flags().Changed("until-offset") {
		if f.untilOffset < 0 {
			return &usageError{fmt.Errorf("--until-offset %d: give an offset of 0 or more", f.untilOffset)}
		}
		o := f.untilOffset
		until.Offset = &o
	}
	if f.untilTime != "" {
		if until.Offset != nil {
			return &usageError{errors.New("--until-offset and --until-time: give only one end")}
		}
		if until.Time, err = time.Parse(time.RFC3339Nano, f.untilTime); err != nil {
			return &usageError{fmt.Errorf("--until-time %q: give an RFC 3339 time such as 2026-05-28T00:00:00Z", f.untilTime)}
		}
	}
	if f.sampleRatio < 0 || f.sampleRatio > 1 {
		return &usageError{fmt.Errorf("--sample-ratio %g: give a ratio between 0 and 1", f.sampleRatio)}
	}
	if f.key != "" {
		if until.Time.IsZero() {
			return &usageError{errors.New("--key needs --until-time: the time to fold the key's records up to")}
		}
		if f.into != "" {
			return &usageError{errors.New("--key and --into: a point-in-time read builds no tables; give one of them")}
		}
		if len(f.pipelines) > 1 {
			return &usageError{errors.New("--key: give at most one --pipeline")}
		}
	} else if f.inPlace {
		switch {
		case f.into != "":
			return &usageError{errors.New("--in-place and --into: a job rewinds the live tables or rebuilds new ones; give one of them")}
		case until.Offset != nil || !until.Time.IsZero():
			return &usageError{errors.New("--in-place reprocesses to the end of the inputs: --until-offset and --until-time do not apply (--rewind-only stops at the start)")}
		case f.verify:
			return &usageError{errors.New("--verify compares a rebuild with the live tables; with --in-place the live tables are rebuilt themselves")}
		case f.restart:
			return &usageError{errors.New("--restart clears a rebuild made with --into; --in-place always starts from the changelogs")}
		}
	} else if f.into == "" {
		return &usageError{errors.New("replay needs --into <new-app> (a rebuild), --in-place (rewind the live tables) or --key with --until-time (a point-in-time read)")}
	}
	if !f.inPlace && (f.rewindOnly || f.force) {
		return &usageError{errors.New("--rewind-only and --force apply to --in-place only")}
	}
	if cmd.Flags().Changed("job-name") {
		if f.key != "" {
			return &usageError{errors.New("--job-name names a job that writes tables; --key only reads")}
		}
		if err := replay.CheckJobName(f.jobName); err != nil {
			return &usageError{fmt.Errorf("--job-name: %w", err)}
		}
	}
	log, err := g.logger(os.Stderr)
	if err != nil {
		return err
	}
	file, err := topofile.LoadFile(path)
	if err != nil {
		return err
	}
	g.applyFile(cmd, file)
	k, err := g.clientKafka()
	if err != nil {
		return err
	}
	opts, err := k.FranzOptions()
	if err != nil {
		return &usageError{err}
	}
	ctx := cmd.Context()
	out := cmd.OutOrStdout()
	if f.key != "" {
		spec := replay.KeySpec{File: file, Key: f.key, Until: until.Time}
		if len(f.pipelines) == 1 {
			spec.Pipeline = f.pipelines[0]
		}
		st, err := replay.KeyAt(ctx, opts, spec)
		if err != nil {
			return k.Explain(err)
		}
		return printKeyState(out, st, f.json)
	}

	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("connect to Kafka: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if f.inPlace {
		return runInPlace(ctx, cmd, log, k, opts, adm, g.stateDir, f, file, from)
	}
	plan, err := replay.MakePlan(ctx, adm, replay.Spec{File: file, Into: f.into, Pipelines: f.pipelines, From: from, Until: until, Restart: f.restart, Job: f.jobName})
	if err == nil {
		err = plan.ContinueJob(ctx, opts) // a resumed run keeps the earlier run's name
	}
	if err != nil {
		return k.Explain(err)
	}
	if !f.execute {
		if f.json {
			return writeJSON(out, plan)
		}
		printPlan(out, plan)
		fmt.Fprintln(out, "nothing changed: run again with --execute to run the job")
		return nil
	}
	if !f.json {
		printPlan(out, plan)
	}
	summary, err := executeReplay(ctx, log, k, g.stateDir, adm, plan, f, file)
	if err != nil {
		return err
	}
	if !f.json {
		printSummary(out, summary)
	}
	var diffs []replay.TableDiff
	if f.verify {
		if diffs, err = replay.Verify(ctx, opts, plan); err != nil {
			return fmt.Errorf("--verify: %w", err)
		}
	}
	if f.json {
		if err := writeJSON(out, struct {
			*replay.Summary
			Verify []replay.TableDiff `json:"verify,omitempty"`
		}{summary, diffs}); err != nil {
			return err
		}
	} else {
		printDiffs(out, diffs)
	}
	for _, d := range diffs {
		if !d.Same() {
			return fmt.Errorf("--verify: the rebuilt tables differ from the live ones (see above)")
		}
	}
	return nil
}

// runInPlace plans an in-place job and runs it with --execute.
func runInPlace(ctx context.Context, cmd *cobra.Command, log *slog.Logger, k kafkaclient.Config, opts []kgo.Opt, adm *kadm.Client,
	stateDir string, f *replayFlags, file *topofile.File, from replay.From) error {
	out := cmd.OutOrStdout()
	ip, err := replay.MakeInPlacePlan(ctx, adm, opts, replay.InPlaceSpec{File: file, Pipelines: f.pipelines, From: from,
		RewindOnly: f.rewindOnly, Force: f.force, StateDir: stateDir, Job: f.jobName})
	if err != nil {
		return k.Explain(err)
	}
	if !f.execute {
		if f.json {
			return writeJSON(out, ip)
		}
		printInPlacePlan(out, ip)
		fmt.Fprintln(out, "nothing changed: run again with --execute to run the job")
		return nil
	}
	if !f.json {
		printInPlacePlan(out, ip)
	}
	prov, err := tracing.Setup(ctx, tracing.WithLogger(log))
	if err != nil {
		return err
	}
	defer shutdownTracing(log, prov)
	tp := prov.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(f.sampleRatio)))
	progress, finish := progressDisplay(log, f.progress)
	summary, err := replay.ExecuteInPlace(ctx, adm, opts, ip, replay.Options{Kafka: k, StateDir: stateDir, Logger: log, TracerProvider: tp,
		StopOnRejection: file.OnError == topofile.OnErrorStop, Progress: progress,
		PollInterval: min(500*time.Millisecond, max(f.progress, 50*time.Millisecond))})
	finish()
	if err != nil {
		return err
	}
	if f.json {
		return writeJSON(out, struct {
			InPlace *replay.InPlacePlan `json:"in_place"`
			*replay.Summary
		}{ip, summary})
	}
	printSummary(out, summary)
	return nil
}

func printInPlacePlan(w io.Writer, ip *replay.InPlacePlan) {
	mode := "rewind and reprocess to the end"
	if ip.RewindOnly {
		mode = "rewind only"
	}
	fmt.Fprintf(w, "replay %s (app %s) in place: %s\n", ip.File, ip.App, mode)
	fmt.Fprintf(w, "job: %s (named in the lineage of every version it writes)\n", ip.Job)
	fmt.Fprintln(w, "groups:")
	for _, g := range ip.Groups {
		fmt.Fprintf(w, "  %s (reads %s, table %s)\n", g.Group, strings.Join(g.Input, ", "), g.Table)
	}
	fmt.Fprintln(w, "input partitions:")
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  TOPIC\tPARTITION\tTARGET\tFROM\tTO\tRECORDS\tNOTE")
	for _, r := range ip.Partitions {
		fmt.Fprintf(tw, "  %s\t%d\t%d\t%d\t%d\t%d\t%s\n", r.Topic, r.Partition, *r.Target, r.From, r.To, r.Records, r.Note)
	}
	tw.Flush()
	fmt.Fprintln(w, "tables:")
	for _, t := range ip.Tables {
		fmt.Fprintf(w, "  %s: %d keys, %d change (%d rewound, %d deleted), %d unchanged; %d versions read, %d coalesced across the target\n",
			t.Table, t.Keys, t.Rewound+t.Deleted, t.Rewound, t.Deleted, t.Unchanged, t.Versions, t.Coalesced)
	}
	fmt.Fprintf(w, "keys that change: %d; records to process again: %d\n", ip.KeysChanged, ip.Records)
	if len(ip.DeleteStateDirs) > 0 {
		fmt.Fprintf(w, "removes local state: %s\n", strings.Join(ip.DeleteStateDirs, ", "))
	}
	for _, m := range ip.Active {
		fmt.Fprintf(w, "active member: %s\n", m)
	}
	for _, n := range ip.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
}

// executeReplay runs the plan with tracing and a progress display.
func executeReplay(ctx context.Context, log *slog.Logger, k kafkaclient.Config, stateDir string, adm *kadm.Client,
	plan *replay.Plan, f *replayFlags, file *topofile.File) (*replay.Summary, error) {
	prov, err := tracing.Setup(ctx, tracing.WithLogger(log))
	if err != nil {
		return nil, err
	}
	defer shutdownTracing(log, prov)
	tp := prov.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(f.sampleRatio)))
	progress, finish := progressDisplay(log, f.progress)
	defer finish()
	return replay.Execute(ctx, adm, plan, replay.Options{Kafka: k, StateDir: stateDir, Logger: log, TracerProvider: tp,
		StopOnRejection: file.OnError == topofile.OnErrorStop, Progress: progress,
		// Progress is checked at least as often as it is logged (every
		// 50ms at most, 500ms at least).
		PollInterval: min(500*time.Millisecond, max(f.progress, 50*time.Millisecond))})
}

// progressDisplay is a progress bar with rate and ETA on a terminal, a log
// line every interval otherwise.
func progressDisplay(log *slog.Logger, every time.Duration) (func(done, total int64), func()) {
	if term.IsTerminal(int(os.Stderr.Fd())) {
		var bar *progressbar.ProgressBar
		return func(done, total int64) {
				if bar == nil {
					bar = progressbar.NewOptions64(total, progressbar.OptionSetWriter(os.Stderr),
						progressbar.OptionSetDescription("replay"), progressbar.OptionShowCount(), progressbar.OptionShowIts(),
						progressbar.OptionSetItsString("records"), progressbar.OptionSetPredictTime(true),
						progressbar.OptionThrottle(200*time.Millisecond), progressbar.OptionClearOnFinish())
				}
				_ = bar.Set64(done)
			}, func() {
				if bar != nil {
					_ = bar.Finish()
				}
			}
	}
	start, last := time.Now(), time.Time{}
	return func(done, total int64) {
		if every <= 0 || time.Since(last) < every {
			return
		}
		last = time.Now()
		rate := float64(done) / max(time.Since(start).Seconds(), 1e-9)
		attrs := []any{"done", done, "total", total, "records_per_second", int64(rate)}
		if rate > 0 && done < total {
			attrs = append(attrs, "eta", (time.Duration(float64(total-done)/rate) * time.Second).Round(time.Second))
		}
		log.Info("replay progress", attrs...)
	}, func() {}
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func printPlan(w io.Writer, p *replay.Plan) {
	fmt.Fprintf(w, "replay %s (app %s) into %s\n", p.File, p.App, p.Into)
	fmt.Fprintf(w, "job: %s (named in the lineage of every version it writes)\n", p.Job)
	fmt.Fprintln(w, "groups:")
	for _, g := range p.Groups {
		table := ""
		if g.Table != "" {
			table = ", table " + g.Table
		}
		fmt.Fprintf(w, "  %s (reads %s%s)\n", g.Group, strings.Join(g.Input, ", "), table)
	}
	fmt.Fprintln(w, "input partitions:")
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  TOPIC\tPARTITION\tFROM\tTO\tRECORDS\tDONE\tNOTE")
	for _, r := range p.Partitions {
		done := "-"
		if r.Done != nil {
			done = fmt.Sprint(*r.Done)
		}
		fmt.Fprintf(tw, "  %s\t%d\t%d\t%d\t%d\t%s\t%s\n", r.Topic, r.Partition, r.From, r.To, r.Records, done, r.Note)
	}
	tw.Flush()
	fmt.Fprintf(w, "records: %d (left to read: %d)\n", p.Records, p.Remaining)
	fmt.Fprintf(w, "creates tables: %s\n", strings.Join(p.Tables, ", "))
	var repartition []string
	for _, t := range p.InternalTopics {
		if !slices.Contains(p.Tables, t) {
			repartition = append(repartition, t)
		}
	}
	if len(repartition) > 0 {
		fmt.Fprintf(w, "creates repartition topics: %s\n", strings.Join(repartition, ", "))
	}
	fmt.Fprintf(w, "dead letters go to: %s\n", strings.Join(p.DeadLetters, ", "))
	for _, n := range p.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
}

func printSummary(w io.Writer, s *replay.Summary) {
	fmt.Fprintf(w, "replayed %d records into %s in %.1fs (%.0f records/s), job %s\n", s.Records, s.Plan.Into, s.Seconds, s.Rate, s.Plan.Job)
	for _, g := range s.Groups {
		fmt.Fprintf(w, "  %s: processed %d, rejected %d, already applied %d\n", g.Group, g.Processed, g.Rejected, g.Skipped)
	}
}

func printDiffs(w io.Writer, diffs []replay.TableDiff) {
	for _, d := range diffs {
		verdict := "equal"
		if !d.Same() {
			verdict = "DIFFERENT"
		}
		fmt.Fprintf(w, "verify %s vs %s: %s: %d keys equal, %d different %v, %d missing in the rebuild %v, %d only in the rebuild %v\n",
			d.Rebuilt, d.Live, verdict, d.Equal, d.Different, d.DifferentKeys, d.MissingInRebuilt, d.RebuiltMissing, d.MissingInLive, d.LiveMissing)
	}
}

func printKeyState(w io.Writer, st *replay.KeyState, asJSON bool) error {
	if asJSON {
		var value json.RawMessage
		if st.Found {
			if json.Valid(st.Value) {
				value = st.Value
			} else {
				value, _ = json.Marshal(string(st.Value))
			}
		}
		return writeJSON(w, struct {
			*replay.KeyState
			Value json.RawMessage `json:"value"`
		}{st, value})
	}
	if st.Found {
		fmt.Fprintf(w, "%s[%s] at %s: %s\n", st.Table, st.Key, st.Until.UTC().Format(time.RFC3339), st.Value)
	} else {
		fmt.Fprintf(w, "%s[%s] at %s: no value\n", st.Table, st.Key, st.Until.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(w, "made by %d records:", len(st.Records))
	for _, r := range st.Records {
		fmt.Fprintf(w, " %s/%d@%d", r.Topic, r.Partition, r.Offset)
	}
	fmt.Fprintf(w, "\nread %d records of %s/%d (the key's partition only)\n", st.Read, st.Topic, st.Partition)
	if !st.Found {
		return fmt.Errorf("%s had no value in %s at %s", st.Key, st.Table, st.Until.UTC().Format(time.RFC3339))
	}
	return nil
}
