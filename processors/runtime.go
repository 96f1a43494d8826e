package processors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/weftstream/weft/kafkaclient"
	"github.com/weftstream/weft/statestore"
	"go.opentelemetry.io/otel/trace"
)

// Option configures a Processor or a View.
type Option func(*config)

type config struct {
	kafka     kafkaclient.Config
	stateDir  string
	logger    *slog.Logger
	storeOpts []statestore.Option
	gokaOpts  []goka.ProcessorOption

	tracerProvider trace.TracerProvider
	coalescers     []*Coalescer
	runtime        *Runtime
	stopOnReject   bool
	cacheMaxBytes  int64
	commitInterval time.Duration
}

func buildConfig(opts []Option) config {
	c := config{stateDir: "weft-data", logger: slog.New(slog.DiscardHandler),
		cacheMaxBytes: DefaultCacheMaxBytes, commitInterval: DefaultCommitInterval}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// WithKafka sets how to reach Kafka.
func WithKafka(k kafkaclient.Config) Option { return func(c *config) { c.kafka = k } }

// WithStateDir sets the directory under which state stores live (one
// subdirectory per group or view); default "weft-data".
func WithStateDir(dir string) Option { return func(c *config) { c.stateDir = dir } }

// WithLogger sets the logger; goka's own messages go to it at debug level.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.logger = l
		}
	}
}

// WithTracerProvider sets the tracer provider of NewRuntime (default:
// tracing.Unexported, spans with ids that are not exported).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) { c.tracerProvider = tp }
}

// WithRuntime tells NewProcessor which Runtime the graph's callbacks use,
// so that the runtime can read the lineage of the group table: a record
// redelivered after a crash is then re-run against the value it was first
// applied to, with state writes suppressed, so that its other outputs are
// produced again (without it such records are skipped).
func WithRuntime(rt *Runtime) Option { return func(c *config) { c.runtime = rt } }

// StopOnRejection makes a Runtime stop the processor on the first bad
// record (after logging it) instead of sending it to the dead-letter topic.
func StopOnRejection() Option { return func(c *config) { c.stopOnReject = true } }

// WithCoalescer makes the processor run c's flush loop beside it (and
// flush once more when it stops).
func WithCoalescer(c *Coalescer) Option {
	return func(cfg *config) { cfg.coalescers = append(cfg.coalescers, c) }
}

// WithStoreOptions passes options to the Pebble state stores.
func WithStoreOptions(opts ...statestore.Option) Option {
	return func(c *config) { c.storeOpts = append(c.storeOpts, opts...) }
}

// WithGokaOptions passes extra options to goka.NewProcessor.
func WithGokaOptions(opts ...goka.ProcessorOption) Option {
	return func(c *config) { c.gokaOpts = append(c.gokaOpts, opts...) }
}

// Processor runs one goka group graph on weft's state store and client
// configuration.
type Processor struct {
	graph   *goka.GroupGraph
	cfg     config
	builder *statestore.Builder
	goka    *goka.Processor
	cache   *recordCache // the group table's record cache (WithRecordCache)
}

// NewProcessor connects to Kafka, creates missing input topics and prepares
// the processor. Errors a user can cause come back as sentences.
func NewProcessor(ctx context.Context, graph *goka.GroupGraph, opts ...Option) (*Processor, error) {
	cfg := buildConfig(opts)
	sc, err := cfg.kafka.Sarama(ctx)
	if err != nil {
		return nil, err
	}
	partitions, err := ensureInputs(cfg.kafka, sc, graph)
	if err != nil {
		return nil, err
	}
	builder := statestore.NewBuilder(filepath.Join(cfg.stateDir, "processors", string(graph.Group())),
		append([]statestore.Option{statestore.WithLogger(cfg.logger)}, cfg.storeOpts...)...)
	gopts := append(cfg.kafka.ProcessorOptions(sc),
		goka.WithStorageBuilder(builder.Build),
		goka.WithLogger(gokaLogger{cfg.logger.With("component", "goka", "group", string(graph.Group()))}),
	)
	gopts = append(gopts, cfg.gokaOpts...)
	gp, err := goka.NewProcessor(cfg.kafka.Brokers, graph, gopts...)
	if err != nil {
		builder.Close()
		return nil, cfg.kafka.Explain(fmt.Errorf("create processor %s: %w", graph.Group(), err))
	}
	p := &Processor{graph: graph, cfg: cfg, builder: builder, goka: gp}
	if rt := cfg.runtime; rt != nil && graph.GroupTable() != nil {
		table := string(goka.GroupTable(graph.Group()))
		codec := graph.GroupTable().Codec()
		rt.previous = func(key string, id statestore.SourceOffset) (*Stored, []statestore.SourceOffset, bool) {
			return previousVersion(builder, table, codec, key, id)
		}
		rt.scan = func(partition int32) (any, func(func(key string, v *Stored) error) error) {
			return scanTable(builder, table, codec, partition)
		}
		rt.partitions = partitions
		rt.cache = nil
		if cfg.cacheMaxBytes > 0 {
			rt.cache = newRecordCache(table, codec, builder, rt.tracer, sc, cfg.kafka.Brokers, cfg.cacheMaxBytes, cfg.commitInterval)
		}
		p.cache = rt.cache
	}
	return p, nil
}

// previousVersion finds, in the lineage of key, the version that the
// record identified by id wrote, and returns the version before it (nil
// for a first write) and the sources of the version it wrote. ok is false
// if the lineage does not go back far enough or keeps no values.
func previousVersion(b *statestore.Builder, table string, codec goka.Codec, key string, id statestore.SourceOffset) (*Stored, []statestore.SourceOffset, bool) {
	versions, err := lineage(b, table, key)
	if err != nil {
		return nil, nil, false
	}
	for i, v := range versions {
		if len(v.Sources) == 0 || v.Sources[0] != id {
			continue
		}
		if v.Version == 1 {
			return nil, v.Sources, true
		}
		if i+1 >= len(versions) || versions[i+1].Version != v.Version-1 || versions[i+1].Value == nil {
			return nil, nil, false
		}
		prev := versions[i+1]
		decoded, err := codec.Decode(statestore.AppendEnvelope(nil, &prev))
		if err != nil {
			return nil, nil, false
		}
		s, ok := decoded.(*Stored)
		return s, v.Sources, ok
	}
	return nil, nil, false
}

// scanTable returns the store of a partition of the group table (as an
// identity: a partition assigned again gets a new store) and a function
// that calls fn for every key and value in it.
func scanTable(b *statestore.Builder, table string, codec goka.Codec, partition int32) (any, func(func(string, *Stored) error) error) {
	st := b.Store(table, partition)
	if st == nil {
		return nil, func(func(string, *Stored) error) error { return nil }
	}
	return st, func(fn func(string, *Stored) error) error {
		it, err := st.Iterator()
		if err != nil {
			return fmt.Errorf("scan %s/%d: %w", table, partition, err)
		}
		defer it.Release()
		for it.Next() {
			data, err := it.Value()
			if err != nil {
				return fmt.Errorf("scan %s/%d: %w", table, partition, err)
			}
			v, err := codec.Decode(data)
			if err != nil {
				return fmt.Errorf("scan %s/%d: key %q: %w", table, partition, it.Key(), err)
			}
			s, ok := v.(*Stored)
			if !ok {
				return fmt.Errorf("scan %s/%d: key %q holds a %T", table, partition, it.Key(), v)
			}
			if err := fn(string(it.Key()), s); err != nil {
				return err
			}
		}
		return it.Err()
	}
}

// ensureInputs creates the input streams and the tables the group reads
// (lookups and joins) that do not exist yet; goka only creates its own
// table and loopback topics, and fails on a missing table it reads. A
// table written by another processor may well start empty.
// It returns the partition counts of the input streams.
func ensureInputs(k kafkaclient.Config, sc *sarama.Config, graph *goka.GroupGraph) (map[string]int32, error) {
	partitions := map[string]int32{}
	for _, e := range graph.InputStreams() {
		n, err := k.EnsureTopic(sc, e.Topic())
		if err != nil {
			return nil, err
		}
		partitions[e.Topic()] = int32(n)
	}
	for _, e := range append(graph.LookupTables(), graph.JointTables()...) {
		if err := k.EnsureTable(sc, e.Topic()); err != nil {
			return nil, err
		}
	}
	return partitions, nil
}

// Run processes until ctx is cancelled or the processor fails. On
// cancellation it stops consuming, waits for in-flight records and their
// produces, commits the consumer offsets and closes the state stores.
func (p *Processor) Run(ctx context.Context) error {
	defer p.builder.Close()
	p.cfg.logger.Info("processor starting", "group", string(p.graph.Group()), "brokers", strings.Join(p.cfg.kafka.Brokers, ","))
	stopCache, err := p.startCache()
	if err != nil {
		return p.cfg.kafka.Explain(fmt.Errorf("processor %s: %w", p.graph.Group(), err))
	}
	// Coalescers stop with the processor: when ctx ends (or goka fails)
	// they flush once more, which completes the records goka waits for.
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	flushErrs := make([]error, len(p.cfg.coalescers))
	for i, c := range p.cfg.coalescers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			flushErrs[i] = c.Run(runCtx)
		}()
	}
	err = errors.Join(p.goka.Run(runCtx), stopCache())
	stop()
	wg.Wait()
	err = errors.Join(append(flushErrs, err)...)
	if err != nil && !errors.Is(err, context.Canceled) {
		return p.cfg.kafka.Explain(fmt.Errorf("processor %s: %w", p.graph.Group(), err))
	}
	p.cfg.logger.Info("processor stopped", "group", string(p.graph.Group()))
	return nil
}

// Lineage returns the recorded versions of key in the group table, newest
// first (see statestore.Store.Lineage), from the partition that holds it
// on this instance; nil if none does.
func (p *Processor) Lineage(key string) ([]statestore.Envelope, error) {
	return lineage(p.builder, string(goka.GroupTable(p.graph.Group())), key)
}

func lineage(b *statestore.Builder, topic, key string) ([]statestore.Envelope, error) {
	for _, st := range b.Stores(topic) {
		versions, err := st.Lineage(key)
		if errors.Is(err, statestore.ErrClosed) {
			continue
		}
		if err != nil || len(versions) > 0 {
			return versions, err
		}
	}
	return nil, nil
}

// RunAll runs processors until ctx ends or one of them fails; a failure
// stops the others. It returns the errors of all of them.
func RunAll(ctx context.Context, procs ...*Processor) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, len(procs))
	var wg sync.WaitGroup
	for i, p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if errs[i] = p.Run(ctx); errs[i] != nil {
				cancel()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Goka returns the underlying goka processor (for Get, Stats, readiness).
func (p *Processor) Goka() *goka.Processor { return p.goka }

// gokaLogger sends goka's log lines to slog at debug level.
type gokaLogger struct{ l *slog.Logger }

func (g gokaLogger) Print(args ...any)                 { g.l.Debug(fmt.Sprint(args...)) }
func (g gokaLogger) Println(args ...any)               { g.l.Debug(strings.TrimSuffix(fmt.Sprintln(args...), "\n")) }
func (g gokaLogger) Printf(format string, args ...any) { g.l.Debug(fmt.Sprintf(format, args...)) }
