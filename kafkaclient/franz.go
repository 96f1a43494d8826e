package kafkaclient

import (
	"crypto/tls"
	"fmt"
	"net"
	"strings"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// FranzOptions returns franz-go client options for the same cluster,
// credentials and client id, for tools that read topics without a consumer
// group (weft consume). It validates the configuration first.
func (c Config) FranzOptions() ([]kgo.Opt, error) {
	c = c.WithDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.Brokers...),
		kgo.ClientID(c.ClientID),
	}
	dialer := &net.Dialer{Timeout: c.DialTimeout}
	if c.TLS {
		td := &tls.Dialer{NetDialer: dialer, Config: &tls.Config{MinVersion: tls.VersionTLS12}}
		opts = append(opts, kgo.Dialer(td.DialContext))
	} else {
		opts = append(opts, kgo.Dialer(dialer.DialContext))
	}
	auth := scram.Auth{User: c.SASL.User, Pass: c.SASL.Password}
	switch strings.ToUpper(c.SASL.Mechanism) {
	case "":
	case sarama.SASLTypePlaintext:
		opts = append(opts, kgo.SASL(plain.Auth{User: c.SASL.User, Pass: c.SASL.Password}.AsMechanism()))
	case sarama.SASLTypeSCRAMSHA256:
		opts = append(opts, kgo.SASL(auth.AsSha256Mechanism()))
	case sarama.SASLTypeSCRAMSHA512:
		opts = append(opts, kgo.SASL(auth.AsSha512Mechanism()))
	default:
		return nil, fmt.Errorf("SASL mechanism %q is not supported", c.SASL.Mechanism)
	}
	return opts, nil
}
