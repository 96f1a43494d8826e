package processors

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/weftstream/weft/statestore"
)

// WithRestoreProgress has StartView report how far the local copy of the
// table has got while it catches up (StartView only): report gets how many
// of the table's offsets the local stores hold (done) of those its
// partitions held when the restore began (total), once when the restore
// begins and then every interval, from one goroutine at a time, until the
// view has caught up, failed or given up; StartView returns after the last
// call. Where the brokers do not tell the table's offsets, nothing is
// reported (logged at debug). A user interface shows it as a progress bar
// or a log line ('weft get', 'weft explain').
func WithRestoreProgress(every time.Duration, report func(done, total int64)) Option {
	return option(optRestoreProgress, func(c *config) { c.restoreProgress = restoreProgress{every: every, report: report} })
}

// restoreProgress is the WithRestoreProgress setting.
type restoreProgress struct {
	every  time.Duration
	report func(done, total int64) // nil: no report
}

// validate reports an interval that cannot work.
func (rp restoreProgress) validate() error {
	if rp.report != nil && rp.every <= 0 {
		return fmt.Errorf("processors.WithRestoreProgress: the interval must be positive, not %s", rp.every)
	}
	return nil
}

// follow starts reporting the restore of table into builder; the returned
// function stops it and returns after the last report.
func (rp restoreProgress) follow(log *slog.Logger, brokers []string, sc *sarama.Config, table string, builder *statestore.Builder) (stop func()) {
	if rp.report == nil {
		return func() {}
	}
	ranges, err := offsetRanges(brokers, sc, table)
	if err != nil {
		log.Debug("no restore progress: the table's offsets are unknown", "table", table, "err", err)
		return func() {}
	}
	rp.report(restoredOffsets(builder, table, ranges))
	quit, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(rp.every)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				rp.report(restoredOffsets(builder, table, ranges))
			}
		}
	}()
	return sync.OnceFunc(func() {
		close(quit)
		<-stopped
	})
}

// offsetRange is the oldest offset of a partition and the offset its next
// record will have.
type offsetRange struct{ oldest, next int64 }

// offsetRanges asks the brokers for the offsets of every partition of
// topic.
func offsetRanges(brokers []string, sc *sarama.Config, topic string) (map[int32]offsetRange, error) {
	client, err := sarama.NewClient(brokers, sc)
	if err != nil {
		return nil, err
	}
	defer client.Close()
	parts, err := client.Partitions(topic)
	if err != nil {
		return nil, err
	}
	out := make(map[int32]offsetRange, len(parts))
	for _, p := range parts {
		oldest, err := client.GetOffset(topic, p, sarama.OffsetOldest)
		if err != nil {
			return nil, err
		}
		next, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return nil, err
		}
		out[p] = offsetRange{oldest, next}
	}
	return out, nil
}

// restoredOffsets is how many of the offsets in ranges the stores of table
// in builder hold.
func restoredOffsets(builder *statestore.Builder, table string, ranges map[int32]offsetRange) (done, total int64) {
	for p, r := range ranges {
		total += r.next - r.oldest
		st := builder.Store(table, p)
		if st == nil {
			continue
		}
		off, err := st.GetOffset(-1)
		if err != nil || off < r.oldest {
			continue
		}
		done += min(off+1, r.next) - r.oldest
	}
	return done, total
}
