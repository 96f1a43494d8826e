package processors

import (
	"fmt"
	"time"

	"github.com/lovoo/goka"
)

// The per-record operators of compiled topologies (package topology wires
// them into the callbacks of goka groups; it runs none of them itself):
//
//   - ops.go: the stateless steps (filter, map, flat map, ...), emitting to
//     a topic, a stream's event time, and fan-out to sibling branches;
//   - ops_aggregate.go: the steps that update a table (count, reduce,
//     aggregate, latest);
//   - ops_window.go: window keys, re-keying by window and lateness;
//   - ops_join.go: the stream-table lookup join and the sides of a
//     table-table join.
//
// A step that fails on a record because of the record (an expression
// error, a value the codec cannot encode) returns a Rejection: the record
// is dead-lettered by Handle. The reason of an expression's failure is the
// step's kind (see reasons.go), and its message starts with the kind and
// the name of the step.

// Step runs one operation of a compiled topology on a record (key and
// decoded value) and then what follows it in the group.
type Step func(ctx goka.Context, key string, value any) error

// KeyValue is one record a flat-map function makes.
type KeyValue struct {
	Key   string
	Value any
}

// Op names a step for its rejections: its kind (the reason) and its name.
type Op struct {
	Kind, Name string
}

// Reject returns the rejection of a record the step's function failed on.
func (o Op) Reject(err error) error { return Reject(o.Kind, "%s %q: %v", o.Kind, o.Name, err) }

// Nothing is the step that does nothing (a node none of whose children
// run in this group).
func Nothing(goka.Context, string, any) error { return nil }

// FilterStep passes on the records for which pred holds.
func FilterStep(op Op, pred func(key string, value any) (bool, error), next Step) Step {
	return func(ctx goka.Context, k string, v any) error {
		ok, err := pred(k, v)
		if err != nil {
			return op.Reject(err)
		}
		if !ok {
			return nil
		}
		return next(ctx, k, v)
	}
}

// MapValuesStep replaces the value with fn's.
func MapValuesStep(op Op, fn func(key string, value any) (any, error), next Step) Step {
	return func(ctx goka.Context, k string, v any) error {
		nv, err := fn(k, v)
		if err != nil {
			return op.Reject(err)
		}
		return next(ctx, k, nv)
	}
}

// MapStep replaces the key and the value with fn's.
func MapStep(op Op, fn func(key string, value any) (string, any, error), next Step) Step {
	return func(ctx goka.Context, k string, v any) error {
		nk, nv, err := fn(k, v)
		if err != nil {
			return op.Reject(err)
		}
		return next(ctx, nk, nv)
	}
}

// SelectKeyStep replaces the key with fn's.
func SelectKeyStep(op Op, fn func(key string, value any) (string, error), next Step) Step {
	return func(ctx goka.Context, k string, v any) error {
		nk, err := fn(k, v)
		if err != nil {
			return op.Reject(err)
		}
		return next(ctx, nk, v)
	}
}

// FlatMapStep passes on every record fn makes of the record, in order; it
// stops at the first error of what follows.
func FlatMapStep(op Op, fn func(key string, value any) ([]KeyValue, error), next Step) Step {
	return func(ctx goka.Context, k string, v any) error {
		kvs, err := fn(k, v)
		if err != nil {
			return op.Reject(err)
		}
		for _, kv := range kvs {
			if err := next(ctx, kv.Key, kv.Value); err != nil {
				return err
			}
		}
		return nil
	}
}

// EmitStep writes the record to topic, its value encoded with cd (the
// group's output edge carries bytes, so that every group sees one codec
// per topic). A value cd cannot encode is rejected with ReasonEncode.
func EmitStep(op Op, topic string, cd goka.Codec) Step {
	return func(ctx goka.Context, k string, v any) error {
		data, err := cd.Encode(v)
		if err != nil {
			return Reject(ReasonEncode, "%s %q: encode for %s: %v", op.Kind, op.Name, topic, err)
		}
		ctx.Emit(goka.Stream(topic), k, data)
		return nil
	}
}

// CoalesceStep hands the record to co, which emits the latest value of
// each key every interval (a suppress).
func CoalesceStep(co *Coalescer) Step {
	return func(ctx goka.Context, k string, v any) error {
		co.Add(ctx, k, v)
		return nil
	}
}

// Fanout runs every step of steps, the independent branches below one
// node, named names (the name of each branch's first node). A record
// rejected by one branch still reaches the others; the first rejection is
// returned once, after all ran (the record is dead-lettered once). Each
// branch counts what it did with the record in rt's tally
// (Tally.Branch), so that a branch's records add up even when a sibling
// rejected them. Any other error stops at once.
func Fanout(rt *Runtime, names []string, steps []Step) Step {
	switch len(steps) {
	case 0:
		return Nothing
	case 1:
		return steps[0]
	}
	tallies := make([]*BranchTally, len(steps))
	for i, name := range names {
		tallies[i] = rt.Tally().Branch(name)
	}
	return func(ctx goka.Context, k string, v any) error {
		var rejected error
		for i, s := range steps {
			err := s(ctx, k, v)
			tallies[i].Count(ctx, err)
			if _, ok := AsRejection(err); ok {
				if rejected == nil {
					rejected = err
				}
				continue
			}
			if err != nil {
				return err
			}
		}
		return rejected
	}
}

// eventTimeSetter is the part of Context a timestamp extractor needs.
type eventTimeSetter interface{ SetEventTime(time.Time) }

// EventTimeStep runs the timestamp extractor of stream topic before next:
// the time it extracts becomes the record's event time (Context.
// SetEventTime). A record it cannot take a time from is rejected with
// ReasonTimestamp. With a nil extract (or next) it returns next.
func EventTimeStep(topic string, extract func(key string, value any) (time.Time, error), next Step) Step {
	if extract == nil || next == nil {
		return next
	}
	return func(ctx goka.Context, k string, v any) error {
		ts, err := extract(k, v)
		if err != nil {
			return Reject(ReasonTimestamp, "stream %s: event time: %v", topic, err)
		}
		setter, ok := ctx.(eventTimeSetter)
		if !ok {
			return fmt.Errorf("stream %s: the context %T cannot take an event time (run the group with processors.Handle)", topic, ctx)
		}
		setter.SetEventTime(ts)
		return next(ctx, k, v)
	}
}
