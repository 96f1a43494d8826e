package processors

import (
	"context"
	"fmt"
	"hash/fnv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/weftstream/weft/internal/kafkatest"
	"github.com/weftstream/weft/kafkaclient"
)

// A view restored with WithRestoreProgress reports its progress from the
// stores' offsets against the table's offsets at the start: every report
// has the topic's record count as its total, done never falls and never
// exceeds it, and once the view has caught up every offset of every
// partition is done; its values are those of the topic.
func TestIntegrationViewRestoreProgress(t *testing.T) {
	bl := kafkatest.Brokers(t)
	topic := kafkatest.Topic(t, "restore") + "-table"
	kafkatest.CreateTopic(t, bl, topic, 4)
	const n = 1000
	// goka's partitioner (sarama's FNV-1a hash), so that the view finds
	// each key in its partition.
	cl, err := kgo.NewClient(kgo.SeedBrokers(bl...), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(kgo.SaramaCompatHasher(fnv32a))))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	records := make([]*kgo.Record, 0, n)
	for i := range n {
		records = append(records, &kgo.Record{Key: fmt.Appendf(nil, "k%d", i%300), Value: fmt.Appendf(nil, `{"n":%d}`, i)})
	}
	if err := cl.ProduceSync(t.Context(), records...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	var (
		mu      sync.Mutex
		reports [][2]int64
	)
	k := kafkaclient.Config{Brokers: bl}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	v, err := StartView(ctx, goka.Table(topic), new(codec.Bytes), WithKafka(k), WithStateDir(t.TempDir()),
		WithRestoreProgress(time.Millisecond, func(done, total int64) {
			mu.Lock()
			defer mu.Unlock()
			reports = append(reports, [2]int64{done, total})
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	mu.Lock()
	got := reports
	mu.Unlock()
	if len(got) == 0 {
		t.Fatal("no progress reported: the first report is due when the restore begins")
	}
	var last int64
	for i, r := range got {
		if r[1] != n || r[0] < last || r[0] > n {
			t.Fatalf("report %d: %d of %d offsets (after %d); want a total of %d, done not falling", i, r[0], r[1], last, n)
		}
		last = r[0]
	}

	sc, err := k.Sarama(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	ranges, err := offsetRanges(k.Brokers, sc, topic)
	if err != nil {
		t.Fatal(err)
	}
	if len(ranges) != 4 {
		t.Fatalf("%d partitions, want 4", len(ranges))
	}
	if done, total := restoredOffsets(v.builder, topic, ranges); done != n || total != n {
		t.Fatalf("restored %d of %d offsets, want %d of %d", done, total, n, n)
	}
	// k7 was last written by record 907 (7 + 3*300).
	if val, err := v.Get("k7"); err != nil || string(val.([]byte)) != `{"n":907}` {
		t.Fatalf("k7 = %s, %v; want {\"n\":907}", val, err)
	}
}

// fnv32a is sarama's (and so goka's) key hash.
func fnv32a(b []byte) uint32 {
	h := fnv.New32a()
	h.Write(b)
	return h.Sum32()
}

func TestRestoreProgressIntervalMustBePositive(t *testing.T) {
	_, err := StartView(t.Context(), "t", new(codec.Bytes), WithKafka(kafkaclient.Config{Brokers: []string{"127.0.0.1:1"}}),
		WithRestoreProgress(0, func(int64, int64) {}))
	if err == nil || !strings.Contains(err.Error(), "WithRestoreProgress: the interval must be positive, not 0s") {
		t.Fatalf("error %v, want the interval named", err)
	}
}
