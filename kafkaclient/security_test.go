package kafkaclient

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// tlsBroker listens with TLS (httptest's self-signed certificate) and
// reads until the peer's bytes are not TLS, as a TLS listener of Kafka does.
func tlsBroker(t *testing.T) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	srv.StartTLS()
	cfg := srv.TLS.Clone()
	srv.Close()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 512)
				for {
					if _, err := c.Read(buf); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// silentListener accepts connections and never answers.
func silentListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	return ln.Addr().String()
}

// wantSentence checks that err is a UserError that starts with want and
// keeps a cause.
func wantSentence(t *testing.T, what string, err error, want string) {
	t.Helper()
	var ue *UserError
	if !errors.As(err, &ue) {
		t.Fatalf("%s: error %v is not a UserError", what, err)
	}
	if !strings.HasPrefix(ue.Msg, want) {
		t.Fatalf("%s: message %q, want it to start with %q", what, ue.Msg, want)
	}
	if ue.Err == nil || !strings.Contains(err.Error(), ue.Err.Error()) {
		t.Fatalf("%s: the original error is not kept: %v", what, err)
	}
}

func TestNoTLSAgainstATLSListener(t *testing.T) {
	addr := tlsBroker(t)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	for name, cfg := range map[string]Config{
		"plaintext": {Brokers: []string{addr}, DialTimeout: time.Second},
		// Used to say that the credentials were probably wrong.
		"SASL": {Brokers: []string{addr}, DialTimeout: time.Second, SASL: SASL{Mechanism: "PLAIN", User: "u", Password: "p"}},
	} {
		_, err := cfg.Sarama(ctx)
		wantSentence(t, name, err, "the broker at "+addr+" seems to expect TLS: add --tls")
	}
}

func TestNoSASLAgainstASASLListener(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(), kfake.Superuser("PLAIN", "weft", "right"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	addr := c.ListenAddrs()[0]
	want := "the broker at " + addr + " closed the connection: if it requires SASL, set --sasl-mechanism, --sasl-user and --sasl-password"
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	cfg := Config{Brokers: c.ListenAddrs(), DialTimeout: time.Second}

	// The broker answers ApiVersions before authentication, so version
	// detection passes; the next request is what fails.
	sc, err := cfg.Sarama(ctx)
	if err != nil {
		t.Fatalf("version detection: %v", err)
	}
	sc.Metadata.Retry.Max = 0
	_, err = sarama.NewClient(c.ListenAddrs(), sc)
	if err == nil {
		t.Fatal("sarama client without SASL connected to a SASL listener")
	}
	wantSentence(t, "sarama", cfg.Explain(err), want)

	opts, err := cfg.FranzOptions()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	_, err = kadm.NewClient(cl).ListEndOffsets(ctx, "events")
	if err == nil {
		t.Fatal("franz-go client without SASL listed offsets of a SASL listener")
	}
	wantSentence(t, "franz-go", cfg.Explain(err), want)
}

func TestTLSAgainstAPlaintextListener(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()

	// A listener that never answers: the handshake times out.
	silent := silentListener(t)
	start := time.Now()
	_, err := Config{Brokers: []string{silent}, DialTimeout: time.Second, TLS: true}.Sarama(ctx)
	wantSentence(t, "silent", err, "the broker at "+silent+" did not answer the TLS handshake, so it probably does not speak TLS: drop --tls")
	if took := time.Since(start); took > 8*time.Second {
		t.Errorf("the silent listener's error took %s, want a few seconds", took)
	}

	// A plaintext Kafka listener: it answers without TLS.
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	addr := c.ListenAddrs()[0]
	_, err = Config{Brokers: []string{addr}, DialTimeout: time.Second, TLS: true}.Sarama(ctx)
	wantSentence(t, "plaintext Kafka", err, "the broker at "+addr+" does not speak TLS: drop --tls")
}

// An EOF from a plaintext broker that needs no SASL (a restart, say) is
// not blamed on TLS or SASL.
func TestEOFFromAnOpenBrokerIsNotBlamedOnSecurity(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cause := fmt.Errorf("fetch: %w", io.EOF)
	got := Config{Brokers: c.ListenAddrs(), DialTimeout: time.Second}.Explain(cause)
	if got != cause {
		t.Fatalf("Explain(%v) = %v, want the error unchanged", cause, got)
	}
}
