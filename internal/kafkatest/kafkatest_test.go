package kafkatest_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weftstream/weft/internal/kafkatest"
)

func TestRoundTrip(t *testing.T) {
	const partitions, n = 3, 20
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.Topic(t, "roundtrip")
	group := kafkatest.Group(t, "roundtrip")
	kafkatest.CreateTopic(t, brokers, topic, partitions)

	ctx, cancel := context.WithTimeout(t.Context(), kafkatest.Timeout)
	defer cancel()

	p, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for i := range n {
		r := &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "v%d", i)}
		if err := p.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}

	c, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got := make(map[string]string)
	seen := make(map[int32]bool)
	for len(got) < n {
		fs := c.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d: %v", len(got), n, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			got[string(r.Key)] = string(r.Value)
			seen[r.Partition] = true
		})
	}
	for i := range n {
		if k, v := fmt.Sprintf("k%d", i), fmt.Sprintf("v%d", i); got[k] != v {
			t.Errorf("key %s = %q, want %q", k, got[k], v)
		}
	}
	for pt := range seen {
		if pt < 0 || pt >= partitions {
			t.Errorf("record from partition %d of a %d-partition topic", pt, partitions)
		}
	}
}

func TestNames(t *testing.T) {
	valid := regexp.MustCompile(`^[a-zA-Z0-9-]{1,249}$`)
	a, b := kafkatest.Topic(t, "x"), kafkatest.Topic(t, "x")
	if a == b {
		t.Errorf("Topic returned %q twice", a)
	}
	t.Run("sub/test with spaces.and_dots", func(t *testing.T) {
		for _, name := range []string{kafkatest.Topic(t, "p"), kafkatest.Group(t, "p"), kafkatest.Topic(t, strings.Repeat("long", 100))} {
			if !valid.MatchString(name) {
				t.Errorf("name %q is not a valid Kafka name", name)
			}
		}
		if name := kafkatest.Topic(t, "p"); !strings.HasPrefix(name, "p-TestNames-sub-test-with-spaces-and-dots-") {
			t.Errorf("Topic = %q, want prefix and test name", name)
		}
	})
}
