// Command weft is a stateful stream processor for Kafka whose traces
// survive state. This binary is a thin command line over weft's packages:
// run a processor, serve the embedded broker, produce event files, query
// tables.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root, g := newRoot()
	routeLibraryLogs(root, g)
	err := root.ExecuteContext(ctx)
	stop()
	if err != nil {
		code := exitCode(err)
		if log := g.stderrLogger(); log != nil && g.logFormat == "json" {
			// Every line on stderr is JSON then, this one too.
			log.Error("weft: "+err.Error(), "exit_code", code)
		} else {
			fmt.Fprintln(os.Stderr, "weft:", err)
		}
		os.Exit(code)
	}
}

// exitCode is the process exit code of a command's error: 2 for a usage
// error, 3 for a key without a value, 1 for anything else.
func exitCode(err error) int {
	var ue *usageError
	var nv *noValueError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		return 2
	case errors.As(err, &nv):
		return 3
	}
	return 1
}

// usageError marks a mistake in the command line (exit code 2).
type usageError struct{ err error }

func (u *usageError) Error() string { return u.err.Error() }
func (u *usageError) Unwrap() error { return u.err }

// noValueError is a key without a value ('weft get', exit code 3): an
// answer, not a failure to get one.
type noValueError struct{ err error }

func (n *noValueError) Error() string { return n.err.Error() }
func (n *noValueError) Unwrap() error { return n.err }
