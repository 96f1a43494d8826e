package processors_test

import (
	"context"
	"testing"
	"time"

	"github.com/lovoo/goka"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/weftstream/weft/internal/kafkatest"
	"github.com/weftstream/weft/processors"
)

// recreate deletes topics and creates them again, empty, with one
// partition (real Kafka deletes asynchronously: creating again is retried
// until the old incarnation is gone).
func recreate(t *testing.T, e *env, topics ...string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.kafka.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	resp, err := adm.DeleteTopics(ctx, topics...)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range resp {
		if r.Err != nil {
			t.Fatalf("delete %s: %v", r.Topic, r.Err)
		}
	}
	for _, topic := range topics {
		kafkatest.WaitFor(t, waitTimeout, "topic "+topic+" created again", func() bool {
			r, err := adm.CreateTopic(ctx, 1, -1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}, topic)
			return err == nil && r.Err == nil
		})
	}
}

// Local state built from a table topic that was deleted and created again
// since (as when an application is reset, or the state directory comes from
// another cluster) is ahead of the changelog: weft discards it and
// restores from the new changelog, instead of treating new records as
// already applied.
func TestIntegrationStateOfARecreatedTopicIsDiscarded(t *testing.T) {
	e := newEnv(t)
	input := kafkatest.Topic(t, "recreated-in")
	kafkatest.CreateTopic(t, e.kafka.Brokers, input, 1)
	group := kafkatest.Group(t, "recreated")
	stateDir := t.TempDir()
	get := func(r *running, key string) any {
		v, err := r.p.Goka().Get(key)
		if err != nil {
			t.Fatal(err)
		}
		if s, ok := v.(*processors.Stored); ok && s != nil {
			return s.Value
		}
		return nil
	}

	rt := e.runtime()
	produceRaw(t, e, input, [2]*string{str("a"), str("1")}, [2]*string{str("a"), str("2")}, [2]*string{str("a"), str("3")})
	r := e.start(rt, counterGraph(rt, group, input), stateDir)
	r.waitHandled(t, 3)
	kafkatest.WaitFor(t, waitTimeout, "count of a is 3", func() bool { return get(r, "a") == int64(3) })
	r.stop(t)

	// The application is reset: its input, its table topic and its
	// consumer group start again from nothing; two new records for a.
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.kafka.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if _, err := kadm.NewClient(cl).DeleteGroups(ctx, group); err != nil {
		t.Fatal(err)
	}
	recreate(t, e, input, string(goka.GroupTable(goka.Group(group))))
	produceRaw(t, e, input, [2]*string{str("a"), str("4")}, [2]*string{str("a"), str("5")})

	rt2 := e.runtime()
	r2 := e.start(rt2, counterGraph(rt2, group, input), stateDir)
	r2.waitHandled(t, 2)
	kafkatest.WaitFor(t, waitTimeout, "count of a is 2", func() bool { return get(r2, "a") == int64(2) })
	if rt2.Tally().Processed() != 2 || rt2.Tally().Replayed() != 0 {
		t.Fatalf("processed %d replayed %d, want 2 and 0 (the old state must not cover new records)",
			rt2.Tally().Processed(), rt2.Tally().Replayed())
	}
}
