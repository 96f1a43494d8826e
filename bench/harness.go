package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lovoo/goka"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weftstream/weft/broker"
	"github.com/weftstream/weft/kafkaclient"
	"github.com/weftstream/weft/topology"
)

// Engines and workloads.
const (
	engineRaw      = "raw-consume"
	engineGoka     = "goka-leveldb"
	engineWeft     = "weft"
	engineWeft1    = "weft-1pct"
	engineWeft100  = "weft-100pct"
	engineKStreams = "kafka-streams"

	workloadCount  = "count"
	workloadBank   = "bank"
	workloadJoin   = "join"
	workloadWindow = "window"
)

var (
	allEngines   = []string{engineRaw, engineGoka, engineWeft, engineWeft1, engineWeft100, engineKStreams}
	allWorkloads = []string{workloadCount, workloadBank, workloadJoin, workloadWindow}
)

// config is the harness's command line.
type config struct {
	workloads   []string
	events      int
	keys        int
	engines     []string
	brokers     []string
	reps        int
	json        bool
	partitions  int
	testdata    string
	kstreamsDir string
	timeout     time.Duration
	cpuProfile  string // directory for the Go engines' CPU profiles; empty: none
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c config
	workloads := fs.String("workload", workloadCount, "workloads to run, comma-separated: "+strings.Join(allWorkloads, ", ")+
		" (count: records per key; bank: testdata/cqrs/bank.yaml; join: orders joined with a customer table, totals per customer; window: records per key and 1-minute event-time window)")
	fs.IntVar(&c.events, "n", 500_000, "input records (bank: rounded up to whole copies of testdata/bank/events.jsonl, 5006 records each)")
	fs.IntVar(&c.keys, "keys", 10_000, "distinct keys of the count and window inputs, customers of the join input")
	engines := fs.String("engines", strings.Join(allEngines, ","), "engines to run, comma-separated")
	brokers := fs.String("brokers", "", "Kafka brokers, comma-separated; empty: start the embedded broker in this process")
	fs.IntVar(&c.reps, "reps", 1, "repetitions; the order of the engines is rotated from one to the next")
	fs.BoolVar(&c.json, "json", false, "print JSON lines instead of a text table")
	fs.IntVar(&c.partitions, "partitions", 8, "partitions of the input topic")
	fs.StringVar(&c.testdata, "testdata", "", "the repository's testdata directory (default: testdata or ../testdata, whichever exists)")
	fs.StringVar(&c.kstreamsDir, "kafka-streams-dir", "", "the Kafka Streams peer's Maven project (default: bench/peers/kafka-streams or peers/kafka-streams)")
	fs.DurationVar(&c.timeout, "timeout", 15*time.Minute, "time limit of one engine's run")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "directory where each Go engine run writes its CPU profile (<workload>-<engine>-r<rep>.pprof, and .allocs.pprof; go tool pprof)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q (flags only)", fs.Arg(0))
	}
	c.workloads = splitList(*workloads)
	for _, w := range c.workloads {
		if !slices.Contains(allWorkloads, w) {
			return c, fmt.Errorf("-workload: unknown workload %q (want %s)", w, strings.Join(allWorkloads, ", "))
		}
	}
	if len(c.workloads) == 0 {
		return c, errors.New("-workload: no workload given")
	}
	c.engines = splitList(*engines)
	for _, e := range c.engines {
		if !slices.Contains(allEngines, e) {
			return c, fmt.Errorf("-engines: unknown engine %q (want some of %s)", e, strings.Join(allEngines, ", "))
		}
	}
	if len(c.engines) == 0 {
		return c, errors.New("-engines: no engine given")
	}
	c.brokers = splitList(*brokers)
	if c.events <= 0 {
		return c, errors.New("-n must be a positive number of records")
	}
	if c.keys <= 0 {
		return c, errors.New("-keys must be a positive number of keys")
	}
	if c.reps <= 0 {
		return c, errors.New("-reps must be at least 1")
	}
	if c.partitions <= 0 {
		return c, errors.New("-partitions must be at least 1")
	}
	if c.testdata == "" {
		c.testdata = firstDir("testdata", "../testdata")
	}
	if c.kstreamsDir == "" {
		c.kstreamsDir = firstDir("bench/peers/kafka-streams", "peers/kafka-streams")
	}
	return c, nil
}

func splitList(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" && !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}

func firstDir(dirs ...string) string {
	for _, d := range dirs {
		if st, err := os.Stat(d); err == nil && st.IsDir() {
			return d
		}
	}
	return dirs[0]
}

// harnessMain runs the harness and returns the exit code: 0, 1 if an
// engine failed or produced a wrong table, 2 for a bad command line.
func harnessMain(args []string, stdout, stderr io.Writer) (int, error) {
	c, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0, nil
	}
	if err != nil {
		return 2, err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx := context.Background()
	h := &harness{cfg: c, log: log, out: stdout, runID: strconv.FormatInt(time.Now().UnixNano()/1e6%1e8, 36)}
	if len(c.brokers) == 0 {
		b, err := broker.Start(ctx, broker.WithAddr("127.0.0.1:0"), broker.WithPartitions(int32(c.partitions)),
			broker.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
		if err != nil {
			return 1, fmt.Errorf("start the embedded broker: %w", err)
		}
		defer b.Close()
		h.brokers = b.Addrs()
		h.embedded = true
		log.Info("embedded broker started", "addrs", h.brokers)
	} else {
		h.brokers = c.brokers
	}
	if slices.Contains(c.engines, engineKStreams) {
		if h.embedded {
			h.skip(engineKStreams, kstreamsEmbedded)
		} else if err := h.prepareKStreams(ctx); err != nil {
			return 1, err
		}
	}
	for _, w := range c.workloads {
		if err := h.runWorkload(ctx, w); err != nil {
			return 1, err
		}
	}
	h.report()
	if h.failed {
		return 1, errors.New("at least one engine failed or produced a wrong table (see above)")
	}
	return 0, nil
}

// kstreamsEmbedded is why Kafka Streams does not run on the embedded broker
// (tried with kfake and Kafka Streams 4.4).
const kstreamsEmbedded = "Kafka Streams cannot create its changelog topics on the embedded broker (kfake answers DescribeConfigs with config source -1, which Kafka's admin client rejects: \"id should be positive\"); run with -brokers on Apache Kafka"

// harness is one invocation of the benchmark.
type harness struct {
	cfg      config
	log      *slog.Logger
	out      io.Writer
	runID    string
	brokers  []string
	embedded bool
	jar      string            // the Kafka Streams peer, "" if skipped
	skipped  map[string]string // engine -> why it did not run
	runs     []runRow
	failed   bool
}

// prepareKStreams builds the Kafka Streams peer, or records why it is
// skipped (no Java or Maven).
func (h *harness) prepareKStreams(ctx context.Context) error {
	h.log.Info("building the Kafka Streams peer (mvn -q package, unless its jar is up to date)", "dir", h.cfg.kstreamsDir)
	jar, skip, err := buildKStreams(ctx, h.cfg.kstreamsDir)
	if err != nil {
		return err
	}
	if skip != "" {
		h.skip(engineKStreams, skip)
		return nil
	}
	h.jar = jar
	return nil
}

func (h *harness) skip(engine, why string) {
	if h.skipped == nil {
		h.skipped = map[string]string{}
	}
	h.skipped[engine] = why
	h.log.Warn("engine skipped", "engine", engine, "reason", why)
}

// inputTopics are the topics a workload's engines read.
type inputTopics struct {
	input     string // the records every engine handles
	customers string // join: the customer table
}

// runWorkload produces the workload's input once and runs every engine on
// it, reps times, the order rotated.
func (h *harness) runWorkload(ctx context.Context, workload string) error {
	kcfg := kafkaclient.Config{Brokers: h.brokers}
	topics := inputTopics{input: fmt.Sprintf("bench-%s-in-%s", workload, h.runID)}
	input := topics.input
	var records []record
	var want expectation
	switch workload {
	case workloadCount:
		records, want.counts = countInput(h.cfg.events, h.cfg.keys)
	case workloadWindow:
		records, want.counts = windowInput(h.cfg.events, h.cfg.keys, windowBaseFor(time.Now()))
	case workloadJoin:
		var table []record
		table, records, want.join = joinInput(h.cfg.events, h.cfg.keys)
		// The customer table first, complete before any engine starts:
		// a compacted topic co-partitioned with the orders, plain JSON
		// values (weft reads a value without an envelope as the user
		// value, as of a table written outside weft).
		topics.customers = fmt.Sprintf("bench-%s-customers-%s", workload, h.runID)
		compact := "compact"
		if err := createTopic(ctx, h.brokers, topics.customers, int32(h.cfg.partitions), map[string]*string{"cleanup.policy": &compact}); err != nil {
			return err
		}
		if err := produce(ctx, kcfg, topics.customers, table, nil); err != nil {
			return err
		}
	case workloadBank:
		in, err := loadBankInput(filepath.Join(h.cfg.testdata, "bank"), h.cfg.events, 0)
		if err != nil {
			return fmt.Errorf("bank input (-testdata): %w", err)
		}
		records, want.bank = in.records, in
		want.bank.records = nil // the fold needs the expected accounts only
	}
	events := len(records)
	if err := createTopic(ctx, h.brokers, input, int32(h.cfg.partitions), nil); err != nil {
		return err
	}
	start := time.Now()
	if err := produce(ctx, kcfg, input, records, nil); err != nil {
		return err
	}
	h.log.Info("input produced", "workload", workload, "topic", input, "records", events, "took", time.Since(start).Round(time.Millisecond))
	records = nil

	var engines []string
	for _, e := range h.cfg.engines {
		if _, skipped := h.skipped[e]; !skipped {
			engines = append(engines, e)
		}
	}
	for rep := range h.cfg.reps {
		for i := range engines {
			e := engines[(i+rep)%len(engines)]
			row := h.runOne(ctx, workload, e, topics, events, want, rep)
			h.runs = append(h.runs, row)
			if row.Error != "" {
				h.failed = true
				h.log.Error("engine failed", "engine", e, "workload", workload, "rep", rep+1, "error", row.Error)
			} else {
				h.log.Info("engine done", "engine", e, "workload", workload, "rep", rep+1,
					"wall", time.Duration(row.WallSeconds*float64(time.Second)).Round(time.Millisecond),
					"cpu_us_per_event", fmt.Sprintf("%.2f", row.CPUPerEvent), "peak_rss_mib", fmt.Sprintf("%.0f", mib(row.PeakRSS)),
					"changelog_mib", fmt.Sprintf("%.2f", mib(row.ChangelogBytes)), "spans", row.Spans)
			}
			if h.cfg.json {
				h.printJSON(row)
			}
		}
	}
	return nil
}

// runOne runs engine e once over the input, then verifies its table.
func (h *harness) runOne(ctx context.Context, workload, e string, topics inputTopics, events int, want expectation, rep int) runRow {
	row := runRow{Kind: "run", Engine: e, Workload: workload, Events: events, Rep: rep + 1, Broker: h.brokerKind()}
	stateDir, err := os.MkdirTemp("", "weft-bench-"+e+"-")
	if err != nil {
		row.Error = err.Error()
		return row
	}
	defer os.RemoveAll(stateDir)
	spec := childSpec{
		Engine: e, Workload: workload, Brokers: h.brokers, Input: topics.input, Customers: topics.customers, Events: events,
		App:      fmt.Sprintf("bench-%s-%s-%s-r%d", workload, e, h.runID, rep+1),
		StateDir: stateDir, BankYAML: filepath.Join(h.cfg.testdata, "cqrs", "bank.yaml"), Timeout: h.cfg.timeout.String(),
	}
	if h.cfg.cpuProfile != "" && e != engineKStreams {
		spec.CPUProfile = filepath.Join(h.cfg.cpuProfile, fmt.Sprintf("%s-%s-r%d.pprof", workload, e, rep+1))
	}
	if err := h.precreateTable(ctx, spec); err != nil {
		row.Error = err.Error()
		return row
	}
	var cmd *exec.Cmd
	if e == engineKStreams {
		cmd = kstreamsCmd(ctx, h.jar, spec)
	} else if cmd, err = goChild(ctx, spec); err != nil {
		row.Error = err.Error()
		return row
	}
	run, err := runProcess(ctx, cmd, h.cfg.timeout+2*time.Minute)
	row.fill(run)
	if err != nil {
		row.Error = err.Error()
		return row
	}
	if run.result.Seen != int64(events) || run.result.Rejected != 0 {
		row.Error = fmt.Sprintf("handled %d records (%d rejected), the input has %d, none invalid", run.result.Seen, run.result.Rejected, events)
		return row
	}
	if e == engineRaw {
		return row // no table: it only reads
	}
	table := run.result.Table
	if e == engineKStreams {
		table = kstreamsTable(spec.App, workload)
	}
	rctx, cancel := context.WithTimeout(ctx, h.cfg.timeout)
	defer cancel()
	tab, err := readChangelog(rctx, h.brokers, table)
	if err != nil {
		row.Error = fmt.Sprintf("read the table %s: %v", table, err)
		return row
	}
	row.Table = table
	row.ChangelogBytes = tab.bytes
	row.ChangelogRecords = tab.records
	if err := verifyTable(e, workload, tab, want, events); err != nil {
		row.Error = err.Error()
	} else {
		row.Verified = true
	}
	return row
}

// precreateTable creates the table topic of a goka-based engine (goka,
// weft) before it starts. goka's processor (weft's too, being built on it)
// creates a missing table topic and at once asks for its oldest offsets; on
// Apache Kafka the new partitions may have no leader yet ("Tried to send a
// message to a replica that is not the leader") and Run fails. A deployed
// application finds its table topic in place, so it is created beforehand,
// compacted and co-partitioned with the input, as goka would create it.
func (h *harness) precreateTable(ctx context.Context, spec childSpec) error {
	var table string
	switch spec.Engine {
	case engineGoka:
		table = string(goka.GroupTable(goka.Group(spec.App)))
	case engineWeft, engineWeft1, engineWeft100:
		top, err := weftTopology(spec)
		if err != nil {
			return err
		}
		c, err := topology.Compile(top)
		if err != nil {
			return fmt.Errorf("compile the weft topology: %w", err)
		}
		if table, err = resultTable(c); err != nil {
			return fmt.Errorf("weft: %w", err)
		}
	default:
		return nil
	}
	compact := "compact"
	return createTopic(ctx, h.brokers, table, int32(h.cfg.partitions), map[string]*string{"cleanup.policy": &compact})
}

func (h *harness) brokerKind() string {
	if h.embedded {
		return "embedded"
	}
	return strings.Join(h.brokers, ",")
}

// createTopic creates topic with partitions partitions and one replica and
// waits until every partition answers.
func createTopic(ctx context.Context, brokers []string, topic string, partitions int32, configs map[string]*string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if _, err := adm.CreateTopic(ctx, partitions, 1, configs, topic); err != nil {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	// Ready when every partition answers a ListOffsets request (what
	// goka's processor asks first): a partition whose leader is in the
	// metadata may still answer "not the leader" for a moment.
	for {
		offs, err := adm.ListStartOffsets(ctx, topic)
		if err == nil && offs.Error() == nil {
			n := 0
			offs.Each(func(kadm.ListedOffset) { n++ })
			if n == int(partitions) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("topic %s not ready: %w", topic, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
