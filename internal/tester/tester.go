// Package tester holds what weft needs around goka's in-memory tester
// outside Go tests ('weft test' and the point-in-time folds of replay
// jobs): a tester.T that collects errors, a guard that turns the tester's
// panics into errors, and a logger that drops goka's lines.
package tester

import (
	"errors"
	"fmt"
	"slices"
	"sync"
)

// T is goka's tester.T outside a Go test: Errorf is recorded, Fatal and
// Fatalf panic, and Guard turns that panic into an error.
type T struct {
	mu   sync.Mutex
	errs []string
}

// fatal is the panic of Fatal and Fatalf.
type fatal struct{ msg string }

// Errorf records an error.
func (t *T) Errorf(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.errs = append(t.errs, fmt.Sprintf(format, args...))
}

// Fatalf ends the run: it panics (see Guard).
func (t *T) Fatalf(format string, args ...any) { panic(fatal{fmt.Sprintf(format, args...)}) }

// Fatal ends the run: it panics (see Guard).
func (t *T) Fatal(args ...any) { panic(fatal{fmt.Sprint(args...)}) }

// Errors returns the errors recorded so far.
func (t *T) Errors() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.errs)
}

// Guard runs fn and returns its panic (the tester panics on misuse, T on
// Fatal) as an error.
func Guard(fn func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			switch x := r.(type) {
			case fatal:
				err = errors.New(x.msg)
			case error:
				err = x
			default:
				err = fmt.Errorf("%v", x)
			}
		}
	}()
	fn()
	return nil
}

// Quiet is a goka logger that drops everything.
type Quiet struct{}

// Print drops its arguments.
func (Quiet) Print(...any) {}

// Println drops its arguments.
func (Quiet) Println(...any) {}

// Printf drops its arguments.
func (Quiet) Printf(string, ...any) {}
