package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/weftstream/weft/kafkaclient"
	"github.com/weftstream/weft/statestore"
)

// restoredTable is a local copy of a table topic, restored into a
// temporary directory for one read ('weft get', 'weft explain'). It is
// processors.StartView with a progress report: the restore of a large
// table takes a while, and the view's store offsets say how far it got.
type restoredTable struct {
	table   goka.Table
	view    *goka.View
	builder *statestore.Builder
	dir     string
	done    chan error
	cancel  context.CancelFunc
}

// restoreTable reads table into a temporary store until it has caught up
// with the topic (or ctx ends), reporting progress on stderr (see
// progressReport) every interval. Close removes the copy.
func restoreTable(ctx context.Context, log *slog.Logger, k kafkaclient.Config, table goka.Table, every time.Duration) (*restoredTable, error) {
	sc, err := k.Sarama(ctx)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "weft-restore-")
	if err != nil {
		return nil, fmt.Errorf("create temporary state directory: %w", err)
	}
	builder := statestore.NewBuilder(filepath.Join(dir, "views", string(table)), statestore.WithLogger(log))
	vopts := append(k.ViewOptions(sc),
		goka.WithViewStorageBuilder(builder.Build),
		goka.WithViewLogger(gokaLogger{log.With("component", "goka-view", "table", string(table))}),
	)
	gv, err := goka.NewView(k.Brokers, table, new(codec.Bytes), vopts...)
	if err != nil {
		builder.Close()
		_ = os.RemoveAll(dir)
		return nil, k.Explain(fmt.Errorf("open view of %s: %w", table, err))
	}
	runCtx, cancel := context.WithCancel(context.Background())
	t := &restoredTable{table: table, view: gv, builder: builder, dir: dir, done: make(chan error, 1), cancel: cancel}
	go func() { t.done <- gv.Run(runCtx) }()

	stop := func() {}
	if ranges, err := offsetRanges(k.Brokers, sc, string(table)); err != nil {
		log.Debug("no restore progress: the table's offsets are unknown", "table", string(table), "err", err)
	} else {
		stop = newProgressReport(log, "restore", "offsets", every).follow(func() (int64, int64) {
			return t.restored(ranges)
		})
	}
	defer stop()
	select {
	case <-gv.WaitRunning():
		return t, nil
	case err := <-t.done:
		t.done <- err
		_ = t.Close()
		if err == nil {
			err = errors.New("view stopped before it caught up")
		}
		return nil, k.Explain(fmt.Errorf("view of %s: %w", table, err))
	case <-ctx.Done():
		_ = t.Close()
		return nil, fmt.Errorf("view of %s did not catch up: %w", table, ctx.Err())
	}
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

// restored is how many of the offsets in ranges the local stores hold.
func (t *restoredTable) restored(ranges map[int32]offsetRange) (done, total int64) {
	for p, r := range ranges {
		total += r.next - r.oldest
		st := t.builder.Store(string(t.table), p)
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

// Get returns the stored value of key (an envelope), or nil.
func (t *restoredTable) Get(key string) ([]byte, error) {
	v, err := t.view.Get(key)
	if err != nil || v == nil {
		return nil, err
	}
	return v.([]byte), nil
}

// Lineage returns the recorded versions of key, newest first.
func (t *restoredTable) Lineage(key string) ([]statestore.Envelope, error) {
	for _, st := range t.builder.Stores(string(t.table)) {
		versions, err := st.Lineage(key)
		if errors.Is(err, statestore.ErrClosed) {
			continue
		}
		if err != nil || len(versions) > 0 {
			return versions, err
		}
	}
	return nil, nil
}

// Close stops the view and removes the local copy.
func (t *restoredTable) Close() error {
	t.cancel()
	err := <-t.done
	t.done <- err // keep Close idempotent
	t.builder.Close()
	if rerr := os.RemoveAll(t.dir); rerr != nil && err == nil {
		err = fmt.Errorf("remove the restored copy of %s: %w", t.table, rerr)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
