package processors

import (
	"errors"
	"fmt"
)

// Rejection is an error that marks an input record as bad: it is counted,
// logged with its topic, partition and offset, and skipped, and the
// processor goes on. Return one (see Reject) from a handler for input that
// breaks the rules of the domain.
type Rejection struct {
	Reason string // short, stable category such as "decode" or "unknown-account"
	Err    error
}

func (r *Rejection) Error() string {
	if r.Err == nil {
		return r.Reason
	}
	return r.Reason + ": " + r.Err.Error()
}

// Unwrap returns the cause.
func (r *Rejection) Unwrap() error { return r.Err }

// Reject returns a Rejection with a reason and a formatted detail.
func Reject(reason, format string, args ...any) error {
	return &Rejection{Reason: reason, Err: fmt.Errorf(format, args...)}
}

// AsRejection reports whether err is (or wraps) a Rejection.
func AsRejection(err error) (*Rejection, bool) {
	var r *Rejection
	ok := errors.As(err, &r)
	return r, ok
}
