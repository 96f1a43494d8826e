package processors

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lovoo/goka"
)

// Tally accounts for every input record a processor handles: processed,
// replayed or rejected (rejections are logged with topic, partition and
// offset), so that inputs = processed + replayed + rejected. It is safe for
// concurrent use by the partition goroutines of a processor.
//
// When several branches share the group's input (sibling pipelines: the
// children of one node, run one after the other by the same callback), a
// record one branch rejects may well be processed by another. The record
// then goes to the dead-letter topic once and counts once, as rejected, in
// the group's totals; the counts per branch (see Branch) tell what each
// branch did with it, so that inputs = processed + replayed + rejected
// holds for every branch too.
type Tally struct {
	logger    *slog.Logger
	processed atomic.Int64
	replayed  atomic.Int64
	rejected  atomic.Int64 // records rejected (each once, see Reject)
	// linksDropped counts contributors of sampled traces that a version
	// or a coalesced output could not list (its bound was reached).
	linksDropped atomic.Int64
	mu           sync.Mutex
	byReason     map[string]int64
	branches     []*BranchTally
	// Rejections logged one by one in the current log window, and those
	// only counted (see Reject).
	logWindow time.Time
	logged    int
	unlogged  int64
}

// Rejections are logged one by one up to rejectLogBurst per
// rejectLogWindow; beyond that they are counted and reported in one line
// when the window ends (a topic full of bad records must not flood the
// log with a line per record).
const (
	rejectLogBurst  = 20
	rejectLogWindow = 10 * time.Second
)

// BranchTally counts what one branch of a group did with the records that
// reached it. Count it with Count; read it with Tally.Branches.
type BranchTally struct {
	name                          string
	processed, replayed, rejected atomic.Int64
}

// BranchCount is what a branch did with the records that reached it.
type BranchCount struct {
	Processed, Replayed, Rejected int64
}

// Branch returns the counter of the branch name (made once per branch,
// when the group is built; the same name gives the same counter).
func (b *Tally) Branch(name string) *BranchTally {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, bt := range b.branches {
		if bt.name == name {
			return bt
		}
	}
	bt := &BranchTally{name: name}
	b.branches = append(b.branches, bt)
	return bt
}

// Count accounts for the outcome err of the branch on the record of ctx:
// a Rejection counts as rejected, nil as processed (or replayed, for a
// record the group's state already includes). Other errors stop the
// processor and are not counted.
func (bt *BranchTally) Count(ctx goka.Context, err error) {
	switch _, rejected := AsRejection(err); {
	case rejected:
		bt.rejected.Add(1)
	case err != nil:
	case isReplay(ctx):
		bt.replayed.Add(1)
	default:
		bt.processed.Add(1)
	}
}

func isReplay(ctx goka.Context) bool {
	c, ok := contextOf(ctx)
	return ok && c.replayed
}

// Branches returns the counts of every branch by name (nil when the
// group's input does not fork).
func (b *Tally) Branches() map[string]BranchCount {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.branches) == 0 {
		return nil
	}
	out := make(map[string]BranchCount, len(b.branches))
	for _, bt := range b.branches {
		out[bt.name] = BranchCount{Processed: bt.processed.Load(), Replayed: bt.replayed.Load(), Rejected: bt.rejected.Load()}
	}
	return out
}

// NewTally returns a Tally that logs each rejection to logger.
func NewTally(logger *slog.Logger) *Tally {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Tally{logger: logger, byReason: map[string]int64{}}
}

// Processed returns the number of records handled successfully.
func (b *Tally) Processed() int64 { return b.processed.Load() }

// LinksDropped returns how many contributors of sampled traces were not
// linked because the version or coalesced output they contributed to
// already listed as many as it may (statestore.MaxContributors for table
// versions, the coalescer's link bound): their traces lose the
// coalesced link, which the span attribute weft.links.dropped counts
// too. Unsampled contributors are not counted: there is no trace to link.
func (b *Tally) LinksDropped() int64 { return b.linksDropped.Load() }

// Replayed returns the number of redelivered records that were already
// applied to the state and therefore skipped.
func (b *Tally) Replayed() int64 { return b.replayed.Load() }

// Reject accounts for the rejection of the record ctx is processing.
func (b *Tally) Reject(ctx goka.Context, rej *Rejection) {
	b.rejected.Add(1)
	b.mu.Lock()
	b.byReason[rej.Reason]++
	if now := time.Now(); now.Sub(b.logWindow) >= rejectLogWindow {
		b.logUnloggedLocked()
		b.logWindow, b.logged = now, 0
	}
	logIt := b.logged < rejectLogBurst
	if logIt {
		b.logged++
	} else {
		b.unlogged++
	}
	b.mu.Unlock()
	if logIt {
		b.logger.Warn("rejected input record",
			"topic", string(ctx.Topic()), "partition", ctx.Partition(), "offset", ctx.Offset(),
			"key", ctx.Key(), "reason", rej.Reason, "error", rej.Err)
	}
}

// FlushLog reports the rejections counted but not logged one by one yet
// (the processor calls it when it stops).
func (b *Tally) FlushLog() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.logUnloggedLocked()
}

func (b *Tally) logUnloggedLocked() {
	if b.unlogged == 0 {
		return
	}
	reasons := make(map[string]int64, len(b.byReason))
	for k, v := range b.byReason {
		reasons[k] = v
	}
	b.logger.Warn("more input records rejected than logged one by one", "not_logged", b.unlogged,
		"rejected_total", b.rejected.Load(), "rejected_by_reason", reasons)
	b.unlogged = 0
}

// Rejected returns the number of rejected records.
func (b *Tally) Rejected() int64 { return b.rejected.Load() }

// RejectedByReason returns a copy of the rejection counts per reason.
func (b *Tally) RejectedByReason() map[string]int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[string]int64, len(b.byReason))
	for k, v := range b.byReason {
		out[k] = v
	}
	return out
}
