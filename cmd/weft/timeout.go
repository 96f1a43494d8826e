package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

// errTimedOut is the cause of a command's context when --timeout expires.
var errTimedOut = errors.New("--timeout expired")

// timeoutError is a one-shot command that did not finish within --timeout
// (exit code 1): one sentence that names the flag, the cause wrapped.
type timeoutError struct {
	limit time.Duration
	err   error
}

func (e *timeoutError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("did not finish within --timeout %s", e.limit)
	}
	return fmt.Sprintf("did not finish within --timeout %s: %v", e.limit, e.err)
}

func (e *timeoutError) Unwrap() error { return e.err }

// withTimeout gives a one-shot command (get, explain, produce, consume) a
// --timeout flag: its context gets that deadline, and a command the
// deadline ended fails with a sentence that names --timeout. stopsEarly
// says whether the deadline is an ordinary end for this invocation (consume
// --follow reads until it, as until Ctrl-C); it may be nil.
func withTimeout(cmd *cobra.Command, stopsEarly func() bool) *cobra.Command {
	var limit time.Duration
	cmd.Flags().DurationVar(&limit, "timeout", 0, "give up after this long, e.g. 30s (0: no limit)")
	run := cmd.RunE
	cmd.RunE = func(c *cobra.Command, args []string) error {
		if limit < 0 {
			return &usageError{fmt.Errorf("--timeout %s: give a positive duration, or 0 for no limit", limit)}
		}
		if limit == 0 {
			return run(c, args)
		}
		ctx, cancel := context.WithTimeoutCause(c.Context(), limit, errTimedOut)
		defer cancel()
		c.SetContext(ctx)
		err := run(c, args)
		if !errors.Is(context.Cause(ctx), errTimedOut) {
			return err
		}
		var ue *usageError
		if errors.As(err, &ue) || (err == nil && stopsEarly != nil && stopsEarly()) {
			return err
		}
		return &timeoutError{limit: limit, err: err}
	}
	return cmd
}
