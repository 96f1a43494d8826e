package processors

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/weftstream/weft/kafkaclient"
)

func TestTransient(t *testing.T) {
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	produceEOF := &sarama.ProducerError{Msg: &sarama.ProducerMessage{Topic: "t-table"}, Err: io.EOF}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain", errors.New("boom"), false},
		{"canceled", context.Canceled, false},
		{"produce EOF", fmt.Errorf("could not commit message with key 'k': %w", produceEOF), true},
		{"out of brokers", fmt.Errorf("connect: %w", sarama.ErrOutOfBrokers), true},
		{"refused dial", dial, true},
		{"explained", &kafkaclient.UserError{Msg: "cannot reach Kafka at x", Err: dial}, true},
		{"not leader", fmt.Errorf("Error getting oldest offset: %w", sarama.ErrNotLeaderForPartition), true},
		{"unknown topic", sarama.ErrUnknownTopicOrPartition, true},
		{"coordinator moving", sarama.ErrNotCoordinatorForConsumer, true},
		{"i/o timeout", &net.OpError{Op: "read", Net: "tcp", Err: timeoutErr{}}, true},
		{"request deadline", fmt.Errorf("metadata: %w", context.DeadlineExceeded), true},
		// goka formats some causes with %v: the chain is gone, the text stays.
		{"flattened EOF", errors.New("error creating view: kafka: Failed to produce message to topic x: EOF"), true},
		{"flattened not leader", fmt.Errorf("setup: %v", sarama.ErrNotLeaderForPartition), true},
		{"flattened out of brokers", fmt.Errorf("Error creating consumer: %v", sarama.ErrOutOfBrokers), true},
		// Errors a user caused win over any transient cause beside them.
		{"rejection", fmt.Errorf("bad record t/0@1: %w", &Rejection{Reason: "decode"}), false},
		{"stop on a bad record", errors.New("error processing message (partition=0): panic in callback: bad record t/0@1 (the topology says on_error: stop): EOF"), false},
		{"codec mismatch", errors.New("error decoding value: strconv.ParseInt: invalid syntax"), false},
		{"credentials", fmt.Errorf("connect: %w", sarama.ErrSASLAuthenticationFailed), false},
		{"configuration", sarama.ConfigurationError("Net.ReadTimeout must be > 0"), false},
		{"state dir", fmt.Errorf("state directory d is in use by another process (is another weft running with the same state directory?): %w", syscall.EAGAIN), false},
		{"fatal joined with transient", errors.Join(io.EOF, errors.New("panic in callback: x")), false},
		{"transient joined with unknown", errors.Join(errors.New("error closing producer"), produceEOF), true},
	} {
		if got := transient(tc.err); got != tc.want {
			t.Errorf("%s: transient(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestUnreachable(t *testing.T) {
	if !unreachable(&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}) || !unreachable(sarama.ErrOutOfBrokers) {
		t.Error("refused dials and no brokers left are unreachable")
	}
	if unreachable(io.EOF) || unreachable(sarama.ErrNotLeaderForPartition) {
		t.Error("a reset connection and a moving leader are not unreachable")
	}
}

func TestBackoff(t *testing.T) {
	b := newBackoff(reconnectConfig{min: 100 * time.Millisecond, max: 700 * time.Millisecond})
	steps := []time.Duration{100, 200, 400, 700, 700, 700}
	for i, step := range steps {
		step *= time.Millisecond
		d := b.wait()
		lo, hi := step*8/10, min(step*12/10, 700*time.Millisecond)
		if d < lo || d > hi {
			t.Errorf("wait %d = %s, want within [%s, %s]", i, d, lo, hi)
		}
	}
	b.reset()
	if d := b.wait(); d > 120*time.Millisecond {
		t.Errorf("after reset: wait %s, want about 100ms", d)
	}
	def := newBackoff(reconnectConfig{}).cfg
	if def.min != DefaultReconnectMin || def.max != DefaultReconnectMax {
		t.Errorf("defaults %s..%s", def.min, def.max)
	}
}

func TestSetupRetry(t *testing.T) {
	newRetry := func(giveUp time.Duration) *setupRetry {
		cfg := reconnectConfig{giveUpAfter: giveUp, min: 10 * time.Millisecond, max: 20 * time.Millisecond}
		return &setupRetry{cfg: cfg, backoff: newBackoff(cfg), log: func(string, ...any) {}}
	}
	calls := 0
	err := newRetry(0).do(t.Context(), "step", func() error {
		if calls++; calls < 3 {
			return sarama.ErrNotLeaderForPartition
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("transient twice, then success: err %v after %d calls, want nil after 3", err, calls)
	}

	for name, fail := range map[string]error{
		"user error":  errors.New("topic name is invalid"),
		"unreachable": &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED},
	} {
		calls = 0
		err = newRetry(0).do(t.Context(), "step", func() error { calls++; return fail })
		if !errors.Is(err, fail) || calls != 1 {
			t.Errorf("%s: err %v after %d calls, want it at once", name, err, calls)
		}
	}

	start := time.Now()
	err = newRetry(100*time.Millisecond).do(t.Context(), "step", func() error { return sarama.ErrLeaderNotAvailable })
	if !errors.Is(err, sarama.ErrLeaderNotAvailable) || !strings.Contains(err.Error(), "gave up after 100ms") {
		t.Fatalf("give-up: %v", err)
	}
	if took := time.Since(start); took < 100*time.Millisecond || took > 2*time.Second {
		t.Fatalf("gave up after %s, want about 100ms", took)
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err = newRetry(0).do(ctx, "step", func() error { return sarama.ErrLeaderNotAvailable })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

func TestSummarize(t *testing.T) {
	err := errors.New(`error consuming from group consumer: 2 errors occurred:
	* error processing message (partition=0): asynchronous error from callback: could not commit message with key 'k19': 1 error occurred:
	* kafka: Failed to produce message to topic t-table: EOF

	* error closing producer`)
	if got, want := summarize(err), "kafka: Failed to produce message to topic t-table: EOF"; got != want {
		t.Errorf("summarize = %q, want %q", got, want)
	}
	if got := summarize(errors.New("boom\nmore")); got != "boom" {
		t.Errorf("summarize without a transient line = %q, want the first line", got)
	}
}
