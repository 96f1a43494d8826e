package processors

import (
	"fmt"

	"github.com/lovoo/goka"
)

// Fold computes a key's new table value from its current value (nil: the
// key has none) and the record's value; a nil result deletes the key. An
// error rejects the record.
type Fold func(key string, current, value any) (any, error)

// CountFold counts the records of a key (an int64).
func CountFold(_ string, current, _ any) (any, error) {
	count, _ := current.(int64)
	return count + 1, nil
}

// LatestFold keeps the latest value of a key.
func LatestFold(_ string, _, value any) (any, error) { return value, nil }

// ReduceFold combines a key's values with reduce; the first value is kept
// as it is.
func ReduceFold(reduce func(key string, current, value any) (any, error)) Fold {
	return func(k string, current, value any) (any, error) {
		if current == nil {
			return value, nil
		}
		return reduce(k, current, value)
	}
}

// AggregateFold folds a key's values with add, starting from init().
func AggregateFold(init func() any, add func(key string, value, aggregate any) (any, error)) Fold {
	return func(k string, current, value any) (any, error) {
		if current == nil {
			current = init()
		}
		return add(k, value, current)
	}
}

// TableStep updates the table of the group (Context.Value, SetValue,
// Delete) with fold, then runs next with the new value (not after a
// delete). The record's key must be the key of the callback: a stream
// whose key changed reaches a table through a repartition topic. With a
// clock (a windowed table), the table's write moves the stream time of
// the partition to the record's event time.
func TableStep(op Op, fold Fold, clock *StreamClock, next Step) Step {
	return func(ctx goka.Context, k string, v any) error {
		if k != ctx.Key() {
			return op.Reject(fmt.Errorf("record key %q reached the table of key %q: the stream must be repartitioned", k, ctx.Key()))
		}
		nv, err := fold(k, ctx.Value(), v)
		if err != nil {
			return op.Reject(err)
		}
		if nv == nil {
			ctx.Delete()
			return nil
		}
		ctx.SetValue(nv)
		if clock != nil {
			// Stream time is the newest event time in the table (the
			// clock restores it from there): it moves with the write.
			if err := clock.Advance(ctx, ctx.Timestamp()); err != nil {
				return err
			}
		}
		return next(ctx, k, nv)
	}
}
