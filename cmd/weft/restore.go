package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/spf13/pflag"
	"github.com/weftstream/weft/kafkaclient"
	"github.com/weftstream/weft/processors"
)

// restoredTable is a local copy of a table topic, restored into a
// temporary directory for one read ('weft get', 'weft explain'): a
// processors.View of the table's raw envelopes.
type restoredTable struct {
	*processors.View
	table goka.Table
	dir   string
}

// restoreProgressFlag registers --progress-interval of a command that
// restores a table (restoreTable's every).
func restoreProgressFlag(fs *pflag.FlagSet, every *time.Duration) {
	fs.DurationVar(every, "progress-interval", 5*time.Second, "how often to log the progress of the table's restore when stderr is not a terminal (0: never)")
}

// restoreTable reads table into a temporary store until it has caught up
// with the topic (or ctx ends), reporting its progress on stderr (see
// progressReport, logged every interval). Close removes the copy.
func restoreTable(ctx context.Context, log *slog.Logger, k kafkaclient.Config, table goka.Table, every time.Duration) (*restoredTable, error) {
	dir, err := os.MkdirTemp("", "weft-restore-")
	if err != nil {
		return nil, fmt.Errorf("create temporary state directory: %w", err)
	}
	var progress *progressReport // from the first report on: the restore has begun
	v, err := processors.StartView(ctx, table, new(codec.Bytes),
		processors.WithKafka(k), processors.WithStateDir(dir), processors.WithLogger(log),
		processors.WithRestoreProgress(progressSample, func(done, total int64) {
			if progress == nil {
				progress = newProgressReport(log, "restore", "offsets", every)
			}
			progress.update(done, total)
		}))
	if progress != nil {
		progress.finish()
	}
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return &restoredTable{View: v, table: table, dir: dir}, nil
}

// Get returns the stored value of key (an envelope), or nil.
func (t *restoredTable) Get(key string) ([]byte, error) {
	v, err := t.View.Get(key)
	if err != nil || v == nil {
		return nil, err
	}
	return v.([]byte), nil
}

// Close stops the view and removes the local copy.
func (t *restoredTable) Close() error {
	err := t.View.Close()
	if rerr := os.RemoveAll(t.dir); rerr != nil && err == nil {
		err = fmt.Errorf("remove the restored copy of %s: %w", t.table, rerr)
	}
	return err
}
