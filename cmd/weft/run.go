package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/weftstream/weft/examples/bank"
	"github.com/weftstream/weft/kafkaclient"
	"github.com/weftstream/weft/processors"
	"github.com/weftstream/weft/serve"
	"github.com/weftstream/weft/statestore"
	"github.com/weftstream/weft/topofile"
	"github.com/weftstream/weft/topology"
	"github.com/weftstream/weft/tracing"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

type runFlags struct {
	input          string
	group          string
	progress       time.Duration
	cacheMaxBytes  int64
	commitInterval time.Duration
	api            queryAPIFlags
}

// recordCache returns the record cache option of the groups: the flags
// where set, else the topology file's settings, else the defaults.
func (f *runFlags) recordCache(cmd *cobra.Command, file *topofile.File) (processors.Option, error) {
	size, every := file.RecordCache()
	if cmd.Flags().Changed("cache-max-bytes") {
		if f.cacheMaxBytes < 0 {
			return nil, &usageError{fmt.Errorf("--cache-max-bytes must be at least 0 (0 turns the record cache off), not %d", f.cacheMaxBytes)}
		}
		size = f.cacheMaxBytes
	}
	if cmd.Flags().Changed("commit-interval") {
		if f.commitInterval <= 0 {
			return nil, &usageError{fmt.Errorf("--commit-interval must be positive, not %s", f.commitInterval)}
		}
		every = f.commitInterval
	}
	return processors.WithRecordCache(size, every), nil
}

func newRunCommand(g *globalFlags) *cobra.Command {
	f := &runFlags{}
	cmd := &cobra.Command{
		Use:   "run [topology.yaml]",
		Short: "Run a topology file (or the built-in bank-account projection) as a stream processor",
		Long: `Run the topology a file describes (see docs/topology-format.md): one goka
processor per table and per source with outputs, in one process. The file's
brokers, SASL settings, on_error and tracing.sample_ratio apply; --brokers
and the other flags win over the file.

Without a file, run the built-in bank-account projection: AccountCreated,
Deposited, Withdrawn and
Closed events (JSON, keyed by account) from --input are folded into the
read model of each account (owner, balance, status, event count), kept in
Pebble under --state-dir and in the table topic <group>-table. Every stored
value names the span that wrote it (see 'weft get --meta').

Bad events (malformed JSON, unknown types, withdrawals on unknown accounts,
...) go to the dead-letter topic <group>-dlq with their original headers and
weft.error.* headers, and are logged with their topic, partition and offset;
they never stop the processor.

Tracing is configured by the standard OpenTelemetry variables: set
OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_TRACES_EXPORTER=otlp|console) to export
spans, OTEL_TRACES_SAMPLER(_ARG) to sample, OTEL_SERVICE_NAME to name the
service. Without them no spans are exported, but trace context still flows
from input records to outputs and stored values.

With no --brokers the embedded broker is started in-process on
--embedded-addr, keeping its data under --state-dir/broker.

When the Kafka cluster goes away (brokers stopped or unreachable, leaders
moving), each processor logs a warning and reconnects with backoff (1 s
doubling to 30 s) until the cluster is back, then resumes where it
stopped; nothing is lost or applied twice. --give-up-after makes it stop
with an error instead once an outage has lasted that long.

SIGINT or SIGTERM stops the processor cleanly: it stops consuming, waits for
the records in flight and their produces, commits the consumer offsets and
closes the state stores; a restart resumes where it stopped.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return &usageError{fmt.Errorf("run takes at most one topology file, got %d arguments", len(args))}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			f.api.changed = cmd.Flags().Changed("http-addr")
			if err := f.api.check(); err != nil {
				return err
			}
			log, err := g.logger(os.Stderr)
			if err != nil {
				return err
			}
			var file *topofile.File
			if len(args) == 1 {
				if file, err = topofile.LoadFile(args[0]); err != nil {
					return err
				}
				g.applyFile(cmd, file)
			}
			if g.giveUpAfter < 0 {
				return &usageError{fmt.Errorf("--give-up-after %s: use a positive duration, or 0 to keep reconnecting", g.giveUpAfter)}
			}
			reconnect := processors.WithGiveUpAfter(g.giveUpAfter)
			cache, err := f.recordCache(cmd, file)
			if err != nil {
				return err
			}
			k, stopBroker, err := g.serverKafka(cmd.Context(), log)
			if err != nil {
				return err
			}
			defer stopBroker()
			k.GroupUserData = serve.AdvertiseUserData(f.api.advertisedURL())
			f.api.kafka = k
			if file != nil {
				return runTopology(cmd.Context(), log, k, g.stateDir, file, f, reconnect, cache)
			}
			return runBank(cmd.Context(), log, k, g.stateDir, f, reconnect, cache)
		},
	}
	cmd.Flags().StringVar(&f.input, "input", bank.DefaultInput, "topic of the account events (built-in projection only)")
	cmd.Flags().StringVar(&f.group, "group", bank.DefaultGroup, "consumer group, and name of the table (topic <group>-table) (built-in projection only)")
	cmd.Flags().DurationVar(&f.progress, "progress-interval", 10*time.Second, "how often to log progress (0: never)")
	cmd.Flags().Int64Var(&f.cacheMaxBytes, "cache-max-bytes", processors.DefaultCacheMaxBytes,
		"record cache budget of each group's table, in serialized bytes as Kafka Streams counts them (0: off; default: the topology file's cache_max_bytes, else 10 MiB)")
	cmd.Flags().DurationVar(&f.commitInterval, "commit-interval", processors.DefaultCommitInterval,
		"how often the record cache flushes to the store and changelog and inputs are committed (default: the topology file's commit_interval, else 1s)")
	f.api.register(cmd.Flags())
	return cmd
}

func runBank(ctx context.Context, log *slog.Logger, k kafkaclient.Config, stateDir string, f *runFlags, extra ...processors.Option) error {
	defer f.api.stopMetrics(log) // after the traces are flushed
	mp, err := f.api.meterProvider(ctx)
	if err != nil {
		return err
	}
	p, tally, tp, shutdown, err := newBankProcessorWith(ctx, log, k, stateDir, f.input, f.group,
		[]tracing.SetupOption{tracing.WithMeterProvider(mp)}, extra...)
	if err != nil {
		return err
	}
	defer shutdown()
	if f.progress > 0 {
		go logProgress(ctx, log, tally, f.progress)
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	waitAPI, err := f.api.start(ctx, log, tp, p)
	if err != nil {
		return err
	}
	err = p.Run(ctx)
	stop()
	waitAPI()
	log.Info("summary", "processed", tally.Processed(), "rejected", tally.Rejected(), "replayed", tally.Replayed())
	return err
}

// newBankProcessor sets up tracing from the OTEL_* variables and the bank
// projection's processor, with extra options; tp is its tracer provider.
// shutdown flushes the traces.
func newBankProcessor(ctx context.Context, log *slog.Logger, k kafkaclient.Config, stateDir, input, group string, extra ...processors.Option) (
	p *processors.Processor, tally *processors.Tally, tp trace.TracerProvider, shutdown func(), err error) {
	return newBankProcessorWith(ctx, log, k, stateDir, input, group, nil, extra...)
}

// newBankProcessorWith is newBankProcessor with options of tracing.Setup.
func newBankProcessorWith(ctx context.Context, log *slog.Logger, k kafkaclient.Config, stateDir, input, group string,
	topts []tracing.SetupOption, extra ...processors.Option) (
	p *processors.Processor, tally *processors.Tally, tp trace.TracerProvider, shutdown func(), err error) {
	prov, err := tracing.Setup(ctx, append([]tracing.SetupOption{tracing.WithLogger(log)}, topts...)...)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	rt := processors.NewRuntime(processors.WithLogger(log), processors.WithTracerProvider(prov.Tracer), processors.WithKafka(k))
	p, err = processors.NewProcessor(ctx, bank.Graph(input, group, rt), append([]processors.Option{
		processors.WithKafka(k), processors.WithStateDir(stateDir), processors.WithLogger(log), processors.WithRuntime(rt)}, extra...)...)
	if err != nil {
		shutdownTracing(log, prov)
		return nil, nil, nil, nil, err
	}
	return p, rt.Tally(), prov.Tracer, func() { shutdownTracing(log, prov) }, nil
}

// shutdownTracing flushes the spans still buffered, for at most 10s.
func shutdownTracing(log *slog.Logger, prov *tracing.Providers) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := prov.Shutdown(ctx); err != nil {
		log.Warn("flushing traces failed", "error", err)
	}
}

func logProgress(ctx context.Context, log *slog.Logger, tally *processors.Tally, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	var last [2]int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			// Only when something happened: an idle processor stays quiet.
			now := [2]int64{tally.Processed(), tally.Rejected()}
			if now != last {
				log.Info("progress", "processed", now[0], "rejected", now[1])
				last = now
			}
		}
	}
}

// applyFile takes the Kafka settings of a topology file for the flags the
// command line (or environment) did not set.
func (g *globalFlags) applyFile(cmd *cobra.Command, f *topofile.File) {
	flags := cmd.Flags()
	if len(f.Brokers) > 0 && !flags.Changed("brokers") && len(g.brokers) == 0 {
		g.brokers = f.Brokers
	}
	if f.SASL.Mechanism != "" && g.saslMechanism == "" {
		g.saslMechanism, g.saslUser, g.saslPassword = f.SASL.Mechanism, f.SASL.User, f.SASL.Password
	}
}

// runTopology compiles a topology file and runs all its groups; extra
// options go to every group's processor.
func runTopology(ctx context.Context, log *slog.Logger, k kafkaclient.Config, stateDir string, f *topofile.File, rf *runFlags, extra ...processors.Option) error {
	progress := rf.progress
	defer rf.api.stopMetrics(log) // after the traces are flushed
	mp, err := rf.api.meterProvider(ctx)
	if err != nil {
		return err
	}
	prov, err := tracing.Setup(ctx, tracing.WithLogger(log), tracing.WithMeterProvider(mp))
	if err != nil {
		return err
	}
	defer shutdownTracing(log, prov)
	tp := prov.Tracer
	if f.SampleRatio != nil {
		tp = prov.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(*f.SampleRatio)))
	}
	ropts := []processors.Option{processors.WithKafka(k), processors.WithLogger(log), processors.WithTracerProvider(tp)}
	if f.OnError == topofile.OnErrorStop {
		ropts = append(ropts, processors.StopOnRejection())
	}
	compiled, err := topology.Compile(f.Topology, topology.WithProcessorOptions(ropts...),
		topology.WithSampledProviders(func(ratio float64) trace.TracerProvider {
			return prov.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio)))
		}))
	if err != nil {
		return fmt.Errorf("%s: %w", f.Name, err)
	}
	if err := checkPartitions(ctx, k, f, compiled); err != nil {
		return err
	}
	if f.Lineage.Versions > 0 {
		extra = append(extra, processors.WithStoreOptions(statestore.WithLineage(f.Lineage.Versions, true)))
	}
	rf.api.lineageVersions, rf.api.retention, rf.api.topologyFile = f.Lineage.Versions, f.Lineage.Retention, f.Name
	procs, err := topology.NewProcessors(ctx, log, k, stateDir, compiled.Groups, extra...)
	if err != nil {
		return err
	}
	for _, grp := range compiled.Groups {
		if progress > 0 {
			go logProgress(ctx, log.With("group", string(grp.Name)), grp.Runtime.Tally(), progress)
		}
	}
	log.Info("topology running", "file", f.Name, "app", f.App, "groups", len(procs))
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	rf.api.topology = compiled
	waitAPI, err := rf.api.start(ctx, log, tp, procs...)
	if err != nil {
		return err
	}
	err = processors.RunAll(ctx, procs...)
	stop()
	waitAPI()
	for _, grp := range compiled.Groups {
		t := grp.Runtime.Tally()
		log.Info("summary", "group", string(grp.Name), "processed", t.Processed(), "rejected", t.Rejected(), "replayed", t.Replayed())
		for name, bc := range t.Branches() {
			log.Info("summary", "group", string(grp.Name), "branch", name, "processed", bc.Processed, "rejected", bc.Rejected, "replayed", bc.Replayed)
		}
	}
	return err
}
