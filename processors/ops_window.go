package processors

import (
	"fmt"
	"strings"
	"time"

	"github.com/lovoo/goka"
)

// Windowed aggregations run in two steps, like Kafka Streams' windowed
// aggregations after a repartition:
//
//   - WindowStep, upstream, re-keys each record by every window that
//     contains its event time (a record of hopping windows goes to
//     several), so that all updates of a window reach one partition of the
//     aggregating group;
//   - WindowedStep, in the aggregating group, decides whether the record
//     is late for its window, once, with the stream time of its partition
//     (StreamClock: kept in the table, so it survives restarts), applies
//     it if not, and tells what follows the table (a
//     suppress-until-window-close) the stream time at which it applied the
//     update (HeaderStreamTime).
//
// One clock decides both what is applied and when a window is final:
// a window closes at stream time start + size + grace, after which its
// table value never changes again.

// WindowKey is the table key of key's window starting at start:
// key@start in RFC 3339, UTC, with the fraction of a second when start has
// one (time.RFC3339Nano), so that sub-second windows get keys of their own
// and whole-second starts keep the form they always had
// ("k@2026-03-01T10:00:00Z", "k@2026-03-01T10:00:00.5Z").
func WindowKey(key string, start time.Time) string {
	return key + "@" + start.UTC().Format(time.RFC3339Nano)
}

// WindowStart returns the window start in a table key made by WindowKey.
func WindowStart(key string) (time.Time, error) {
	i := strings.LastIndexByte(key, '@')
	if i < 0 {
		return time.Time{}, fmt.Errorf("key %q is not a window key (<key>@<window start>)", key)
	}
	start, err := time.Parse(time.RFC3339, key[i+1:])
	if err != nil {
		return time.Time{}, fmt.Errorf("key %q is not a window key: %v", key, err)
	}
	return start, nil
}

// WindowCloseAt returns when the window of a window key closes: its start
// plus size plus grace (the closeAt of NewWindowSuppressor).
func WindowCloseAt(size, grace time.Duration) func(key string) (time.Time, error) {
	return func(key string) (time.Time, error) {
		start, err := WindowStart(key)
		if err != nil {
			return time.Time{}, err
		}
		return start.Add(size + grace), nil
	}
}

// WindowStep passes each record on once for every window of size starting
// every advance that contains its event time, keyed by window
// (WindowKey). It decides nothing about lateness: the aggregating group
// does, for each window (WindowedStep).
func WindowStep(size, advance time.Duration, next Step) Step {
	return func(ctx goka.Context, k string, v any) error {
		ts := ctx.Timestamp()
		for start := ts.Truncate(advance); start.After(ts.Add(-size)); start = start.Add(-advance) {
			if err := next(ctx, WindowKey(k, start), v); err != nil {
				return err
			}
		}
		return nil
	}
}

// WindowedStep wraps the step apply of the aggregation below window op
// (windows of size, closed grace after their end): a record for a window
// whose close (start + size + grace) the stream time of clock has reached
// is rejected as late (ReasonLate); otherwise apply runs with a context
// whose emits carry the stream time it was applied at (apply moves clock
// on when it writes the table). A record applied before (a replay after a
// crash) is not checked again.
func WindowedStep(op Op, size, grace time.Duration, clock *StreamClock, apply Step) Step {
	return func(ctx goka.Context, k string, v any) error {
		ts := ctx.Timestamp()
		applied := ts
		if c, ok := ctx.(*Context); !ok || !c.AlreadyApplied() {
			now, err := clock.Now(ctx)
			if err != nil {
				return err
			}
			start, err := WindowStart(k)
			if err != nil {
				return Reject(ReasonWindow, "%s %q: %v", op.Kind, op.Name, err)
			}
			if closeAt := start.Add(size + grace); !now.Before(closeAt) {
				return Reject(ReasonLate, "%s %q: late record at %s for window %s: the window closed at %s (stream time %s, grace %s)",
					op.Kind, op.Name, ts.UTC().Format(time.RFC3339Nano), k, closeAt.UTC().Format(time.RFC3339Nano),
					now.UTC().Format(time.RFC3339Nano), grace)
			}
			if now.After(ts) {
				applied = now
			}
		}
		// A record applied before (a replay after a crash) carries its
		// own event time: never newer than the stream time it was first
		// applied at, so it closes no window early downstream.
		return apply(WithStreamTime(ctx, applied), k, v)
	}
}
