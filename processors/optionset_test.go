package processors_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/weftstream/weft/kafkaclient"
	"github.com/weftstream/weft/processors"
)

// Each constructor refuses an option it does not use, with an error that
// names the option and the constructors that use it, before it connects
// to anything (no brokers here); the options it uses pass.
func TestConstructorsRefuseUnusedOptions(t *testing.T) {
	ctx := context.Background()
	logger := processors.WithLogger(slog.New(slog.DiscardHandler))
	graph := func(rt *processors.Runtime) *goka.GroupGraph {
		return processors.DefineGroup(rt, "opts", goka.Input("opts-in", new(codec.Bytes), countCallback(rt)), processors.Persist(new(codec.Int64)))
	}
	for _, tc := range []struct {
		name string
		make func() error
		want string // "" accepted (the error is then the missing broker's)
	}{
		{"NewEmitter, WithLogger", func() error {
			_, err := processors.NewEmitter(ctx, "t", logger)
			return err
		}, "processors.NewEmitter does not use WithLogger (an option of NewRuntime, NewProcessor, StartView)"},
		{"NewEmitter, two unused", func() error {
			_, err := processors.NewEmitter(ctx, "t", processors.WithStateDir(t.TempDir()), processors.StopOnRejection())
			return err
		}, "does not use WithStateDir (an option of NewProcessor, StartView), nor StopOnRejection (an option of NewRuntime)"},
		{"StartView, WithTracerProvider", func() error {
			_, err := processors.StartView(ctx, "t", new(codec.Bytes), processors.WithTracerProvider(nil))
			return err
		}, "processors.StartView does not use WithTracerProvider"},
		{"NewProcessor, StopOnRejection", func() error {
			_, err := processors.NewProcessor(ctx, graph(processors.NewRuntime()), processors.StopOnRejection())
			return err
		}, "processors.NewProcessor does not use StopOnRejection (an option of NewRuntime)"},
		{"NewRuntime, WithStateDir", func() error {
			rt := processors.NewRuntime(processors.WithStateDir(t.TempDir()))
			_, err := processors.NewProcessor(ctx, graph(rt), processors.WithRuntime(rt))
			return err
		}, "processors.NewRuntime does not use WithStateDir"},
		{"NewCoalescer, WithLogger", func() error {
			rt := processors.NewRuntime()
			co := processors.NewCoalescer(rt, "sums", "out", new(codec.String), nil, logger)
			_, err := processors.NewProcessor(ctx, graph(rt), processors.WithCoalescer(co))
			return err
		}, "coalescer sums: processors.NewCoalescer does not use WithLogger"},
		{"NewEmitter, its own options", func() error {
			_, err := processors.NewEmitter(ctx, "t", processors.EmitterOptions([]processors.Option{
				processors.WithKafka(kafkaclient.Config{}), logger, processors.WithTracerProvider(nil), processors.StopOnRejection()})...)
			return err
		}, ""},
		{"NewRuntime, its own options", func() error {
			rt := processors.NewRuntime(processors.WithKafka(kafkaclient.Config{}), logger, processors.WithTracerProvider(nil),
				processors.StopOnRejection(), processors.WithReplay(nil))
			_, err := processors.NewProcessor(ctx, graph(rt), processors.WithRuntime(rt), logger, processors.WithStateDir(t.TempDir()),
				processors.WithRecordCache(0, 0), processors.WithGiveUpAfter(1), processors.WithReconnectBackoff(1, 2))
			return err
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.make()
			switch {
			case tc.want == "" && err != nil && strings.Contains(err.Error(), "does not use"):
				t.Fatalf("refused options it uses: %v", err)
			case tc.want == "" && err == nil:
				t.Fatal("succeeded without a broker")
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one with %q", err, tc.want)
			}
		})
	}
}
