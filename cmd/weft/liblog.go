package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
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
