package main

import (
	"fmt"
	"log/slog"
	"net"

	"github.com/IBM/sarama"
	"github.com/weftstream/weft/kafkaclient"
)

// validate checks the global flags before a command does anything (starts
// the embedded broker, connects, restores a table): a mistake is one
// sentence that names the flag, and a usage error (exit code 2).
func (g *globalFlags) validate() error {
	bad := func(format string, args ...any) error { return &usageError{fmt.Errorf(format, args...)} }
	for _, b := range g.brokers {
		if _, _, err := net.SplitHostPort(b); err != nil {
			return bad("--brokers %q: give host:port, e.g. localhost:9092", b)
		}
	}
	if _, _, err := net.SplitHostPort(g.embeddedAddr); err != nil {
		return bad("--embedded-addr %q: give host:port, e.g. 127.0.0.1:9092", g.embeddedAddr)
	}
	switch kafkaclient.StartOffset(g.startOffset) {
	case kafkaclient.StartEarliest, kafkaclient.StartLatest:
	default:
		return bad("--start-offset %q: use earliest or latest", g.startOffset)
	}
	if g.kafkaVersion != "" {
		v, err := sarama.ParseKafkaVersion(g.kafkaVersion)
		if err != nil {
			return bad("--kafka-version %q: give a Kafka release such as 3.7.0, or leave it empty to ask the brokers", g.kafkaVersion)
		}
		if !sarama.MaxVersion.IsAtLeast(v) {
			return bad("--kafka-version %s: the newest protocol version weft speaks is %s; leave it empty to ask the brokers", g.kafkaVersion, sarama.MaxVersion)
		}
	}
	if g.partitions < 1 {
		return bad("--partitions %d: give at least 1", g.partitions)
	}
	if g.replication == 0 || g.replication < -1 {
		return bad("--replication-factor %d: give at least 1, or -1 for the brokers' default", g.replication)
	}
	if !kafkaclient.SupportedSASLMechanism(g.saslMechanism) {
		return bad("--sasl-mechanism %q: use %s", g.saslMechanism, kafkaclient.SASLMechanisms)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(g.logLevel)); err != nil {
		return bad("--log-level %q: use debug, info, warn or error", g.logLevel)
	}
	if g.logFormat != "text" && g.logFormat != "json" {
		return bad("--log-format %q: use text or json", g.logFormat)
	}
	return nil
}
