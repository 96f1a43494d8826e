package main

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/weftstream/weft/serve/client"
)

// get --wait asks again while the key has no value or its partition is
// restoring, and stops at any other error or at the deadline.
func TestGetWaitRetries(t *testing.T) {
	noValue := &noValueError{errors.New("key \"k\" has no value")}
	restoring := fmt.Errorf("k in t: %w", client.ErrUnavailable)
	other := errors.New("cannot reach Kafka")
	for _, tc := range []struct {
		name    string
		results []error // of the calls, in order; the last repeats
		wait    time.Duration
		calls   int
		want    error
	}{
		{"value at once", []error{nil}, time.Minute, 1, nil},
		{"no value, then a value", []error{noValue, noValue, nil}, time.Minute, 3, nil},
		{"restoring, then a value", []error{restoring, nil}, time.Minute, 2, nil},
		{"another error", []error{noValue, other}, time.Minute, 2, other},
		{"no wait", []error{noValue}, 0, 1, noValue},
		{"deadline", []error{noValue}, 3 * waitRetry / 2, 2, noValue},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			err := waitForValue(t.Context(), tc.wait, func() error {
				r := tc.results[min(calls, len(tc.results)-1)]
				calls++
				return r
			})
			if !errors.Is(err, tc.want) || calls != tc.calls {
				t.Fatalf("%d calls, error %v; want %d calls, error %v", calls, err, tc.calls, tc.want)
			}
		})
	}
}
