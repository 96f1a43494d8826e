// Package kafkaclient builds the Kafka client configuration weft ships for
// goka and sarama, and turns client failures a user can cause into plain
// sentences.
//
// goka's defaults (protocol 2.0.0, acks=1, new consumer groups starting at
// the newest offset, one process-wide configuration) are not weft's: weft
// speaks the protocol version the brokers support (detected, so that Kafka
// 4, which removed old request versions, works), produces with acks=all and
// idempotence, starts new consumer groups at an explicit, documented offset
// (the earliest by default, so that a new read model is built from the whole
// history), and passes its configuration to every goka component explicitly.
package kafkaclient

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
)

// StartOffset says where a consumer group without committed offsets starts.
type StartOffset string

// Start offsets.
const (
	StartEarliest StartOffset = "earliest"
	StartLatest   StartOffset = "latest"
)

// Defaults of a Config: what an unset (zero) field means. The flags of
// the weft command default to these too.
const (
	// DefaultClientID is the client id of an unset ClientID.
	DefaultClientID = "weft"
	// DefaultStartOffset is where new consumer groups start: the
	// earliest offset, so that a new read model is built from the whole
	// history.
	DefaultStartOffset = StartEarliest
	// DefaultReplicationFactor (-1) leaves the replication factor of the
	// topics weft creates to the brokers' default.replication.factor.
	DefaultReplicationFactor = -1
	// DefaultPartitions is the partition count of the input topics weft
	// creates when they are missing.
	DefaultPartitions = 8
	// DefaultDialTimeout bounds each connection attempt.
	DefaultDialTimeout = 10 * time.Second
)

// Config describes how weft connects to Kafka. Its zero fields take the
// defaults above, applied in one place (WithDefaults) by every method.
type Config struct {
	// Brokers is the bootstrap broker list (host:port).
	Brokers []string
	// ClientID names the client in broker logs and quotas; default
	// DefaultClientID.
	ClientID string
	// Version is the Kafka protocol version to speak, e.g. "3.7.0". Empty
	// means: ask the brokers (ApiVersions) and pick the newest release
	// whose requests they all support.
	Version string
	// StartOffset is where new consumer groups start; default
	// DefaultStartOffset.
	StartOffset StartOffset
	// ReplicationFactor of the topics weft creates (tables, loopbacks,
	// inputs); -1 (DefaultReplicationFactor) or 0 uses the brokers'
	// default.replication.factor.
	ReplicationFactor int
	// Partitions of input topics weft creates when they are missing;
	// default DefaultPartitions.
	Partitions int
	// TLS enables TLS with the system's root certificates.
	TLS bool
	// SASL credentials; Mechanism is empty (no SASL), PLAIN,
	// SCRAM-SHA-256 or SCRAM-SHA-512. The password is never logged.
	SASL SASL
	// MaxMessageBytes is the largest record the producer sends; 0 keeps
	// sarama's default, 1 MiB (1048576).
	MaxMessageBytes int
	// DialTimeout bounds each connection attempt; default
	// DefaultDialTimeout.
	DialTimeout time.Duration
	// Logger, if set, gets a line when the brokers take more than a
	// second to answer the first request ("connecting to Kafka").
	Logger *slog.Logger
	// UnreachableHint is added to the error when no broker answers, e.g.
	// "start one with 'weft broker'".
	UnreachableHint string
	// GroupUserData is sent as the user data of this client's consumer
	// group subscriptions (JoinGroup member metadata), where the other
	// members and admin tools read it (DescribeGroups): weft run puts the
	// address of its query API there (serve.AdvertiseUserData).
	GroupUserData []byte
}

// SASL holds SASL credentials: the flags --sasl-mechanism, --sasl-user
// and --sasl-password, and the sasl key of a topology file. Mechanism is
// empty (no SASL) or one of SASLMechanisms, in any case. Its String and
// GoString never show the password, so that %v, %+v and %#v of a Config
// or of a topology file can be logged.
type SASL struct {
	Mechanism string
	User      string
	Password  string
}

// SASLMechanisms names the SASL mechanisms weft supports, as error
// messages list them.
const SASLMechanisms = "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"

// SupportedSASLMechanism reports whether m (in any case) is empty, meaning
// no SASL, or a mechanism weft supports.
func SupportedSASLMechanism(m string) bool {
	switch strings.ToUpper(m) {
	case "", sarama.SASLTypePlaintext, sarama.SASLTypeSCRAMSHA256, sarama.SASLTypeSCRAMSHA512:
		return true
	}
	return false
}

// String hides the password.
func (s SASL) String() string {
	if s.Mechanism == "" {
		return "none"
	}
	return fmt.Sprintf("%s user=%s password=***", s.Mechanism, s.User)
}

// GoString hides the password.
func (s SASL) GoString() string { return "kafkaclient.SASL{" + s.String() + "}" }

// WithDefaults returns c with every unset field set to its default (the
// Default constants), like Pebble's EnsureDefaults. Every method of Config
// applies it, so callers need it only to read the settings in effect.
func (c Config) WithDefaults() Config {
	if c.ClientID == "" {
		c.ClientID = DefaultClientID
	}
	if c.StartOffset == "" {
		c.StartOffset = DefaultStartOffset
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.ReplicationFactor == 0 {
		c.ReplicationFactor = DefaultReplicationFactor
	}
	if c.Partitions <= 0 {
		c.Partitions = DefaultPartitions
	}
	return c
}

// Validate reports settings that cannot work.
func (c Config) Validate() error {
	if len(c.Brokers) == 0 {
		return errors.New("no Kafka brokers configured")
	}
	for _, b := range c.Brokers {
		if _, _, err := net.SplitHostPort(b); err != nil {
			return fmt.Errorf("broker address %q is not host:port", b)
		}
	}
	switch c.StartOffset {
	case "", StartEarliest, StartLatest:
	default:
		return fmt.Errorf("start offset %q is neither %q nor %q", c.StartOffset, StartEarliest, StartLatest)
	}
	if !SupportedSASLMechanism(c.SASL.Mechanism) {
		return fmt.Errorf("SASL mechanism %q is not supported (use %s)", c.SASL.Mechanism, SASLMechanisms)
	}
	if c.Version != "" {
		if _, err := sarama.ParseKafkaVersion(c.Version); err != nil {
			return fmt.Errorf("Kafka version %q: %w", c.Version, err)
		}
	}
	return nil
}

// Sarama returns the sarama configuration weft uses, after checking that the
// brokers answer and detecting their protocol version when Version is
// empty. Errors are sentences meant for the user (see Explain).
func (c Config) Sarama(ctx context.Context) (*sarama.Config, error) {
	c = c.WithDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	sc := c.base()
	if c.Version != "" {
		v, _ := sarama.ParseKafkaVersion(c.Version)
		sc.Version = v
	} else {
		if c.Logger != nil {
			// Say what weft waits for when the brokers are slow to answer.
			t := time.AfterFunc(time.Second, func() {
				c.Logger.Info("connecting to Kafka", "brokers", strings.Join(c.Brokers, ","))
			})
			defer t.Stop()
		}
		v, err := DetectVersion(ctx, c.Brokers, sc)
		if err != nil {
			return nil, c.Explain(err)
		}
		sc.Version = v
	}
	if err := sc.Validate(); err != nil {
		return nil, fmt.Errorf("Kafka client configuration: %w", err)
	}
	return sc, nil
}

func (c Config) base() *sarama.Config {
	sc := sarama.NewConfig()
	sc.ClientID = c.ClientID
	sc.Net.DialTimeout = c.DialTimeout
	sc.Net.MaxOpenRequests = 1 // required by the idempotent producer
	sc.Metadata.Retry.Max = 5
	sc.Metadata.Retry.Backoff = 250 * time.Millisecond

	sc.Consumer.Return.Errors = true
	sc.Consumer.MaxProcessingTime = time.Second
	sc.Consumer.MaxWaitTime = 100 * time.Millisecond // a stop waits at most this for an outstanding fetch
	sc.Consumer.Offsets.Initial = sarama.OffsetOldest
	if c.StartOffset == StartLatest {
		sc.Consumer.Offsets.Initial = sarama.OffsetNewest
	}
	sc.Consumer.Offsets.AutoCommit.Interval = time.Second
	sc.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{goka.CopartitioningStrategy}
	// The group protocol's timeouts (see groupConfig for the read
	// timeout that goes with them): a member that stops heartbeating
	// (killed) is out of the group after SessionTimeout; a rebalance
	// waits up to RebalanceTimeout for the members to rejoin, and a
	// JoinGroup or SyncGroup request can take that long to be answered.
	sc.Consumer.Group.Session.Timeout = SessionTimeout
	sc.Consumer.Group.Heartbeat.Interval = HeartbeatInterval
	sc.Consumer.Group.Rebalance.Timeout = RebalanceTimeout
	sc.Consumer.Group.Member.UserData = c.GroupUserData

	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Idempotent = true
	sc.Producer.Retry.Max = 10
	sc.Producer.Retry.Backoff = 100 * time.Millisecond
	sc.Producer.Return.Successes = true
	sc.Producer.Return.Errors = true
	sc.Producer.Compression = sarama.CompressionSnappy
	sc.Producer.Flush.Frequency = 20 * time.Millisecond
	sc.Producer.Flush.Bytes = 256 << 10
	sc.Producer.Flush.MaxMessages = 0
	if c.MaxMessageBytes > 0 {
		sc.Producer.MaxMessageBytes = c.MaxMessageBytes
	}
	sc.ChannelBufferSize = 1024

	if c.TLS {
		sc.Net.TLS.Enable = true
		sc.Net.TLS.Config = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if m := strings.ToUpper(c.SASL.Mechanism); m != "" {
		sc.Net.SASL.Enable = true
		sc.Net.SASL.Mechanism = sarama.SASLMechanism(m)
		sc.Net.SASL.User = c.SASL.User
		sc.Net.SASL.Password = c.SASL.Password
		sc.Net.SASL.Handshake = true
		sc.Net.SASL.Version = sarama.SASLHandshakeV1 // SaslAuthenticate: failures come back as errors
		if m == sarama.SASLTypeSCRAMSHA256 {
			sc.Net.SASL.SCRAMClientGeneratorFunc = scramClient(sha256Generator)
		} else if m == sarama.SASLTypeSCRAMSHA512 {
			sc.Net.SASL.SCRAMClientGeneratorFunc = scramClient(sha512Generator)
		}
	}
	return sc
}

// TopicManagerConfig returns goka's topic manager settings for weft: the
// configured replication factor, and streams kept as long as the brokers'
// default retention says (goka's default deletes them after an hour).
func (c Config) TopicManagerConfig() *goka.TopicManagerConfig {
	c = c.WithDefaults()
	tm := goka.NewTopicManagerConfig()
	tm.Table.Replication = c.ReplicationFactor
	tm.Stream.Replication = c.ReplicationFactor
	tm.Stream.Retention = 7 * 24 * time.Hour
	tm.MismatchBehavior = goka.TMConfigMismatchBehaviorWarn
	if c.ReplicationFactor <= 0 {
		// The brokers' default: goka would compare the topic's replication
		// with -1 and warn about every topic.
		tm.MismatchBehavior = goka.TMConfigMismatchBehaviorIgnore
	}
	tm.CreateTopicTimeout = 30 * time.Second
	return tm
}

// ProcessorOptions returns the goka options that make a processor use sc
// (instead of goka's global configuration) for every client it builds.
// Each client gets its own copy of sc: goka's builders set the client id
// and partitioner on the configuration they are given, which would race
// with clients already running on a shared one.
func (c Config) ProcessorOptions(sc *sarama.Config) []goka.ProcessorOption {
	return []goka.ProcessorOption{
		goka.WithClientID(sc.ClientID),
		goka.WithConsumerGroupBuilder(consumerGroupBuilder(sc)),
		goka.WithConsumerSaramaBuilder(consumerBuilder(sc)),
		goka.WithProducerBuilder(producerBuilder(sc)),
		goka.WithTopicManagerBuilder(c.topicManagerBuilder(sc)),
	}
}

// ViewOptions is ProcessorOptions for goka views.
func (c Config) ViewOptions(sc *sarama.Config) []goka.ViewOption {
	return []goka.ViewOption{
		goka.WithViewClientID(sc.ClientID),
		goka.WithViewConsumerSaramaBuilder(consumerBuilder(sc)),
		goka.WithViewTopicManagerBuilder(c.topicManagerBuilder(sc)),
	}
}

// EmitterOptions is ProcessorOptions for goka emitters.
func (c Config) EmitterOptions(sc *sarama.Config) []goka.EmitterOption {
	return []goka.EmitterOption{
		goka.WithEmitterClientID(sc.ClientID),
		goka.WithEmitterProducerBuilder(producerBuilder(sc)),
		goka.WithEmitterTopicManagerBuilder(c.topicManagerBuilder(sc)),
	}
}

func copyConfig(sc *sarama.Config, clientID string) *sarama.Config {
	cp := *sc
	if clientID != "" {
		cp.ClientID = clientID
	}
	return &cp
}

func producerBuilder(sc *sarama.Config) goka.ProducerBuilder {
	return func(brokers []string, clientID string, hasher func() hash.Hash32) (goka.Producer, error) {
		cp := copyConfig(sc, clientID)
		cp.Producer.Partitioner = sarama.NewCustomHashPartitioner(hasher)
		return goka.NewProducer(brokers, cp)
	}
}

// Group protocol timeouts of the consumer groups weft joins.
const (
	// SessionTimeout is how long the group coordinator waits for a
	// member's heartbeat before it drops the member (Kafka's
	// session.timeout.ms).
	SessionTimeout = 10 * time.Second
	// HeartbeatInterval is how often members heartbeat: a third of
	// SessionTimeout, as Kafka recommends.
	HeartbeatInterval = 3 * time.Second
	// RebalanceTimeout is how long a rebalance waits for the members to
	// rejoin (Kafka's max.poll.interval.ms, which the Java client sends
	// as the rebalance timeout): a member that is still finishing its
	// in-flight records (bounded by the producer's retries, a few
	// seconds) has that long. The coordinator waits for the largest
	// rebalance timeout of the group's members, so a member that died
	// while joining holds up the group, and a restarted weft joining it,
	// that long: 30 s rather than sarama's 60 s keeps that stall short.
	RebalanceTimeout = 30 * time.Second
	// groupRequestMargin is what the read timeout of the group client
	// adds to RebalanceTimeout, as the Java client does for JoinGroup
	// (rebalance timeout + 5 s).
	groupRequestMargin = 5 * time.Second
)

// GroupConfig returns the configuration of the client that joins a
// consumer group: sc with a read timeout longer than the rebalance timeout,
// since the coordinator answers JoinGroup (and SyncGroup) only when the
// rebalance completes, which it may delay by up to the rebalance timeout of
// the slowest member (e.g. one that died while joining). With sarama's
// default 30 s read timeout a member waiting on such a rebalance would give
// up with an i/o timeout. Other clients keep sc's read timeout, so that a
// broker that stops answering is noticed sooner.
func GroupConfig(sc *sarama.Config, clientID string) *sarama.Config {
	cp := copyConfig(sc, clientID)
	if min := cp.Consumer.Group.Rebalance.Timeout + groupRequestMargin; cp.Net.ReadTimeout < min {
		cp.Net.ReadTimeout = min
	}
	return cp
}

func consumerGroupBuilder(sc *sarama.Config) goka.ConsumerGroupBuilder {
	return func(brokers []string, group, clientID string) (sarama.ConsumerGroup, error) {
		return sarama.NewConsumerGroup(brokers, group, GroupConfig(sc, clientID))
	}
}

func consumerBuilder(sc *sarama.Config) goka.SaramaConsumerBuilder {
	return func(brokers []string, clientID string) (sarama.Consumer, error) {
		return sarama.NewConsumer(brokers, copyConfig(sc, clientID))
	}
}

// TopicManagerBuilder returns the builder of the goka topic managers that
// weft's processors, views and emitters use (ProcessorOptions): goka's,
// with the cluster's settings, configuration mismatches logged through
// slog, and topics that another instance created meanwhile taken as
// created.
func (c Config) TopicManagerBuilder(sc *sarama.Config) goka.TopicManagerBuilder {
	return c.WithDefaults().topicManagerBuilder(sc)
}

func (c Config) topicManagerBuilder(sc *sarama.Config) goka.TopicManagerBuilder {
	tm := c.TopicManagerConfig()
	if tm.MismatchBehavior == goka.TMConfigMismatchBehaviorWarn {
		// Warnings through slog (see mismatchWarner), not goka's logger.
		tm.MismatchBehavior = goka.TMConfigMismatchBehaviorFail
	}
	// Always wrapped: mismatchWarner also rides out a topic another
	// instance created meanwhile (see mismatchWarner.ensure).
	log := c.Logger
	if log == nil {
		log = slog.Default()
	}
	return func(brokers []string) (goka.TopicManager, error) {
		m, err := goka.NewTopicManager(brokers, copyConfig(sc, ""), tm)
		if err != nil {
			return nil, err
		}
		return mismatchWarner{TopicManager: m, log: log}, nil
	}
}

// EnsureTopic creates topic with the configured partitions and replication
// factor unless it exists, and returns its partition count.
func (c Config) EnsureTopic(sc *sarama.Config, topic string) (int, error) {
	c = c.WithDefaults()
	tm, err := c.topicManagerBuilder(sc)(c.Brokers)
	if err != nil {
		return 0, c.Explain(fmt.Errorf("connect topic manager: %w", err))
	}
	defer tm.Close()
	parts, err := tm.Partitions(topic)
	if err == nil && len(parts) > 0 {
		return len(parts), nil
	}
	if err := tm.EnsureTopicExists(topic, c.Partitions, c.ReplicationFactor, nil); err != nil {
		if createdMeanwhile(err) {
			// The metadata shows it once the controller has spread it.
			var n int
			if werr := awaitCreated(func() error {
				parts, perr := tm.Partitions(topic)
				if perr == nil && len(parts) == 0 {
					perr = errors.New("no partitions in metadata yet")
				}
				n = len(parts)
				return perr
			}); werr == nil {
				return n, nil
			}
		}
		return 0, c.Explain(fmt.Errorf("create topic %s: %w", topic, err))
	}
	return c.Partitions, nil
}

// awaitCreated retries check, for a topic another process created, until
// it succeeds or 15 s have passed; it returns check's last error.
func awaitCreated(check func() error) error {
	deadline := time.Now().Add(15 * time.Second)
	for wait := 50 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		err := check()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(wait)
	}
}

// createdMeanwhile reports whether err of a topic creation says that the
// topic exists: another process (an instance of the same application
// starting at the same time) created it between the check and the
// creation. goka's topic manager keeps only the text of sarama's error.
func createdMeanwhile(err error) bool {
	return errors.Is(err, sarama.ErrTopicAlreadyExists) || strings.Contains(err.Error(), sarama.ErrTopicAlreadyExists.Error())
}

// EnsureTable creates a table topic (compacted) with the configured
// partitions and replication factor unless it exists.
func (c Config) EnsureTable(sc *sarama.Config, topic string) error {
	c = c.WithDefaults()
	tm, err := c.topicManagerBuilder(sc)(c.Brokers)
	if err != nil {
		return c.Explain(fmt.Errorf("connect topic manager: %w", err))
	}
	defer tm.Close()
	err = tm.EnsureTableExists(topic, c.Partitions)
	if err != nil && createdMeanwhile(err) {
		// It exists: check its settings once the metadata shows it.
		err = awaitCreated(func() error { return tm.EnsureTableExists(topic, c.Partitions) })
	}
	if err != nil {
		return c.Explain(fmt.Errorf("create table topic %s: %w", topic, err))
	}
	return nil
}

// DefaultPartitions is the partition count of the topics weft creates
// (the Partitions setting, or its default).
func (c Config) DefaultPartitions() int { return c.WithDefaults().Partitions }

// PartitionCounts returns the partition count of each of topics that
// exists; missing topics are not in the map.
func (c Config) PartitionCounts(ctx context.Context, topics []string) (map[string]int, error) {
	c = c.WithDefaults()
	sc, err := c.Sarama(ctx)
	if err != nil {
		return nil, err
	}
	client, err := c.askingClient(sc)
	if err != nil {
		return nil, err
	}
	defer client.Close()
	// One metadata request for all topics: asking for missing topics one
	// by one would wait for retries.
	if err := client.RefreshMetadata(); err != nil {
		return nil, c.Explain(fmt.Errorf("read the cluster's topics: %w", err))
	}
	existing, err := client.Topics()
	if err != nil {
		return nil, c.Explain(fmt.Errorf("read the cluster's topics: %w", err))
	}
	exists := make(map[string]bool, len(existing))
	for _, topic := range existing {
		exists[topic] = true
	}
	out := make(map[string]int, len(topics))
	for _, topic := range topics {
		if !exists[topic] {
			continue
		}
		parts, err := client.Partitions(topic)
		if err != nil {
			return nil, c.Explain(fmt.Errorf("partitions of %s: %w", topic, err))
		}
		out[topic] = len(parts)
	}
	return out, nil
}
