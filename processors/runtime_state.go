package processors

// The Runtime: what the traced callbacks of one processor share.

import (
	"sync"
	"sync/atomic"

	"github.com/lovoo/goka"
	"github.com/weftstream/weft/tracing"
)

// Runtime holds what every traced callback of a processor shares: the
// tracer and the tally of handled records. Create one per processor with
// NewRuntime and pass it to Handle.
//
// A Runtime belongs to one group and one processor at a time, and is
// bound to them explicitly: DefineGroup binds it to the group it defines,
// once, and NewProcessor given WithRuntime binds it to the processor of
// that group (its table's lineage, partitions and record cache) until that
// processor's Run returns (then a new processor of the group, a restart,
// may take it). A second binding is an error, not an overwrite:
// NewProcessor refuses a Runtime bound to a processor that has not ended
// or defined for another group, and the callbacks of a Runtime given to
// DefineGroup for two groups stop their processors at the first record
// (DefineGroup cannot return the error).
type Runtime struct {
	tracer   *tracing.Tracer
	tally    *Tally
	latency  Latency       // processing durations (latency.go)
	stateful bool          // the group has a table (bound by DefineGroup)
	stop     bool          // stop the processor on a bad record (StopOnRejection)
	replay   *replayConfig // a replay job's runtime (WithReplay)
	// binding is the table of the processor bound to the runtime (the
	// zero binding before NewProcessor binds it WithRuntime).
	binding
	// failure is the first error that stopped the processor (see fail).
	failure atomic.Pointer[error]

	// The bindings (see bind.go): bindMu guards them; misuse is the first
	// binding that conflicted with them, which the callbacks fail with.
	bindMu sync.Mutex
	group  goka.Group // the group DefineGroup defined ("" before)
	bound  bool       // a processor of group is bound (NewProcessor) until its Run returns
	misuse atomic.Pointer[error]

	// headerMaps holds the *producedHeaders of the Contexts of records
	// that are done, for the Contexts of later records.
	headerMaps sync.Pool
}

// fail stops the processor with err. It records err as the reason the
// processor stopped, so that Processor.Run returns it as it is (instead of
// goka's "panic in callback" with a stack trace), then calls goka's Fail,
// which does not return: it panics to leave the callback at once, and goka
// commits nothing of the record. Every caller returns right after it all
// the same, so that the code reads as it runs.
func (rt *Runtime) fail(gctx goka.Context, err error) {
	rt.failure.CompareAndSwap(nil, &err)
	gctx.Fail(err)
}

// Failure returns the error a callback stopped the processor with (a bad
// record under StopOnRejection, a handler's error, a stored value that does
// not decode), or nil.
func (rt *Runtime) Failure() error {
	if p := rt.failure.Load(); p != nil {
		return *p
	}
	return nil
}

// NewRuntime returns a Runtime configured by opts (WithTracerProvider,
// WithLogger, StopOnRejection, WithReplay, and WithKafka for the
// server.address of process spans). Another option makes NewProcessor
// refuse the runtime, and its callbacks stop at the first record.
// Without a tracer provider spans are not exported (tracing.Unexported).
func NewRuntime(opts ...Option) *Runtime {
	cfg, err := buildConfig("NewRuntime", runtimeOptions, opts)
	tp := cfg.tracerProvider
	if tp == nil {
		tp = tracing.Unexported()
	}
	rt := &Runtime{tracer: tracing.NewTracer(tp, tracing.WithBrokers(cfg.kafka.Brokers)), tally: NewTally(cfg.logger), stop: cfg.stopOnReject, replay: cfg.replay}
	if err != nil {
		// NewRuntime cannot return it: NewProcessor refuses the runtime
		// with it, and its callbacks fail with it (as for a misuse of
		// DefineGroup).
		rt.misused(err)
	}
	return rt
}

// Tally returns the accounting of handled records.
func (rt *Runtime) Tally() *Tally { return rt.tally }

// Tracer returns the runtime's tracer.
func (rt *Runtime) Tracer() *tracing.Tracer { return rt.tracer }
