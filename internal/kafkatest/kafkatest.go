// Package kafkatest provides the Kafka brokers, topics and consumer groups
// used by weft's integration tests.
//
// Tests run against one of two tiers, chosen by the environment:
//
//   - WEFT_KAFKA_BROKERS unset: each call to [Brokers] starts a private
//     embedded broker (package broker) on a free loopback port with a
//     temporary data dir, closed when the test ends. Nothing but Go is
//     needed.
//   - WEFT_KAFKA_BROKERS set to a comma-separated host:port list: tests use
//     that real Apache Kafka cluster, which all tests (and test runs) share.
//
// Because a real cluster is shared, tests must name their topics and groups
// with [Topic] and [Group], which return names unique to the test and the
// run, and create topics with [CreateTopic].
package kafkatest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weftstream/weft/broker"
)

// EnvBrokers is the environment variable that points the integration tests
// at a real Kafka cluster: a comma-separated list of host:port bootstrap
// brokers.
const EnvBrokers = "WEFT_KAFKA_BROKERS"

// Timeout bounds each helper's wait on the brokers, e.g. for a created topic
// to appear in metadata.
const Timeout = 30 * time.Second

// maxNameLen keeps generated names well below Kafka's 249 character limit
// for topic names.
const maxNameLen = 200

// Brokers returns the bootstrap brokers the calling test should use: the
// list in WEFT_KAFKA_BROKERS when it is set, otherwise the address of a
// new embedded broker, started on a free port with a t.TempDir() data dir
// and closed by t.Cleanup. It fails the test if the broker cannot start.
func Brokers(t testing.TB) []string {
	t.Helper()
	if env := os.Getenv(EnvBrokers); strings.TrimSpace(env) != "" {
		var addrs []string
		for a := range strings.SplitSeq(env, ",") {
			if a = strings.TrimSpace(a); a != "" {
				addrs = append(addrs, a)
			}
		}
		return addrs
	}

	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	b, err := broker.Start(ctx,
		broker.WithAddr("127.0.0.1:0"),
		broker.WithDataDir(t.TempDir()),
		// Only errors: kfake's warnings (late heartbeats and the like)
		// are expected noise under the race detector.
		broker.WithLogger(slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelError}))),
	)
	if err != nil {
		t.Fatalf("kafkatest: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("kafkatest: close embedded broker: %v", err)
		}
	})
	return b.Addrs()
}

// Topic returns a topic name unique to the calling test and run: prefix, the
// test's name and a random suffix, with every character Kafka does not allow
// in topic names (or that collides in its metric names: '.' and '_')
// replaced by '-'.
func Topic(t testing.TB, prefix string) string {
	t.Helper()
	return uniqueName(t, prefix)
}

// Group returns a consumer group name unique to the calling test and run,
// built like [Topic]'s names.
func Group(t testing.TB, prefix string) string {
	t.Helper()
	return uniqueName(t, prefix)
}

func uniqueName(t testing.TB, prefix string) string {
	t.Helper()
	var rnd [4]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		t.Fatalf("kafkatest: random name suffix: %v", err)
	}
	suffix := "-" + hex.EncodeToString(rnd[:])
	name := sanitize(prefix + "-" + t.Name())
	if len(name) > maxNameLen-len(suffix) {
		name = name[:maxNameLen-len(suffix)]
	}
	return name + suffix
}

// sanitize maps every character outside [a-zA-Z0-9-] to '-'.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-':
			return r
		default:
			return '-'
		}
	}, s)
}

// CreateTopic creates topic with the given number of partitions (and the
// cluster's default replication factor) on brokers, then waits, at most
// [Timeout], until the brokers' metadata shows every partition with a
// leader. It fails the test on error, including when the topic already
// exists: use [Topic] for names.
func CreateTopic(t testing.TB, brokers []string, topic string, partitions int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	if err := createTopic(ctx, brokers, topic, partitions); err != nil {
		t.Fatalf("kafkatest: %v", err)
	}
}

func createTopic(ctx context.Context, brokers []string, topic string, partitions int32) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return fmt.Errorf("create topic %s: new client: %w", topic, err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)

	resp, err := adm.CreateTopic(ctx, partitions, -1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return fmt.Errorf("create topic %s with %d partitions: %w", topic, partitions, err)
	}

	const poll = 20 * time.Millisecond
	ticker := time.NewTicker(poll)
	defer ticker.Stop()
	for {
		err := topicReady(ctx, adm, topic, partitions)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for topic %s in metadata: %w (last: %w)", topic, ctx.Err(), err)
		case <-ticker.C:
		}
	}
}

// topicReady reports, as a nil error, whether metadata shows topic with
// partitions partitions that all have a leader.
func topicReady(ctx context.Context, adm *kadm.Client, topic string, partitions int32) error {
	md, err := adm.Metadata(ctx, topic)
	if err != nil {
		return err
	}
	td, ok := md.Topics[topic]
	if !ok {
		return errors.New("topic not in metadata")
	}
	if td.Err != nil {
		return td.Err
	}
	if got := int32(len(td.Partitions)); got != partitions {
		return fmt.Errorf("metadata shows %d partitions, want %d", got, partitions)
	}
	for _, p := range td.Partitions {
		if p.Err != nil {
			return fmt.Errorf("partition %d: %w", p.Partition, p.Err)
		}
		if p.Leader < 0 {
			return fmt.Errorf("partition %d has no leader", p.Partition)
		}
	}
	return nil
}

// WaitFor polls cond every 20ms until it holds, failing the test with what
// after timeout. Use it to wait on a condition, never a fixed sleep.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

// KeysCovering returns, for each of partitions partitions, one key made by
// key(i) (for increasing i) that goka's default partitioner (fnv-1a, as
// weft's producers use) puts there, in partition order.
func KeysCovering(t testing.TB, partitions int32, key func(i int) string) []string {
	t.Helper()
	part := sarama.NewCustomHashPartitioner(goka.DefaultHasher())("")
	out := make([]string, partitions)
	found := int32(0)
	for i := 0; found < partitions && i < 100*int(partitions); i++ {
		k := key(i)
		p, err := part.Partition(&sarama.ProducerMessage{Key: sarama.StringEncoder(k)}, partitions)
		if err != nil {
			t.Fatalf("kafkatest: partition of %q: %v", k, err)
		}
		if out[p] == "" {
			out[p] = k
			found++
		}
	}
	if found != partitions {
		t.Fatalf("kafkatest: keys cover %d of %d partitions", found, partitions)
	}
	return out
}

// Consume reads n records of topic from its start, waiting up to timeout,
// and fails the test if there are fewer or more.
func Consume(t testing.TB, brokers []string, topic string, n int, timeout time.Duration) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatalf("kafkatest: %v", err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	WaitFor(t, timeout, fmt.Sprintf("%d records of %s", n, topic), func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { recs = append(recs, r) })
		return len(recs) >= n
	})
	if len(recs) != n {
		t.Fatalf("kafkatest: %s has %d records, want %d", topic, len(recs), n)
	}
	return recs
}
