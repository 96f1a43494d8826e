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
	err := newRootCommand().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "weft:", err)
		var ue *usageError
		var nv *noValueError
		switch {
		case errors.As(err, &ue):
			os.Exit(2)
		case errors.As(err, &nv):
			os.Exit(3)
		}
		os.Exit(1)
	}
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
