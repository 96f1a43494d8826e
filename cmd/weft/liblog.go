package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/IBM/sarama"
	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"go.opentelemetry.io/otel"
)

// gokaLogger sends goka's log lines to slog: its warnings ("Warning: ...")
// and errors at warn level, the rest (partition states, rebalances) at
// debug level.
type gokaLogger struct{ l *slog.Logger }

func (g gokaLogger) Print(args ...any) { g.log(fmt.Sprint(args...)) }
func (g gokaLogger) Println(args ...any) {
	g.log(strings.TrimSuffix(fmt.Sprintln(args...), "\n"))
}
func (g gokaLogger) Printf(format string, args ...any) { g.log(fmt.Sprintf(format, args...)) }

func (g gokaLogger) log(msg string) {
	msg = strings.TrimSpace(msg)
	level := slog.LevelDebug
	if strings.Contains(msg, "Warning") || strings.Contains(msg, "Error") {
		level = slog.LevelWarn
	}
	g.l.Log(context.Background(), level, msg) // goka gives no context
}

// routeLibraryLogs makes the libraries that log through package globals
// log through the command's slog logger (so that --log-format json gives
// JSON lines only): sarama's Logger, OpenTelemetry's error handler and
// internal logger, and the log package's default logger (which
// OpenTelemetry's default handler and others print to). They are
// process-wide, so only main calls this, once the flags are known; goka and
// Pebble take their loggers per processor, view and store.
func routeLibraryLogs(root *cobra.Command, g *globalFlags) {
	pre := root.PersistentPreRunE
	root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		if err := pre(cmd, args); err != nil {
			return err
		}
		log, err := g.logger(os.Stderr)
		if err != nil {
			return err
		}
		slog.SetDefault(log)
		sarama.Logger = saramaLogger{log.With("component", "sarama")}
		otel.SetLogger(logr.FromSlogHandler(log.With("component", "opentelemetry").Handler()))
		otelLog := log.With("component", "opentelemetry")
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
			otelLog.Warn("OpenTelemetry error", "error", err)
		}))
		return nil
	}
}

// saramaLogger sends sarama's log lines (connections, metadata, group
// rebalances: chatter) to slog at debug level.
type saramaLogger struct{ l *slog.Logger }

func (s saramaLogger) Print(args ...any) { s.l.Debug(strings.TrimSpace(fmt.Sprint(args...))) }
func (s saramaLogger) Println(args ...any) {
	s.l.Debug(strings.TrimSpace(fmt.Sprintln(args...)))
}
func (s saramaLogger) Printf(format string, args ...any) {
	s.l.Debug(strings.TrimSpace(fmt.Sprintf(format, args...)))
}
