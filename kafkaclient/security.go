package kafkaclient

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"
)

// probeTimeout bounds each probe explainSecurity makes.
const probeTimeout = time.Second

// tlsHandshakeError is a TLS handshake that failed while detecting the
// brokers' version (--tls).
type tlsHandshakeError struct {
	addr string
	err  error
}

func (e *tlsHandshakeError) Error() string {
	return fmt.Sprintf("TLS handshake with %s: %v", e.addr, e.err)
}

func (e *tlsHandshakeError) Unwrap() error { return e.err }

// handshakeTLS checks that addr completes a TLS handshake within timeout,
// so that --tls against a plaintext broker fails at once instead of after
// the client's read timeout.
func handshakeTLS(addr string, cfg *tls.Config, timeout time.Duration) error {
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", addr, err)
	}
	defer conn.Close()
	if cfg == nil {
		cfg = &tls.Config{MinVersion: tls.VersionTLS12}
	} else {
		cfg = cfg.Clone()
	}
	if cfg.ServerName == "" && !cfg.InsecureSkipVerify {
		host, _, _ := net.SplitHostPort(addr)
		cfg.ServerName = host
	}
	_ = conn.SetDeadline(time.Now().Add(timeout))
	if err := tls.Client(conn, cfg).Handshake(); err != nil {
		return &tlsHandshakeError{addr: addr, err: err}
	}
	return nil
}

// tlsAnswer is what a broker made of a TLS handshake.
type tlsAnswer int

const (
	tlsSpoken   tlsAnswer = iota // it completed the handshake or answered with a TLS alert
	tlsRefused                   // it answered with something else, or closed the connection
	tlsNoAnswer                  // it did not answer in time
	tlsUnknown                   // it could not be reached
)

// probeTLS tries a TLS handshake with addr, without verifying the
// certificate: only whether the broker speaks TLS matters.
func probeTLS(addr string) tlsAnswer {
	err := handshakeTLS(addr, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}, probeTimeout) //nolint:gosec // a probe: nothing is sent
	var alert tls.AlertError
	var rec tls.RecordHeaderError
	var hs *tlsHandshakeError
	switch {
	case err == nil, errors.As(err, &alert):
		return tlsSpoken
	case !errors.As(err, &hs):
		return tlsUnknown
	case isTimeout(err):
		return tlsNoAnswer
	case errors.As(err, &rec), errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
		return tlsRefused
	}
	return tlsUnknown
}

// closedEarly reports errors of a broker that closed the connection, or
// answered with bytes that are not a Kafka response (a TLS alert, say),
// right after the client connected.
func closedEarly(err error) bool {
	var first *kgo.ErrFirstReadEOF
	var pde sarama.PacketDecodingError
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.As(err, &first) || errors.As(err, &pde) || strings.Contains(err.Error(), "malformed")
}

// explainSecurity is the sentence for errors that come from a TLS or SASL
// setting that does not match the broker's listener, or "" for others.
func (c Config) explainSecurity(err error) string {
	if len(c.Brokers) == 0 || errors.Is(err, context.Canceled) {
		return ""
	}
	addr := c.Brokers[0]
	var hs *tlsHandshakeError
	var rec tls.RecordHeaderError
	if c.TLS {
		if errors.As(err, &hs) {
			addr = hs.addr
		}
		if !errors.As(err, &hs) && !errors.As(err, &rec) && !closedEarly(err) && !isTimeout(err) {
			return ""
		}
		switch probeTLS(addr) {
		case tlsRefused:
			return fmt.Sprintf("the broker at %s does not speak TLS: drop --tls", addr)
		case tlsNoAnswer:
			if speaks, _ := c.probePlaintext(addr); speaks {
				return fmt.Sprintf("the broker at %s does not speak TLS: drop --tls", addr)
			}
			return fmt.Sprintf("the broker at %s did not answer the TLS handshake, so it probably does not speak TLS: drop --tls", addr)
		}
		return ""
	}
	if !closedEarly(err) {
		return ""
	}
	if speaks, wantsAuth := c.probePlaintext(addr); speaks {
		// It speaks Kafka without TLS: it answers the request allowed
		// before authentication, and closes the connection on the next.
		if wantsAuth && c.SASL.Mechanism == "" {
			return fmt.Sprintf("the broker at %s closed the connection: if it requires SASL, set --sasl-mechanism, --sasl-user and --sasl-password", addr)
		}
		return ""
	}
	if probeTLS(addr) == tlsSpoken {
		return fmt.Sprintf("the broker at %s seems to expect TLS: add --tls", addr)
	}
	return ""
}

// probePlaintext connects to addr without TLS and SASL: speaks reports
// whether it answers ApiVersions (a broker answers it before
// authentication), wantsAuth whether it then closes the connection on a
// Metadata request, as a listener that requires SASL does.
func (c Config) probePlaintext(addr string) (speaks, wantsAuth bool) {
	sc := sarama.NewConfig()
	sc.ClientID = c.WithDefaults().ClientID
	sc.Version = sarama.V2_1_0_0
	sc.Net.DialTimeout, sc.Net.ReadTimeout, sc.Net.WriteTimeout = probeTimeout, probeTimeout, probeTimeout
	b := sarama.NewBroker(addr)
	if err := b.Open(sc); err != nil {
		return false, false
	}
	defer b.Close()
	if ok, _ := b.Connected(); !ok {
		return false, false
	}
	if resp, err := b.ApiVersions(&sarama.ApiVersionsRequest{Version: 0}); err != nil || resp.ErrorCode != 0 {
		return false, false
	}
	_, err := b.GetMetadata(&sarama.MetadataRequest{Version: 1, Topics: []string{}})
	return true, err != nil && closedEarly(err)
}
