package broker_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weftstream/weft/broker"
)

// TestSyncWritesPersist checks that a broker in synced mode serves and
// keeps its records across a restart on the same data dir.
func TestSyncWritesPersist(t *testing.T) {
	dir := t.TempDir()
	b1 := startBroker(t, broker.WithDataDir(dir), broker.WithSyncWrites(), broker.WithPartitions(1))
	cl := newClient(t, b1.Addrs(), kgo.AllowAutoTopicCreation())
	const n = 20
	for i := range n {
		if err := cl.ProduceSync(timeoutCtx(t), &kgo.Record{Topic: "synced", Value: []byte{byte(i)}}).FirstErr(); err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
	}
	cl.Close()
	if err := b1.Close(); err != nil {
		t.Fatal(err)
	}

	b2 := startBroker(t, broker.WithDataDir(dir), broker.WithSyncWrites())
	cons := newClient(t, b2.Addrs(), kgo.ConsumeTopics("synced"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var got []byte
	ctx := timeoutCtx(t)
	for len(got) < n && ctx.Err() == nil {
		cons.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got = append(got, r.Value...) })
	}
	if len(got) != n {
		t.Fatalf("after restart: %d records, want %d", len(got), n)
	}
	for i, v := range got {
		if int(v) != i {
			t.Fatalf("record %d has value %d, want %d", i, v, i)
		}
	}
}
