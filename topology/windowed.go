package topology

import (
	"time"

	"github.com/lovoo/goka"
	"github.com/weftstream/weft/processors"
)

// Windowed aggregations run in two steps, like Kafka Streams' windowed
// aggregations after a repartition:
//
//   - windowStep, upstream, re-keys each record by every window that
//     contains its event time (a record of hopping windows goes to
//     several), so that all updates of a window reach one partition of the
//     aggregating group;
//   - windowed, in the aggregating group, decides whether the record is
//     late for its window, once, with the stream time of its partition
//     (processors.StreamClock: kept in the table, so it survives restarts),
//     applies it if not, and tells what follows the table (a
//     suppress-until-window-close) the stream time at which it applied the
//     update (processors.HeaderStreamTime).
//
// One clock decides both what is applied and when a window is final:
// a window closes at stream time start + size + grace, after which its
// table value never changes again.

// windowStep passes each record on once for every window that contains
// its event time, keyed by window (WindowKey). It decides nothing about
// lateness: the aggregating group does, for each window.
func windowStep(n *Node, next step) step {
	w := n.Windows
	return func(ctx goka.Context, k string, v any) error {
		ts := ctx.Timestamp()
		for start := ts.Truncate(w.Advance); start.After(ts.Add(-w.Size)); start = start.Add(-w.Advance) {
			if err := next(ctx, WindowKey(k, start), v); err != nil {
				return err
			}
		}
		return nil
	}
}

// windowed wraps the step apply of the aggregation below window node w:
// a record for a window whose close (start + size + grace) the stream
// time of clock has reached is rejected as late; otherwise apply runs
// with a context whose emits carry the stream time it was applied at
// (apply moves clock on when it writes the table).
func windowed(w *Node, clock *processors.StreamClock, apply step) step {
	win := w.Windows
	return func(ctx goka.Context, k string, v any) error {
		ts := ctx.Timestamp()
		applied := ts
		if c, ok := ctx.(*processors.Context); !ok || !c.AlreadyApplied() {
			now, err := clock.Now(ctx)
			if err != nil {
				return err
			}
			start, err := WindowStart(k)
			if err != nil {
				return processors.Reject(processors.ReasonWindow, "%s %q: %v", w.Kind, w.Name, err)
			}
			if closeAt := start.Add(win.Size + win.Grace); !now.Before(closeAt) {
				return processors.Reject(processors.ReasonLate, "%s %q: late record at %s for window %s: the window closed at %s (stream time %s, grace %s)",
					w.Kind, w.Name, ts.UTC().Format(time.RFC3339Nano), k, closeAt.UTC().Format(time.RFC3339Nano),
					now.UTC().Format(time.RFC3339Nano), win.Grace)
			}
			if now.After(ts) {
				applied = now
			}
		}
		// A record applied before (a replay after a crash) carries its
		// own event time: never newer than the stream time it was first
		// applied at, so it closes no window early downstream.
		return apply(processors.WithStreamTime(ctx, applied), k, v)
	}
}
