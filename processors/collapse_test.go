package processors

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"

	"github.com/hashicorp/go-multierror"
)

func TestCollapse(t *testing.T) {
	locked := fmt.Errorf("state directory weft-data/processors/g/t/%s is in use by another process: %w", "X", fs.ErrExist)
	var setup *multierror.Error
	for _, p := range []int{6, 0, 1, 2, 3, 7} {
		setup = multierror.Append(setup, fmt.Errorf("error setting up (partition=%d): %w", p, locked))
	}
	tree := multierror.Append(nil, fmt.Errorf("error consuming from group consumer: %w", setup.ErrorOrNil()))
	got := collapse(tree)
	want := "state directory weft-data/processors/g/t/X is in use by another process: file already exists (partitions 0-3, 6-7)"
	if got.Error() != want {
		t.Fatalf("collapse:\n got %q\nwant %q", got, want)
	}
	if !errors.Is(got, fs.ErrExist) {
		t.Fatal("the collapsed error lost its cause")
	}
	// Two causes, one partition each; a plain error stays as it is.
	two := multierror.Append(nil, fmt.Errorf("error processing message (partition=2): %w", errors.New("boom")),
		fmt.Errorf("error setting up (partition=5): %w", errors.New("no space left on device")))
	if got := collapse(two).Error(); got != "boom (partition 2); no space left on device (partition 5)" {
		t.Fatalf("two causes: %q", got)
	}
	plain := errors.New("cannot reach Kafka")
	if collapse(plain) != plain || collapse(nil) != nil {
		t.Fatal("a plain error changed")
	}
	if strings.Contains(collapse(tree).Error(), "\n") {
		t.Fatal("more than one line")
	}
	// A store read error goka raised by panicking in the callback, in an
	// errors.Join: the error's text, without goka's stack trace.
	read := fmt.Errorf("panic in callback: error reading value: get \"k\" from D: pebble: checksum mismatch\n(*Context).loadPrev\n\tcontext.go:139")
	panicked := errors.Join(multierror.Append(nil, fmt.Errorf("error consuming from group consumer: %w",
		multierror.Append(nil, fmt.Errorf("error processing message (partition=1): %w", read)))), nil)
	if got, want := collapse(panicked).Error(), `error reading value: get "k" from D: pebble: checksum mismatch (partition 1)`; got != want {
		t.Fatalf("a callback's panic:\n got %q\nwant %q", got, want)
	}
}
