package processors

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
)

// Default backoff of a processor that lost the Kafka cluster (see
// WithReconnectBackoff).
const (
	DefaultReconnectMin = time.Second
	DefaultReconnectMax = 30 * time.Second
)

// reconnectConfig says how a processor rides out a lost cluster.
type reconnectConfig struct {
	giveUpAfter time.Duration // 0: never
	min, max    time.Duration
}

func (r reconnectConfig) withDefaults() reconnectConfig {
	if r.min <= 0 {
		r.min = DefaultReconnectMin
	}
	if r.max <= 0 {
		r.max = DefaultReconnectMax
	}
	if r.max < r.min {
		r.max = r.min
	}
	return r
}

// WithGiveUpAfter makes a processor that lost the Kafka cluster (brokers
// gone, connections failing, leaders moving) stop with an error once it has
// been without the cluster for d, for a supervisor to restart it. The
// default, 0, retries until the cluster is back or the processor's context
// ends.
func WithGiveUpAfter(d time.Duration) Option {
	return option(optGiveUpAfter, func(c *config) { c.reconnect.giveUpAfter = d })
}

// WithReconnectBackoff sets the waits between attempts to reconnect after
// the cluster was lost: from min, doubling up to max, each with up to 20%
// jitter (defaults DefaultReconnectMin and DefaultReconnectMax).
func WithReconnectBackoff(min, max time.Duration) Option {
	return option(optReconnectBackoff, func(c *config) { c.reconnect.min, c.reconnect.max = min, max })
}

// backoff yields the exponential waits between reconnection attempts.
type backoff struct {
	cfg  reconnectConfig
	next time.Duration
}

func newBackoff(cfg reconnectConfig) *backoff {
	cfg = cfg.withDefaults()
	return &backoff{cfg: cfg, next: cfg.min}
}

// wait returns the next wait: the current step with up to 20% jitter
// either way, never above the maximum; the step doubles.
func (b *backoff) wait() time.Duration {
	d := b.next
	b.next = min(2*b.next, b.cfg.max)
	jitter := time.Duration((rand.Float64()*0.4 - 0.2) * float64(d))
	return min(d+jitter, b.cfg.max)
}

// reset starts over from the minimum wait.
func (b *backoff) reset() { b.next = b.cfg.min }

// sleep waits d or until ctx ends; it reports whether the wait completed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// retriableKErrors are the Kafka error codes that say the cluster is busy
// or its metadata is moving (leaders, coordinators, a topic just created),
// not that the request is wrong: the Java client's RetriableException set,
// plus the group errors a consumer recovers from by joining again.
var retriableKErrors = []sarama.KError{
	sarama.ErrUnknownTopicOrPartition,
	sarama.ErrLeaderNotAvailable,
	sarama.ErrNotLeaderForPartition,
	sarama.ErrRequestTimedOut,
	sarama.ErrBrokerNotAvailable,
	sarama.ErrReplicaNotAvailable,
	sarama.ErrNetworkException,
	sarama.ErrOffsetsLoadInProgress,
	sarama.ErrConsumerCoordinatorNotAvailable,
	sarama.ErrNotCoordinatorForConsumer,
	sarama.ErrNotEnoughReplicas,
	sarama.ErrNotEnoughReplicasAfterAppend,
	sarama.ErrRebalanceInProgress,
	sarama.ErrUnknownMemberId,
	sarama.ErrIllegalGeneration,
	sarama.ErrNotController,
	sarama.ErrKafkaStorageError,
	sarama.ErrFencedLeaderEpoch,
	sarama.ErrUnknownLeaderEpoch,
	sarama.ErrOffsetNotAvailable,
	sarama.ErrPreferredLeaderNotAvailable,
}

// connectivityErrors are the sentinel errors of a lost connection or a
// client that found no broker to talk to.
var connectivityErrors = []error{
	io.EOF,
	io.ErrUnexpectedEOF,
	sarama.ErrOutOfBrokers,
	sarama.ErrNotConnected,
	sarama.ErrClosedClient,
	sarama.ErrShuttingDown,
	sarama.ErrControllerNotAvailable,
	sarama.ErrIncompleteResponse,
	syscall.ECONNREFUSED,
	syscall.ECONNRESET,
	syscall.ECONNABORTED,
	syscall.EPIPE,
	syscall.ETIMEDOUT,
	syscall.EHOSTUNREACH,
	syscall.ENETUNREACH,
	net.ErrClosed,
}

// fatalTexts mark errors no retry can cure; they win over any transient
// cause joined with them. goka formats some errors with %v, so these (and
// the transient texts) are also matched in the message.
var fatalTexts = []string{
	"panic in callback",          // a handler panicked, or Fail was called (bad record with on_error: stop)
	"SASL Authentication failed", // rejected credentials
	"x509:", "tls:",              // TLS setup
	"error decoding", "error encoding", // codec mismatch
	"in use by another process", "lock held", // state dir of another process
}

// transientTexts are the messages of transient errors whose chain goka
// dropped (formatted with %v).
var transientTexts = func() []string {
	out := []string{
		"EOF",
		"connection refused",
		"connection reset",
		"broken pipe",
		"i/o timeout",
		"no route to host",
		"network is unreachable",
		"use of closed network connection",
	}
	for _, err := range connectivityErrors {
		if _, ok := err.(syscall.Errno); !ok {
			out = append(out, err.Error())
		}
	}
	for _, k := range retriableKErrors {
		out = append(out, k.Error())
	}
	return out
}()

// transient reports whether err says the processor lost the Kafka cluster
// or met its metadata moving (a broker gone, a connection reset or timed
// out, a leader or coordinator moving, a topic not yet known everywhere),
// which a new processor on the same state rides out once the cluster
// answers again, as opposed to errors a user caused (a bad record with
// on_error: stop, a codec mismatch, rejected credentials, a state dir in
// use), which retrying cannot cure. Whether the caller's context ended is
// for the caller to check.
func transient(err error) bool {
	if err == nil {
		return false
	}
	var rej *Rejection
	if errors.As(err, &rej) || errors.Is(err, sarama.ErrSASLAuthenticationFailed) {
		return false
	}
	var cfgErr sarama.ConfigurationError
	if errors.As(err, &cfgErr) {
		return false
	}
	msg := err.Error()
	for _, s := range fatalTexts {
		if strings.Contains(msg, s) {
			return false
		}
	}
	for _, e := range connectivityErrors {
		if errors.Is(err, e) {
			return true
		}
	}
	for _, k := range retriableKErrors {
		if errors.Is(err, k) {
			return true
		}
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true // a request's own deadline, the caller's ctx is checked apart
	}
	for _, s := range transientTexts {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// unreachable reports whether err says that no broker could be reached at
// all (refused or failed dials, no broker left to ask): at setup, before
// the processor ever had the cluster, that is a wrong address or a broker
// that is not running, which the user should hear about at once.
func unreachable(err error) bool {
	var op *net.OpError
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, sarama.ErrOutOfBrokers) ||
		(errors.As(err, &op) && op.Op == "dial")
}

// do runs fn until it succeeds, fails with an error that is not
// transient (or says the cluster is unreachable), ctx ends or the give-up
// limit passes. what names the step in the logs.
func (p *setupRetry) do(ctx context.Context, what string, fn func() error) error {
	for {
		err := fn()
		if err == nil || !transient(err) || unreachable(err) {
			return err
		}
		if p.start.IsZero() {
			p.start = time.Now()
		}
		if g := p.cfg.giveUpAfter; g > 0 && time.Since(p.start) >= g {
			return fmt.Errorf("gave up after %s of transient errors: %w", g, err)
		}
		d := p.backoff.wait()
		p.log("Kafka is not ready for the processor yet; retrying", "step", what, "retry_in", d.Round(time.Millisecond), "error", summarize(err))
		if !sleep(ctx, d) {
			return errors.Join(ctx.Err(), err)
		}
	}
}

// setupRetry retries the setup steps of NewProcessor.
type setupRetry struct {
	cfg     reconnectConfig
	backoff *backoff
	start   time.Time
	log     func(msg string, args ...any)
}

// discard drops the values buffered since the coalescer's last flush once
// its processor has stopped: their input records were not committed, so
// the processor that replaces it consumes them again (and a record whose
// state write is already stored is re-run for its outputs, see Runtime).
// Their commits belong to the stopped processor and are dropped.
func (c *Coalescer) discard() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf, c.order = map[string]*coalesced{}, nil
}

// summarize returns the line of err (goka joins the errors of every
// partition, many lines) that names the transient cause, for a log line;
// the first line if none does.
func summarize(err error) string {
	first := ""
	for l := range strings.SplitSeq(err.Error(), "\n") {
		l = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "*"))
		if l == "" || strings.HasSuffix(l, "occurred:") {
			continue
		}
		if first == "" {
			first = l
		}
		for _, s := range transientTexts {
			if strings.Contains(l, s) {
				return l
			}
		}
	}
	return first
}

// waitRecovered polls until gp has recovered its partitions and is running
// (goka's Setup done), and reports whether it got there before it stopped
// or ctx ended. goka's WaitForReady waits on the partition processors it
// saw first, which a rebalance replaces, so it can wait forever.
func waitRecovered(ctx context.Context, gp *goka.Processor) bool {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		if gp.Recovered() {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-gp.Done():
			return false
		case <-t.C:
		}
	}
}
