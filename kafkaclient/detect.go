package kafkaclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/IBM/sarama"
)

// fetchVersions maps the newest Fetch request version a broker supports to
// the Kafka release that introduced it, newest first. sarama picks its
// request versions from the release it is told to speak.
var fetchVersions = []struct {
	fetch   int16
	release sarama.KafkaVersion
}{
	{16, sarama.V3_7_0_0},
	{15, sarama.V3_5_0_0},
	{13, sarama.V3_1_0_0},
	{12, sarama.V2_7_0_0},
	{11, sarama.V2_3_0_0},
	{10, sarama.V2_1_0_0},
}

// apiKeyFetch is the Kafka protocol's API key of Fetch requests.
const apiKeyFetch = 1

// DetectVersion asks the first broker that answers which request versions
// it supports and returns the newest Kafka release sarama should speak to
// it. Brokers older than 2.1 are refused.
func DetectVersion(ctx context.Context, brokers []string, sc *sarama.Config) (sarama.KafkaVersion, error) {
	probe := *sc
	probe.Version = sarama.V2_1_0_0 // oldest release whose ApiVersions every live broker answers
	var errs []error
	for _, addr := range brokers {
		if err := ctx.Err(); err != nil {
			return sarama.KafkaVersion{}, err
		}
		v, err := detectOneCtx(ctx, addr, &probe)
		if err == nil {
			return v, nil
		}
		if ctx.Err() != nil {
			return sarama.KafkaVersion{}, err
		}
		errs = append(errs, err)
	}
	return sarama.KafkaVersion{}, errors.Join(errs...)
}

// detectOneCtx is detectOne that returns as soon as ctx ends (Ctrl-C),
// even while a broker that accepted the connection does not answer:
// sarama's requests take no context, so the attempt is left to time out
// on its own.
func detectOneCtx(ctx context.Context, addr string, sc *sarama.Config) (sarama.KafkaVersion, error) {
	type result struct {
		v   sarama.KafkaVersion
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := detectOne(ctx, addr, sc)
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		return sarama.KafkaVersion{}, fmt.Errorf("connect to %s: %w", addr, ctx.Err())
	}
}

func detectOne(ctx context.Context, addr string, sc *sarama.Config) (sarama.KafkaVersion, error) {
	if sc.Net.TLS.Enable {
		// sarama's handshake waits for its read timeout (30s) when the
		// broker does not speak TLS.
		if err := handshakeTLS(addr, sc.Net.TLS.Config, sc.Net.DialTimeout); err != nil {
			return sarama.KafkaVersion{}, err
		}
	} else {
		d := net.Dialer{Timeout: sc.Net.DialTimeout}
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return sarama.KafkaVersion{}, fmt.Errorf("connect to %s: %w", addr, err)
		}
		_ = conn.Close()
	}

	b := sarama.NewBroker(addr)
	if err := b.Open(sc); err != nil {
		return sarama.KafkaVersion{}, fmt.Errorf("open connection to %s: %w", addr, err)
	}
	defer b.Close()
	// Open connects (and authenticates) in the background; Connected waits
	// for it and reports its error, e.g. rejected SASL credentials.
	if ok, err := b.Connected(); !ok {
		if err == nil {
			err = errors.New("connection closed")
		}
		return sarama.KafkaVersion{}, fmt.Errorf("connect to %s: %w", addr, err)
	}
	resp, err := b.ApiVersions(&sarama.ApiVersionsRequest{Version: 0})
	if err != nil {
		return sarama.KafkaVersion{}, fmt.Errorf("ask %s for its API versions: %w", addr, err)
	}
	if resp.ErrorCode != 0 {
		return sarama.KafkaVersion{}, fmt.Errorf("ask %s for its API versions: %w", addr, sarama.KError(resp.ErrorCode))
	}
	for _, k := range resp.ApiKeys {
		if k.ApiKey != apiKeyFetch {
			continue
		}
		for _, fv := range fetchVersions {
			if k.MaxVersion >= fv.fetch {
				return fv.release, nil
			}
		}
		return sarama.KafkaVersion{}, fmt.Errorf("broker %s is older than Kafka 2.1 (Fetch v%d); weft needs 2.1 or newer", addr, k.MaxVersion)
	}
	return sarama.KafkaVersion{}, fmt.Errorf("broker %s did not list the Fetch API", addr)
}

// Explain turns a client error a user can cause into a sentence that says
// what to check, keeping the original error wrapped. Other errors are
// returned unchanged.
func (c Config) Explain(err error) error {
	if err == nil {
		return nil
	}
	var explained *UserError
	if errors.As(err, &explained) {
		return err
	}
	brokers := strings.Join(c.Brokers, ",")
	var kerr sarama.KError
	if errors.Is(err, sarama.ErrSASLAuthenticationFailed) ||
		errors.As(err, &kerr) && kerr == sarama.ErrSASLAuthenticationFailed ||
		strings.Contains(err.Error(), "SASL Authentication failed") {
		return &UserError{Msg: fmt.Sprintf("Kafka at %s rejected the credentials of user %q (SASL %s): check --sasl-user and --sasl-password", brokers, c.SASL.User, c.SASL.Mechanism), Err: err}
	}
	// A listener that wants TLS or SASL, or does not speak TLS, closes
	// the connection or does not answer: say which setting to change.
	if msg := c.explainSecurity(err); msg != "" {
		return &UserError{Msg: msg, Err: err}
	}
	switch {
	case c.SASL.Mechanism != "" && errors.Is(err, io.EOF):
		return &UserError{Msg: fmt.Sprintf("Kafka at %s closed the connection while authenticating user %q (SASL %s): the credentials are probably wrong, or the mechanism is not enabled; check --sasl-user and --sasl-password", brokers, c.SASL.User, c.SASL.Mechanism), Err: err}
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, sarama.ErrOutOfBrokers), isDialError(err):
		msg := fmt.Sprintf("cannot reach Kafka at %s: is the broker running and the address right?", brokers)
		if c.UnreachableHint != "" {
			msg += " " + c.UnreachableHint
		}
		return &UserError{Msg: msg, Err: err}
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		return &UserError{Msg: fmt.Sprintf("Kafka at %s did not answer in time: check the address, firewalls and TLS settings", brokers), Err: err}
	}
	return err
}

func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// UserError is an error caused by the user's setup, with a message that
// says what to do. Its Error is the message followed by the cause.
type UserError struct {
	Msg string
	Err error
}

func (e *UserError) Error() string { return e.Msg + " (" + e.Err.Error() + ")" }

// Unwrap returns the cause.
func (e *UserError) Unwrap() error { return e.Err }
