package processors_test

import (
	"fmt"
	"testing"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/weftstream/weft/internal/kafkatest"
	"github.com/weftstream/weft/processors"
)

// A stateful group rejects a record whose key sits in another partition
// than goka's partitioner puts it (its state would be lost at the next
// restore from the changelog): it goes to the dead-letter topic with reason
// "partition" and changes no state; records in the right partition count.
func TestIntegrationWrongPartitionIsRejected(t *testing.T) {
	e := newEnv(t)
	input, group := kafkatest.Topic(t, "counts-in"), kafkatest.Group(t, "counts")
	kafkatest.CreateTopic(t, e.kafka.Brokers, input, 4)
	rt := e.runtime()
	g := processors.DefineGroup(rt, goka.Group(group),
		goka.Input(goka.Stream(input), new(codec.Bytes), processors.Handle(rt, identity, func(ctx goka.Context, _ []byte) error {
			var n int64
			if v := ctx.Value(); v != nil {
				n = v.(int64)
			}
			ctx.SetValue(n + 1)
			return nil
		})),
		processors.Persist(new(codec.Int64)),
	)
	// Keys that goka's partitioner puts in partitions 0 and 1; both are
	// produced to partition 0.
	keys := kafkatest.KeysCovering(t, 4, func(i int) string { return fmt.Sprintf("k%d", i) })
	right, wrongKey := keys[0], keys[1]
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.kafka.Brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, r := range []*kgo.Record{
		{Topic: input, Partition: 0, Key: []byte(right), Value: []byte("x")},
		{Topic: input, Partition: 0, Key: []byte(wrongKey), Value: []byte("x")}, // goka puts it in partition 1
		{Topic: input, Partition: 0, Key: []byte(right), Value: []byte("x")},
	} {
		if err := cl.ProduceSync(t.Context(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	run := e.start(rt, g, t.TempDir())
	run.waitHandled(t, 3)
	if p, r := rt.Tally().Processed(), rt.Tally().RejectedByReason()["partition"]; p != 2 || r != 1 {
		t.Fatalf("processed %d, rejected for the partition %d; want 2 and 1", p, r)
	}
	for key, want := range map[string]any{right: int64(2), wrongKey: nil} {
		v, err := run.p.Goka().Get(key)
		if err != nil {
			t.Fatal(err)
		}
		var got any
		if st, ok := v.(*processors.Stored); ok {
			got = st.Value
		}
		if got != want {
			t.Errorf("%s = %v, want %v", key, got, want)
		}
	}
	dead := kafkatest.Consume(t, e.kafka.Brokers, string(processors.DeadLetterTopic(goka.Group(group))), 1, waitTimeout)
	if string(dead[0].Key) != wrongKey {
		t.Fatalf("dead letter %s, want %s", dead[0].Key, wrongKey)
	}
}
