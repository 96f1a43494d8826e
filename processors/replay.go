package processors

import (
	"context"

	"github.com/lovoo/goka"
	"github.com/weftstream/weft/statestore"
	"github.com/weftstream/weft/tracing"
	"go.opentelemetry.io/otel/trace"
)

// ReplayBound reports whether a record of a bounded replay job lies past
// the job's end (weft replay --until-offset / --until-time): such a record
// is skipped, neither applied nor passed on. nil bounds nothing.
type ReplayBound func(topic string, partition int32, offset int64) bool

// ReplaySkip reports whether a replay job skips a record that a weft
// processor emitted (a repartition record), by the record's own place and
// by from, the record it was emitted for (its weft.from header): an
// in-place job skips the old copies of records the upstream group emits
// again. Like a record past a ReplayBound, a skipped record is neither
// applied nor passed on.
type ReplaySkip func(topic string, partition int32, offset int64, from statestore.SourceOffset) bool

// replayConfig is what WithReplay sets on a runtime.
type replayConfig struct {
	beyond ReplayBound
	skip   ReplaySkip
	job    string // names the job in every version written (Envelope.ReplayJob)
}

// WithReplay makes NewRuntime's runtime run a replay job (weft replay):
// the span of every record it processes is a new root marked
// weft.replay=true, linked (replayed_from) to the record's original
// context instead of parented under it, so that a replay does not grow the
// traces of the records it replays; its sampling is the tracer provider's
// root sampler (the replay's own ratio). Records that beyond reports are
// skipped. Live processing never uses it.
func WithReplay(beyond ReplayBound) Option { return WithReplayJob("", beyond) }

// WithReplayJob is WithReplay for the replay job named job: every version
// the runtime writes names it (statestore.Envelope.ReplayJob), so that the
// lineage of a rebuilt value tells it from a live one.
func WithReplayJob(job string, beyond ReplayBound) Option {
	return option(optReplay, func(c *config) {
		if c.replay == nil {
			c.replay = &replayConfig{}
		}
		c.replay.beyond, c.replay.job = beyond, job
	})
}

// WithReplaySkip adds skip to a replay job's runtime (WithReplayJob, in
// either order): the records with a weft.from header that skip reports
// are skipped.
func WithReplaySkip(skip ReplaySkip) Option {
	return option(optReplay, func(c *config) {
		if c.replay == nil {
			c.replay = &replayConfig{}
		}
		c.replay.skip = skip
	})
}

// replayJob is the name of the replay job the runtime runs, "" live.
func (rt *Runtime) replayJob() string {
	if rt.replay == nil {
		return ""
	}
	return rt.replay.job
}

// replayAttr marks a replay's process spans.
var replayAttr = trace.WithAttributes(tracing.AttrReplay.Bool(true))

// startProcess starts the process span of a record: as a child of its
// traceparent, or for a replay as a linked new root.
func (rt *Runtime) startProcess(ps *tracing.ProcessSpan, ctx context.Context, rec tracing.Record) {
	if rt.replay == nil {
		rt.tracer.StartProcessSpan(ps, ctx, rec)
		return
	}
	// The record's context (and baggage) once: StartProcess need not
	// extract it again, and the new root ignores its span context.
	ctx = rt.tracer.Extract(ctx, rec.Headers)
	rec.Headers = nil
	opts := []trace.SpanStartOption{trace.WithNewRoot(), replayAttr, nil}[:2]
	if orig := trace.SpanContextFromContext(ctx); orig.IsValid() {
		opts = append(opts, trace.WithLinks(tracing.Link(orig, tracing.LinkReplayedFrom)))
	}
	rt.tracer.StartProcessSpan(ps, ctx, rec, opts...)
}

// beyondReplay reports whether a replay job skips the record of gctx.
func (rt *Runtime) beyondReplay(gctx goka.Context) bool {
	if rt.replay == nil {
		return false
	}
	if rt.replay.beyond != nil && rt.replay.beyond(string(gctx.Topic()), gctx.Partition(), gctx.Offset()) {
		return true
	}
	if rt.replay.skip != nil {
		if h := gctx.Headers()[HeaderFrom]; len(h) > 0 {
			if from, ok := parseFrom(h); ok {
				return rt.replay.skip(string(gctx.Topic()), gctx.Partition(), gctx.Offset(), from)
			}
		}
	}
	return false
}
