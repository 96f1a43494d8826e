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

// Option configures NewRuntime, NewProcessor, StartView, NewEmitter or
// NewCoalescer; each says which it configures, and each constructor
// refuses an option it does not use (see optionset.go).
type Option func(*config)

type config struct {
	given     optionSet // the options given
	kafka     kafkaclient.Config
	stateDir  string
	logger    *slog.Logger
	storeOpts []statestore.Option
	gokaOpts  []goka.ProcessorOption

	tracerProvider trace.TracerProvider
	coalescers     []*Coalescer
	runtime        *Runtime
	stopOnReject   bool
	replay         *replayConfig // WithReplay
	reconnect      reconnectConfig
	cacheMaxBytes  int64
	commitInterval time.Duration

	restoreProgress restoreProgress // WithRestoreProgress
}

// DefaultStateDir is the directory under which state stores live unless
// WithStateDir says otherwise (weft's --state-dir defaults to it too).
const DefaultStateDir = "weft-data"

// buildConfig applies opts for constructor, which uses the options uses,
// to the defaults, and returns an error for any option it does not use.
func buildConfig(constructor string, uses optionSet, opts []Option) (config, error) {
	c := config{stateDir: DefaultStateDir, logger: slog.New(slog.DiscardHandler),
		cacheMaxBytes: DefaultCacheMaxBytes, commitInterval: DefaultCommitInterval}
	for _, o := range opts {
		o(&c)
	}
	return c, c.unused(constructor, uses)
}

// WithKafka sets how to reach Kafka (every constructor; NewRuntime names
// the brokers in its spans).
func WithKafka(k kafkaclient.Config) Option { return option(optKafka, func(c *config) { c.kafka = k }) }

// WithStateDir sets the directory under which state stores live (one
// subdirectory per group or view); default DefaultStateDir. NewProcessor and
// StartView.
func WithStateDir(dir string) Option {
	return option(optStateDir, func(c *config) { c.stateDir = dir })
}

// WithLogger sets the logger; goka's own messages go to it at debug level.
// NewRuntime (rejections), NewProcessor and StartView.
func WithLogger(l *slog.Logger) Option {
	return option(optLogger, func(c *config) {
		if l != nil {
			c.logger = l
		}
	})
}

// WithTracerProvider sets the tracer provider of NewRuntime, NewEmitter
// and NewCoalescer (default: tracing.Unexported, spans with ids that are
// not exported).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return option(optTracerProvider, func(c *config) { c.tracerProvider = tp })
}

// WithRuntime tells NewProcessor which Runtime the graph's callbacks use,
// so that the runtime can read the lineage of the group table: a record
// redelivered after a crash is then re-run against the value it was first
// applied to, with state writes suppressed, so that its other outputs are
// produced again (without it such records are skipped). It binds rt to
// the processor (see Runtime): rt must be the Runtime the graph was
// defined with (DefineGroup) and serve no other processor that has not
// ended.
func WithRuntime(rt *Runtime) Option { return option(optRuntime, func(c *config) { c.runtime = rt }) }

// StopOnRejection makes NewRuntime's runtime stop the processor on the first bad
// record (after logging it) instead of sending it to the dead-letter topic.
func StopOnRejection() Option {
	return option(optStopOnRejection, func(c *config) { c.stopOnReject = true })
}

// WithCoalescer makes NewProcessor's processor run c's flush loop beside
// it (and flush once more when it stops).
func WithCoalescer(c *Coalescer) Option {
	return option(optCoalescer, func(cfg *config) { cfg.coalescers = append(cfg.coalescers, c) })
}

// WithStoreOptions passes options to the Pebble state stores (NewProcessor
// and StartView).
func WithStoreOptions(opts ...statestore.Option) Option {
	return option(optStoreOptions, func(c *config) { c.storeOpts = append(c.storeOpts, opts...) })
}

// WithGokaOptions passes extra options to goka.NewProcessor (NewProcessor).
func WithGokaOptions(opts ...goka.ProcessorOption) Option {
	return option(optGokaOptions, func(c *config) { c.gokaOpts = append(c.gokaOpts, opts...) })
}

// Processor runs one goka group graph on weft's state store and client
// configuration.
type Processor struct {
	graph   *goka.GroupGraph
	cfg     config
	builder *statestore.Builder
	gopts   []goka.ProcessorOption
	cache   *recordCache // the group table's record cache (WithRecordCache)
	// partitions is the partition count of the group's inputs (and table).
	partitions int32

	mu   sync.Mutex
	goka *goka.Processor // the current one, or the last one that failed (a goka processor runs once)
}

// NewProcessor connects to Kafka, creates missing input topics and prepares
// the processor. Errors a user can cause come back as sentences.
//
// Transient errors of the cluster met after it first answered (metadata
// moving, e.g. "not the leader" right after a topic was created, or a
// broker restarting) are retried with backoff (see WithReconnectBackoff
// and WithGiveUpAfter); a cluster that cannot be reached at all fails at
// once.
func NewProcessor(ctx context.Context, graph *goka.GroupGraph, opts ...Option) (*Processor, error) {
	cfg, err := buildConfig("NewProcessor", processorOptions, opts)
	if err != nil {
		return nil, err
	}
	for _, c := range cfg.coalescers {
		if c.err != nil {
			return nil, fmt.Errorf("coalescer %s: %w", c.name, c.err)
		}
	}
	group := string(graph.Group())
	if rt := cfg.runtime; rt != nil {
		if err := rt.bindable(graph.Group()); err != nil {
			return nil, err
		}
	}
	retry := &setupRetry{cfg: cfg.reconnect, backoff: newBackoff(cfg.reconnect),
		log: func(msg string, args ...any) { cfg.logger.Warn(msg, append([]any{"group", group}, args...)...) }}
	var sc *sarama.Config
	if err := retry.do(ctx, "detect the protocol version", func() (err error) {
		sc, err = cfg.kafka.Sarama(ctx)
		return err
	}); err != nil {
		return nil, err
	}
	var partitions map[string]int32
	if err := retry.do(ctx, "create the input topics", func() (err error) {
		partitions, err = ensureInputs(cfg.kafka, sc, graph)
		return err
	}); err != nil {
		return nil, err
	}
	builder := statestore.NewBuilder(filepath.Join(cfg.stateDir, "processors", group),
		append([]statestore.Option{statestore.WithLogger(cfg.logger)}, cfg.storeOpts...)...)
	if err := adoptState(cfg.logger, cfg.kafka, sc, builder, graph, partitions); err != nil {
		builder.Close()
		return nil, err
	}
	gopts := append(cfg.kafka.ProcessorOptions(sc),
		goka.WithStorageBuilder(builder.Build),
		// Null values reach the callbacks (goka drops them by default):
		// Handle rejects them unless the handler accepts them.
		goka.WithNilHandling(goka.NilProcess),
		goka.WithLogger(gokaLogger{cfg.logger.With("component", "goka", "group", group)}),
	)
	gopts = append(gopts, cfg.gokaOpts...)
	p := &Processor{graph: graph, cfg: cfg, builder: builder, gopts: gopts}
	var gp *goka.Processor
	if err := retry.do(ctx, "create the processor", func() (err error) {
		gp, err = p.newGoka()
		return err
	}); err != nil {
		builder.Close()
		return nil, cfg.kafka.Explain(fmt.Errorf("create processor %s: %w", group, err))
	}
	p.goka = gp
	for _, n := range partitions {
		p.partitions = n // the inputs are co-partitioned: any one tells
		break
	}
	if rt := cfg.runtime; rt != nil {
		var b binding
		if graph.GroupTable() != nil {
			table := string(goka.GroupTable(graph.Group()))
			codec := graph.GroupTable().Codec()
			b.previous = func(key string, id statestore.SourceOffset) (*Stored, []statestore.SourceOffset, bool) {
				return previousVersion(builder, table, codec, key, id)
			}
			b.scan = func(partition int32) (any, func(func(key string, v *Stored) error) error) {
				return scanTable(builder, table, codec, partition)
			}
			b.partitions = partitions
			if cfg.cacheMaxBytes > 0 {
				b.cache = newRecordCache(table, codec, builder, rt.tracer, sc, cfg.kafka.Brokers, cfg.cacheMaxBytes, cfg.commitInterval)
			}
		}
		if err := rt.bind(graph.Group(), b); err != nil {
			builder.Close()
			return nil, err
		}
		p.cache = b.cache
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
		s, err := decodeStored(codec, statestore.AppendEnvelope(nil, &prev))
		if err != nil {
			return nil, nil, false
		}
		return s, v.Sources, true
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
			s, err := decodeStored(codec, data)
			if err != nil {
				return fmt.Errorf("scan %s/%d: key %q: %w", table, partition, it.Key(), err)
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
//
// Run rides out a lost Kafka cluster: when the processor fails with a
// transient error (brokers gone, connections reset or timed out, leaders
// or coordinators moving), it logs a warning, waits with exponential
// backoff and starts a new goka processor on the same state, until the
// cluster answers again, ctx ends, or the outage has lasted longer than
// WithGiveUpAfter. This loses nothing: a state store is never ahead of its
// changelog, and inputs are committed only after everything they produced
// was acknowledged, so the new processor resumes from the committed offsets
// and recognises the records it had already applied. Errors a user caused
// (a bad record under on_error: stop, a codec mismatch, rejected
// credentials) stop it as before.
func (p *Processor) Run(ctx context.Context) error {
	if rt := p.cfg.runtime; rt != nil {
		defer rt.unbind() // last: a processor made next may take the runtime
	}
	defer p.builder.Close()
	group := string(p.graph.Group())
	log := p.cfg.logger.With("group", group)
	log.Info("processor starting", "brokers", strings.Join(p.cfg.kafka.Brokers, ","))
	bo := newBackoff(p.cfg.reconnect)
	var lostAt time.Time // start of the current outage; zero while connected
	for attempt := 0; ; attempt++ {
		gp := p.Goka()
		var err error
		ready := false
		if attempt > 0 { // a goka processor runs only once
			gp, err = p.newGoka()
			if err == nil {
				p.setGoka(gp)
			}
		}
		if err == nil {
			ready, err = p.runOnce(ctx, gp, log, lostAt)
		}
		if rt := p.cfg.runtime; rt != nil && rt.Failure() != nil {
			// A callback stopped the processor (a bad record under
			// on_error: stop, a handler's error): never retried, whatever
			// it wraps.
			return p.cfg.kafka.Explain(fmt.Errorf("processor %s: %w", group, rt.Failure()))
		}
		switch {
		case ctx.Err() != nil && (err == nil || errors.Is(err, context.Canceled) || transient(err)):
			log.Info("processor stopped")
			return nil
		case err == nil:
			// goka returns without an error only when its context
			// ends: nothing to ride out.
			log.Info("processor stopped")
			return nil
		case transient(err):
		case errors.Is(err, context.Canceled):
			log.Info("processor stopped")
			return nil
		default:
			return p.cfg.kafka.Explain(fmt.Errorf("processor %s: %w", group, collapse(err)))
		}
		if ready || lostAt.IsZero() {
			lostAt = time.Now()
			bo.reset()
		}
		if g := p.cfg.reconnect.giveUpAfter; g > 0 && time.Since(lostAt) >= g {
			return p.cfg.kafka.Explain(fmt.Errorf("processor %s lost the Kafka cluster for longer than %s and gave up: %w", group, g, collapse(err)))
		}
		d := bo.wait()
		log.Warn("processor lost the Kafka cluster; reconnecting", "retry_in", d.Round(time.Millisecond),
			"outage", time.Since(lostAt).Round(time.Millisecond), "error", summarize(err))
		log.Debug("processor failure in full", "error", err)
		if !sleep(ctx, d) {
			log.Info("processor stopped")
			return nil
		}
	}
}

// runOnce runs gp and the coalescers beside it until ctx ends or either
// fails. ready reports whether gp got ready (all its partitions running)
// before it stopped; lostAt is when the cluster was lost (zero if it was
// not), for the log line that says it is back.
func (p *Processor) runOnce(ctx context.Context, gp *goka.Processor, log *slog.Logger, lostAt time.Time) (ready bool, err error) {
	stopCache, err := p.startCache()
	if err != nil {
		return false, fmt.Errorf("start the record cache: %w", err)
	}
	// Coalescers stop with the processor: when ctx ends (or goka fails)
	// they flush once more, which completes the records goka waits for.
	// A coalescer that fails stops the processor, since the records it
	// holds could never be committed otherwise.
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	flushErrs := make([]error, len(p.cfg.coalescers))
	for i, c := range p.cfg.coalescers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if flushErrs[i] = c.Run(runCtx); flushErrs[i] != nil {
				stop()
			}
		}()
	}
	readyCh := make(chan bool, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		ok := waitRecovered(runCtx, gp)
		if ok && !lostAt.IsZero() {
			log.Info("processor reconnected to the Kafka cluster", "outage", time.Since(lostAt).Round(time.Millisecond))
		}
		readyCh <- ok
	}()
	err = errors.Join(gp.Run(runCtx), stopCache())
	if rt := p.cfg.runtime; rt != nil {
		rt.tally.FlushLog()
		if f := rt.Failure(); f != nil {
			// A callback stopped the processor: its sentence, not goka's
			// "panic in callback" with a stack trace.
			err = f
		}
	}
	stop()
	wg.Wait()
	for _, c := range p.cfg.coalescers {
		c.discard()
	}
	err = errors.Join(append(flushErrs, err)...)
	if err != nil && p.cache != nil {
		// The next processor consumes the records behind the updates the
		// cache still holds again (they were never committed), against
		// the store.
		p.cache.discard()
	}
	return <-readyCh, err
}

// newGoka builds a goka processor for the graph (each can run only once).
func (p *Processor) newGoka() (*goka.Processor, error) {
	return goka.NewProcessor(p.cfg.kafka.Brokers, p.graph, p.gopts...)
}

func (p *Processor) setGoka(gp *goka.Processor) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.goka = gp
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
// After the cluster was lost, Run replaces it with a new one; until then it
// returns the one that failed, which reports itself as not running.
func (p *Processor) Goka() *goka.Processor {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.goka
}

// gokaLogger sends goka's log lines to slog at debug level.
type gokaLogger struct{ l *slog.Logger }

func (g gokaLogger) Print(args ...any)                 { g.l.Debug(fmt.Sprint(args...)) }
func (g gokaLogger) Println(args ...any)               { g.l.Debug(strings.TrimSuffix(fmt.Sprintln(args...), "\n")) }
func (g gokaLogger) Printf(format string, args ...any) { g.l.Debug(fmt.Sprintf(format, args...)) }
