package processors

import (
	"github.com/lovoo/goka"
)

// LookupJoinStep enriches the record with the value of its key in table
// (a lookup edge of the group: Lookup), combined by joiner; the lookup
// links the record's span to the writer of the value read.
func LookupJoinStep(op Op, table goka.Table, joiner func(key string, value, other any) (any, error), next Step) Step {
	return func(ctx goka.Context, k string, v any) error {
		other := ctx.Lookup(table, k)
		nv, err := joiner(k, v, other)
		if err != nil {
			return op.Reject(err)
		}
		return next(ctx, k, nv)
	}
}

// Sides of a table-table join: the group's table keeps both values of a
// key in a map under these names.
const (
	JoinLeft  = "left"
	JoinRight = "right"
)

// TableJoinSide is the callback of one side (JoinLeft or JoinRight) of a
// table-table join named op.Name: its input is the table topic of that
// side (read with EnvelopeCodec), and the group's table keeps both sides'
// values of each key. When a side changes and both sides have a value,
// joiner's result goes to next (an inner join); when a side is deleted,
// it is forgotten and, if the key was joined, next gets nil (retracting
// the joined value). A joiner's error rejects the record with reason
// op.Kind.
func TableJoinSide(rt *Runtime, op Op, side string, joiner func(key string, left, right any) (any, error), next Step) goka.ProcessCallback {
	return HandleDecoded(rt, func(ctx goka.Context, s *Stored) error {
		both, _ := ctx.Value().(map[string]any)
		wasJoined := both[JoinLeft] != nil && both[JoinRight] != nil
		if s == nil || s.Value == nil {
			// A side was deleted: forget it, and retract the joined
			// value if there was one.
			if both[side] == nil {
				return nil
			}
			delete(both, side)
			if len(both) == 0 {
				ctx.Delete()
			} else {
				ctx.SetValue(both)
			}
			if wasJoined {
				return next(ctx, ctx.Key(), nil)
			}
			return nil
		}
		if both == nil {
			both = map[string]any{}
		}
		both[side] = s.Value
		ctx.SetValue(both)
		l, r := both[JoinLeft], both[JoinRight]
		if l == nil || r == nil {
			return nil // an inner join: no result until both sides exist
		}
		joined, err := joiner(ctx.Key(), l, r)
		if err != nil {
			return Reject(op.Kind, "table join %q: %v", op.Name, err)
		}
		return next(ctx, ctx.Key(), joined)
	})
}
