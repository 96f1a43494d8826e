package processors

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// partitionError matches goka's per-partition error prefixes.
var partitionError = regexp.MustCompile(`^error (?:setting up|processing message) \(partition=(\d+)\): `)

// collapse turns the tree goka reports a failure in (multierrors of
// per-partition errors, "8 errors occurred: * error setting up
// (partition=6): ...") into one sentence per distinct cause, with the
// partitions it happened in: "<cause> (partitions 0-3, 6)". The result
// still wraps err, so errors.Is and errors.As see every cause.
func collapse(err error) error {
	if err == nil {
		return nil
	}
	var causes []string
	parts := map[string][]int{}
	var walk func(e error, partition int)
	walk = func(e error, partition int) {
		if m, ok := e.(interface{ WrappedErrors() []error }); ok {
			for _, c := range m.WrappedErrors() {
				walk(c, partition)
			}
			return
		}
		if cs := joined(e); cs != nil {
			for _, c := range cs {
				walk(c, partition)
			}
			return
		}
		if m := partitionError.FindStringSubmatch(e.Error()); m != nil {
			if inner := errors.Unwrap(e); inner != nil {
				p, _ := strconv.Atoi(m[1])
				walk(inner, p)
				return
			}
		}
		// A wrapper around a tree ("error consuming from group consumer:
		// 1 error occurred: ..."): its text adds nothing to the causes.
		if inner := errors.Unwrap(e); inner != nil {
			if _, ok := inner.(interface{ WrappedErrors() []error }); ok || partitionError.MatchString(inner.Error()) {
				walk(inner, partition)
				return
			}
		}
		msg := callbackPanic(strings.TrimSpace(e.Error()))
		if _, seen := parts[msg]; !seen {
			causes = append(causes, msg)
			parts[msg] = nil
		}
		if partition >= 0 && !slices.Contains(parts[msg], partition) {
			parts[msg] = append(parts[msg], partition)
		}
	}
	walk(err, -1)
	if len(causes) == 1 && len(parts[causes[0]]) == 0 && causes[0] == err.Error() {
		return err // nothing to collapse
	}
	var b strings.Builder
	for i, c := range causes {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(c)
		if ps := parts[c]; len(ps) > 0 {
			b.WriteString(" (" + partitionList(ps) + ")")
		}
	}
	return &collapsedError{msg: b.String(), err: err}
}

// joined returns the errors an errors.Join holds (its text is theirs, one
// a line), or nil for any other error.
func joined(e error) []error {
	m, ok := e.(interface{ Unwrap() []error })
	if !ok {
		return nil
	}
	var cs []error
	var texts []string
	for _, c := range m.Unwrap() {
		if c != nil {
			cs = append(cs, c)
			texts = append(texts, c.Error())
		}
	}
	if len(cs) == 0 || strings.Join(texts, "\n") != e.Error() {
		return nil
	}
	return cs
}

// callbackPanic turns goka's report of an error raised in a callback by
// panicking (its ctx.Fail, e.g. when reading the key's value from the store
// fails: "panic in callback: <error>\n<stack trace>") into the error's
// text.
func callbackPanic(msg string) string {
	const prefix = "panic in callback: "
	if !strings.HasPrefix(msg, prefix) {
		return msg
	}
	msg = strings.TrimPrefix(msg, prefix)
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	return strings.TrimSpace(msg)
}

// partitionList formats partitions as "partition 3" or "partitions 0-3, 6".
func partitionList(ps []int) string {
	slices.Sort(ps)
	var runs []string
	for i := 0; i < len(ps); {
		j := i
		for j+1 < len(ps) && ps[j+1] == ps[j]+1 {
			j++
		}
		if j > i {
			runs = append(runs, fmt.Sprintf("%d-%d", ps[i], ps[j]))
		} else {
			runs = append(runs, strconv.Itoa(ps[i]))
		}
		i = j + 1
	}
	if len(ps) == 1 {
		return "partition " + runs[0]
	}
	return "partitions " + strings.Join(runs, ", ")
}

// collapsedError is an error tree told in one line.
type collapsedError struct {
	msg string
	err error
}

func (e *collapsedError) Error() string { return e.msg }
func (e *collapsedError) Unwrap() error { return e.err }
