package broker_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weftstream/weft/broker"
)

// testTimeout bounds every wait on the broker in these tests.
const testTimeout = 30 * time.Second

func startBroker(t *testing.T, opts ...broker.Option) *broker.Broker {
	t.Helper()
	opts = append([]broker.Option{
		broker.WithAddr("127.0.0.1:0"),
		broker.WithLogger(slog.New(slog.DiscardHandler)),
	}, opts...)
	b, err := broker.Start(t.Context(), opts...)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func newClient(t *testing.T, addrs []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addrs...)}, opts...)...)
	if err != nil {
		t.Fatalf("kgo.NewClient: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func timeoutCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// TestPersistenceAcrossRestart checks that topics, records and committed
// group offsets survive Close and Start on the same data dir.
func TestPersistenceAcrossRestart(t *testing.T) {
	const (
		topic      = "persisted"
		group      = "g"
		partitions = 3
		total      = 100
		committed  = 60
	)
	dir := t.TempDir()
	ctx := timeoutCtx(t)

	b1 := startBroker(t, broker.WithDataDir(dir))

	// Create the topic and produce keyed records.
	cl := newClient(t, b1.Addrs())
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, partitions, 1, nil, topic); err != nil {
		t.Fatalf("CreateTopic: %v", err)
	}
	want := make(map[string]string, total) // key -> value
	recs := make([]*kgo.Record, 0, total)
	for i := range total {
		k, v := fmt.Sprintf("key-%03d", i), fmt.Sprintf("value-%03d", i)
		want[k] = v
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(k), Value: []byte(v)})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("ProduceSync: %v", err)
	}

	// Consume the first records in group g and commit exactly those.
	gcl := newClient(t, b1.Addrs(),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
	)
	var consumed []*kgo.Record
	for len(consumed) < committed {
		fs := gcl.PollRecords(ctx, committed-len(consumed))
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records: %v", len(consumed), committed, err)
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Fatalf("fetch %s/%d: %v", topic, p, err)
		})
		consumed = append(consumed, fs.Records()...)
	}
	if err := gcl.CommitRecords(ctx, consumed...); err != nil {
		t.Fatalf("CommitRecords: %v", err)
	}
	// A partition is consumed from offset 0 and in order, so the offset
	// to commit for it is the number of its records consumed.
	wantOffsets := make(map[int32]int64)
	for _, r := range consumed {
		wantOffsets[r.Partition]++
	}
	gcl.Close()
	cl.Close()
	if err := b1.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	// Restart on the same data dir.
	b2 := startBroker(t, broker.WithDataDir(dir))
	cl2 := newClient(t, b2.Addrs())
	adm2 := kadm.NewClient(cl2)

	tds, err := adm2.ListTopics(ctx, topic)
	if err != nil {
		t.Fatalf("ListTopics: %v", err)
	}
	td, ok := tds[topic]
	if !ok || td.Err != nil {
		t.Fatalf("topic %q after restart: present=%v err=%v", topic, ok, td.Err)
	}
	if got := len(td.Partitions); got != partitions {
		t.Fatalf("topic %q has %d partitions after restart, want %d", topic, got, partitions)
	}

	offs, err := adm2.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatalf("FetchOffsets: %v", err)
	}
	if err := offs.Error(); err != nil {
		t.Fatalf("FetchOffsets: %v", err)
	}
	gotOffsets := make(map[int32]int64)
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic {
			gotOffsets[o.Partition] = o.At
		}
	})
	if fmt.Sprint(gotOffsets) != fmt.Sprint(wantOffsets) {
		t.Errorf("committed offsets after restart = %v, want %v", gotOffsets, wantOffsets)
	}

	// Read every record back without a group.
	rcl := newClient(t, b2.Addrs(),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	got := make(map[string]string, total)
	for len(got) < total {
		fs := rcl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %d of %d records after restart: %v", len(got), total, err)
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Fatalf("fetch %s/%d: %v", topic, p, err)
		})
		fs.EachRecord(func(r *kgo.Record) {
			if _, dup := got[string(r.Key)]; dup {
				t.Errorf("key %q read twice", r.Key)
			}
			got[string(r.Key)] = string(r.Value)
		})
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("after restart key %q = %q, want %q", k, got[k], v)
		}
	}
}

// TestSarama produces and consumes with IBM/sarama, configured as weft
// configures it (acks=all, idempotent), at each protocol version listed.
// The embedded broker accepts all of them, including versions below what
// Apache Kafka 4 still accepts (0.11, 1.0), up to sarama.MaxVersion.
func TestSarama(t *testing.T) {
	versions := []sarama.KafkaVersion{
		sarama.V0_11_0_0,
		sarama.V1_0_0_0,
		sarama.V2_1_0_0,
		sarama.V2_8_0_0,
		sarama.V3_0_0_0,
		sarama.V3_7_0_0,
		sarama.V3_9_0_0,
		sarama.V4_0_0_0,
		sarama.MaxVersion,
	}
	for _, v := range versions {
		t.Run(v.String(), func(t *testing.T) {
			testSarama(t, v)
		})
	}
}

func testSarama(t *testing.T, version sarama.KafkaVersion) {
	const n = 5
	b := startBroker(t)
	ctx := timeoutCtx(t)
	topic := "sarama-" + strings.ReplaceAll(version.String(), ".", "_")

	cfg := sarama.NewConfig()
	cfg.Version = version
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Idempotent = true
	cfg.Net.MaxOpenRequests = 1
	cfg.Producer.Return.Successes = true
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest

	// The producer auto-creates the topic through metadata.
	p, err := sarama.NewSyncProducer(b.Addrs(), cfg)
	if err != nil {
		t.Fatalf("NewSyncProducer: %v", err)
	}
	defer p.Close()
	for i := range n {
		_, _, err := p.SendMessage(&sarama.ProducerMessage{
			Topic: topic,
			Key:   sarama.StringEncoder(fmt.Sprintf("k%d", i)),
			Value: sarama.StringEncoder(fmt.Sprintf("v%d", i)),
		})
		if err != nil {
			t.Fatalf("SendMessage %d: %v", i, err)
		}
	}

	// Consume through a consumer group, as goka processors do.
	cg, err := sarama.NewConsumerGroup(b.Addrs(), "sarama-group", cfg)
	if err != nil {
		t.Fatalf("NewConsumerGroup: %v", err)
	}
	defer cg.Close()
	h := &collector{want: n, done: make(chan struct{}), got: make(map[string]string)}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		for cctx.Err() == nil {
			if err := cg.Consume(cctx, []string{topic}, h); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	select {
	case <-h.done:
	case err := <-errc:
		t.Fatalf("Consume: %v", err)
	case <-ctx.Done():
		t.Fatalf("consumed %d of %d records: %v", h.count(), n, ctx.Err())
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("Consume: %v", err)
	}
	for i := range n {
		k, v := fmt.Sprintf("k%d", i), fmt.Sprintf("v%d", i)
		if got := h.value(k); got != v {
			t.Errorf("key %q = %q, want %q", k, got, v)
		}
	}
}

// collector is a sarama.ConsumerGroupHandler that records key/values and
// closes done once want distinct keys were seen.
type collector struct {
	want int
	done chan struct{}

	mu     sync.Mutex
	got    map[string]string
	closed bool
}

func (*collector) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (*collector) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (c *collector) ConsumeClaim(s sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for m := range claim.Messages() {
		c.mu.Lock()
		c.got[string(m.Key)] = string(m.Value)
		if len(c.got) >= c.want && !c.closed {
			c.closed = true
			close(c.done)
		}
		c.mu.Unlock()
		s.MarkMessage(m, "")
	}
	return nil
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.got)
}

func (c *collector) value(k string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.got[k]
}

// TestAddrInUse checks the error returned when the port is taken.
func TestAddrInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()

	b, err := broker.Start(t.Context(), broker.WithAddr(addr), broker.WithLogger(nil))
	if err == nil {
		_ = b.Close()
		t.Fatalf("Start on %s in use: got nil error", addr)
	}
	want := fmt.Sprintf("address %s is already in use: is another broker running? use --embedded-addr to pick another", addr)
	if err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
	if !errors.Is(err, syscall.EADDRINUSE) || !errors.Is(err, broker.ErrAddrInUse) {
		t.Errorf("error %v does not wrap EADDRINUSE and ErrAddrInUse", err)
	}

	// The caller names its own flag.
	b, err = broker.Start(t.Context(), broker.WithAddr(addr), broker.WithLogger(nil), broker.WithFlagNames("--addr", ""))
	if err == nil {
		_ = b.Close()
		t.Fatalf("Start on %s in use: got nil error", addr)
	}
	if want := strings.Replace(want, "--embedded-addr", "--addr", 1); err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
}

// TestInMemoryAutoCreate checks the in-memory broker, auto topic creation
// with the default partition count, and that Close is idempotent.
func TestInMemoryAutoCreate(t *testing.T) {
	b := startBroker(t, broker.WithPartitions(4))
	ctx := timeoutCtx(t)
	cl := newClient(t, b.Addrs(), kgo.AllowAutoTopicCreation())
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "auto", Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatalf("ProduceSync: %v", err)
	}
	tds, err := kadm.NewClient(cl).ListTopics(ctx, "auto")
	if err != nil {
		t.Fatalf("ListTopics: %v", err)
	}
	if got := len(tds["auto"].Partitions); got != 4 {
		t.Errorf("auto-created topic has %d partitions, want 4", got)
	}
	cl.Close()
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestInvalidAddr(t *testing.T) {
	for _, addr := range []string{"127.0.0.1", "127.0.0.1:x", "127.0.0.1:70000", "0.0.0.0:0", "[::]:0"} {
		b, err := broker.Start(t.Context(), broker.WithAddr(addr), broker.WithLogger(nil))
		if err == nil {
			_ = b.Close()
			t.Errorf("Start(%q): got nil error", addr)
			continue
		}
		if !strings.Contains(err.Error(), addr) {
			t.Errorf("Start(%q) error %q does not name the address", addr, err)
		}
	}
}
