package processors

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/lovoo/goka"
	"github.com/weftstream/weft/tracing"
)

// Handler processes one decoded input record. ctx is a *Context.
type Handler[T any] func(ctx goka.Context, msg T) error

// Decoder turns the raw bytes of an input record into a message.
type Decoder[T any] func(data []byte) (T, error)

// Handle returns a goka callback for an input whose codec is codec.Bytes.
// For every record it starts the span "process <topic>" (a child of the
// record's traceparent), decodes the record with decode and calls h with a
// traced *Context. A decoding error or a Rejection returned by h rejects
// the record: the span gets status Error with the exception, the record
// goes to the group's dead-letter topic (see DefineGroup) with its original
// headers plus weft.error.* headers, it is counted and logged, and
// processing goes on. Any other error from h fails the processor, as goka
// does. Handlers must not panic: goka stops the processor on a panic.
//
// State updates are effectively-once (applied.go defines the terms and
// decides): a record that the key's envelope
// shows as applied already (redelivered after a crash or rebalance) does
// not change the state again; Tally counts it as replayed. If the processor
// was created WithRuntime and the lineage index still holds the value the
// record was first applied to, the handler runs again against that value
// with state writes suppressed, so that its other outputs (which may not
// have been acknowledged before the crash) are produced again: outputs are
// at-least-once. Otherwise the record is skipped. Handlers must therefore
// be deterministic.
//
// A record with a null value (a tombstone) is rejected with reason
// ReasonNull, unless AcceptNull says that h gives nulls a meaning: then
// h gets the zero T. (goka drops null values by default; weft's
// processors hand them to the callback, so that none is lost silently.)
func Handle[T any](rt *Runtime, decode Decoder[T], h Handler[T], opts ...HandleOption) goka.ProcessCallback {
	var hc handleConfig
	for _, o := range opts {
		o(&hc)
	}
	return handle(rt, func(raw any) ([]byte, T, error) {
		var msg T
		if raw == nil {
			if hc.acceptNull {
				return nil, msg, nil
			}
			return nil, msg, errNull
		}
		data, _ := raw.([]byte)
		msg, err := decode(data)
		return data, msg, err
	}, h)
}

// ReasonNull is the rejection reason of a record whose value is null (a
// tombstone) where the handler gives nulls no meaning (see reasons.go).
const ReasonNull = "null"

// errNull marks a null value that the handler does not accept.
var errNull = errors.New("the record's value is null (a tombstone), which this step gives no meaning")

// HandleOption configures Handle.
type HandleOption func(*handleConfig)

type handleConfig struct{ acceptNull bool }

// AcceptNull makes Handle pass records with a null value (tombstones) to
// the handler as the zero value of its message type, e.g. to delete the
// key's state.
func AcceptNull() HandleOption { return func(c *handleConfig) { c.acceptNull = true } }

// HandleDecoded is Handle for an input whose edge codec decodes the records
// already (e.g. a table topic read with EnvelopeCodec): h gets the decoded
// value, which must be a T. goka itself stops the processor if that codec
// fails, and a rejected record's dead letter carries no value.
func HandleDecoded[T any](rt *Runtime, h Handler[T]) goka.ProcessCallback {
	return handle(rt, func(raw any) ([]byte, T, error) {
		msg, ok := raw.(T)
		if !ok && raw != nil {
			return nil, msg, fmt.Errorf("input value is a %T, want %T", raw, msg)
		}
		return nil, msg, nil
	}, h)
}

func handle[T any](rt *Runtime, decode func(raw any) ([]byte, T, error), h Handler[T]) goka.ProcessCallback {
	return func(gctx goka.Context, raw any) {
		if p := rt.misuse.Load(); p != nil {
			rt.fail(gctx, *p)
			return // not reached: fail does not return
		}
		if rt.beyondReplay(gctx) {
			return
		}
		start := latencyClock() // of the record's processing duration (latency.go)
		headers := gctx.Headers()
		ctx := &Context{g: gctx, rt: rt}
		rt.startProcess(&ctx.ps, gctx.Context(), tracing.Record{
			Topic: string(gctx.Topic()), Partition: gctx.Partition(), Offset: gctx.Offset(),
			Key: gctx.Key(), Group: string(gctx.Group()), Headers: headers,
		})
		span := ctx.ps.Span()
		ctx.span = span
		// The record counts as processed (or rejected) once its span has
		// ended, so a reader of the tally (a test, a metric) finds the
		// span exported.
		processed := false
		defer func() {
			span.End()
			ctx.release()
			if processed || ctx.rejected != nil || ctx.replayed { // not a record that stopped the processor
				rt.latency.observe(latencyClock() - start) // before the tally, so a count read there includes it
			}
			switch {
			case processed:
				rt.tally.processed.Add(1)
			case ctx.rejected != nil:
				rt.tally.Reject(gctx, ctx.rejected)
			}
		}()
		if rt.cache != nil && rt.stateful {
			// The record commits after the flush that follows its updates:
			// held when the callback is done with it (see cachePart.hold).
			p := rt.cache.part(gctx.Partition(), gctx.Context().Done())
			ctx.cpart = p
			commit := gctx.DeferCommit()
			defer func() {
				if r := recover(); r != nil {
					// gctx.Fail (or a handler's panic) leaves the callback:
					// nothing of the record may be committed.
					commit(fmt.Errorf("process %s/%d@%d: the callback failed", gctx.Topic(), gctx.Partition(), gctx.Offset()))
					panic(r)
				}
				rt.cache.hold(p, commit)
			}()
		}

		if rt.stateful {
			if rej := rt.checkPartition(gctx); rej != nil {
				data, _ := raw.([]byte)
				rt.reject(ctx, data, rej)
				return
			}
		}

		// AlreadyApplied reads the key's value; one that does not decode
		// fails the processor there (Fail does not return).
		if rt.stateful && ctx.AlreadyApplied() {
			// Replayed (see applied.go): the key's state already includes
			// this record. Skip it, or re-run it with state writes
			// suppressed.
			if !rt.rerun(ctx) {
				return
			}
			span.SetAttributes(tracing.AttrReplay.Bool(true))
		}
		data, msg, err := decode(raw)
		if err != nil {
			reason := ReasonDecode
			if err == errNull {
				reason = ReasonNull
			}
			rt.reject(ctx, data, &Rejection{Reason: reason, Err: err})
			return
		}
		if err := h(ctx, msg); err != nil {
			if rej, ok := AsRejection(err); ok {
				rt.reject(ctx, data, rej)
				return
			}
			tracing.RecordError(span, err)
			rt.fail(gctx, fmt.Errorf("process %s/%d@%d: %w", gctx.Topic(), gctx.Partition(), gctx.Offset(), err))
			return // not reached: fail does not return
		}
		processed = !ctx.replayed
	}
}

// checkPartition rejects a record of a stateful group whose key is in
// another partition than goka's partitioner (fnv-1a, as weft produces)
// puts it: goka writes the key's state to the table partition of that
// hash, so after a restore from the changelog the record's partition
// would not find it, and the state would start again from nothing.
func (rt *Runtime) checkPartition(ctx goka.Context) *Rejection {
	n := rt.partitions[string(ctx.Topic())]
	if n <= 0 {
		return nil
	}
	if want := keyPartition(ctx.Key(), n); want != ctx.Partition() {
		return &Rejection{Reason: ReasonPartition, Err: fmt.Errorf(
			"key %q is in partition %d of %s, but goka's partitioner (fnv-1a hash) puts it in partition %d, where its state "+
				"is kept: produce with an fnv-1a hash partitioner (kcat: -X partitioner=fnv1a; franz-go: "+
				"kgo.StickyKeyPartitioner(kgo.SaramaCompatHasher(fnv32a)))", ctx.Key(), ctx.Partition(), ctx.Topic(), want)}
	}
	return nil
}

// keyPartition is the partition sarama's hash partitioner with goka's
// fnv-1a hasher gives key among n.
func keyPartition(key string, n int32) int32 {
	h := uint32(2166136261)
	for i := 0; i < len(key); i++ {
		h ^= uint32(key[i])
		h *= 16777619
	}
	p := int32(h) % n
	if p < 0 {
		p = -p
	}
	return p
}

// Dead-letter headers added to a rejected record.
const (
	HeaderErrorReason    = "weft.error.reason"
	HeaderErrorMessage   = "weft.error.message"
	HeaderErrorTopic     = "weft.error.topic"
	HeaderErrorPartition = "weft.error.partition"
	HeaderErrorOffset    = "weft.error.offset"
	HeaderErrorGroup     = "weft.error.group"
)

func (rt *Runtime) reject(ctx *Context, data []byte, rej *Rejection) {
	tracing.RecordErrorType(ctx.span, rej, rej.Reason)
	if rt.stop {
		rt.tally.Reject(ctx.g, rej)
		rt.fail(ctx.g, fmt.Errorf("bad record %s/%d@%d (the topology says on_error: stop): %w",
			ctx.g.Topic(), ctx.g.Partition(), ctx.g.Offset(), rej))
		return // not reached: fail does not return
	}
	h := make(goka.Headers, len(ctx.g.Headers())+6)
	for k, v := range ctx.g.Headers() {
		h[k] = v
	}
	h[HeaderErrorReason] = []byte(rej.Reason)
	h[HeaderErrorMessage] = []byte(rej.Error())
	h[HeaderErrorTopic] = []byte(ctx.g.Topic())
	h[HeaderErrorPartition] = []byte(strconv.Itoa(int(ctx.g.Partition())))
	h[HeaderErrorOffset] = []byte(strconv.FormatInt(ctx.g.Offset(), 10))
	h[HeaderErrorGroup] = []byte(ctx.g.Group())
	// The original headers stay as they were: the dead-lettered record
	// keeps its producer's traceparent.
	ctx.g.Emit(DeadLetterTopic(ctx.g.Group()), ctx.g.Key(), data, goka.WithCtxEmitHeaders(h))
	ctx.rejected = rej // counted when the record's span has ended
}
