package processors

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/lovoo/goka"
	"github.com/weftstream/weft/statestore"
)

// View is a goka view of a table on weft's state store: a local, read-only
// copy of the table that follows its changelog.
type View struct {
	table   goka.Table
	view    *goka.View
	builder *statestore.Builder
	done    chan error
	cancel  context.CancelFunc
}

// StartView connects to Kafka, starts following table and returns once the
// local copy has caught up with the changelog (or ctx ends). Close stops it.
func StartView(ctx context.Context, table goka.Table, codec goka.Codec, opts ...Option) (*View, error) {
	cfg, err := buildConfig("StartView", viewOptions, opts)
	if err != nil {
		return nil, err
	}
	if err := cfg.restoreProgress.validate(); err != nil {
		return nil, err
	}
	sc, err := cfg.kafka.Sarama(ctx)
	if err != nil {
		return nil, err
	}
	builder := statestore.NewBuilder(filepath.Join(cfg.stateDir, "views", string(table)),
		append([]statestore.Option{statestore.WithLogger(cfg.logger)}, cfg.storeOpts...)...)
	vopts := append(cfg.kafka.ViewOptions(sc),
		goka.WithViewStorageBuilder(builder.Build),
		goka.WithViewLogger(gokaLogger{cfg.logger.With("component", "goka-view", "table", string(table))}),
	)
	gv, err := goka.NewView(cfg.kafka.Brokers, table, codec, vopts...)
	if err != nil {
		builder.Close()
		return nil, cfg.kafka.Explain(fmt.Errorf("open view of %s: %w", table, err))
	}
	runCtx, cancel := context.WithCancel(context.Background())
	v := &View{table: table, view: gv, builder: builder, done: make(chan error, 1), cancel: cancel}
	go func() { v.done <- gv.Run(runCtx) }()
	stop := cfg.restoreProgress.follow(cfg.logger, cfg.kafka.Brokers, sc, string(table), builder)
	select {
	case <-gv.WaitRunning():
		stop()
		return v, nil
	case err := <-v.done:
		stop()
		cancel()
		builder.Close()
		if err == nil {
			err = errors.New("view stopped before it caught up")
		}
		return nil, cfg.kafka.Explain(fmt.Errorf("view of %s: %w", table, err))
	case <-ctx.Done():
		stop()
		_ = v.Close()
		return nil, fmt.Errorf("view of %s did not catch up: %w", table, ctx.Err())
	}
}

// Get returns the decoded value of key, or nil.
func (v *View) Get(key string) (any, error) { return v.view.Get(key) }

// Lineage returns the recorded versions of key, newest first: rebuilt from
// the changelog records the view read (see statestore.Store.Lineage).
func (v *View) Lineage(key string) ([]statestore.Envelope, error) {
	return lineage(v.builder, string(v.table), key)
}

// Goka returns the underlying goka view.
func (v *View) Goka() *goka.View { return v.view }

// Close stops the view and closes its stores.
func (v *View) Close() error {
	v.cancel()
	err := <-v.done
	v.done <- err // keep Close idempotent
	v.builder.Close()
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
