package processors

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/weftstream/weft/statestore"
)

func TestParseFrom(t *testing.T) {
	for _, c := range []struct {
		in   string
		want statestore.SourceOffset
		ok   bool
	}{
		{"orders/3/1234/0", statestore.SourceOffset{Topic: "orders", Partition: 3, Offset: 1234, Upstream: true}, true},
		{"a.b-c_d/0/0/65535", statestore.SourceOffset{Topic: "a.b-c_d", Offset: 0, Index: 65535, Upstream: true}, true},
		{"orders/3/1234", statestore.SourceOffset{}, false},
		{"/3/1234/0", statestore.SourceOffset{}, false},
		{"orders/-1/5/0", statestore.SourceOffset{}, false},
		{"orders/2147483648/5/0", statestore.SourceOffset{}, false},
		{"orders/1/5/4294967296", statestore.SourceOffset{}, false},
		{"orders/1/x/0", statestore.SourceOffset{}, false},
		{"orders/1/5/", statestore.SourceOffset{}, false},
		{"", statestore.SourceOffset{}, false},
	} {
		got, ok := parseFrom([]byte(c.in))
		if ok != c.ok || got != c.want {
			t.Errorf("parseFrom(%q) = %+v, %v; want %+v, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

// FuzzHeaders: the header decoders never panic, and what parseFrom
// accepts prints back as a canonical header that parses to the same.
func FuzzHeaders(f *testing.F) {
	f.Add([]byte("orders/3/1234/0"))
	f.Add([]byte("1767225600000"))
	f.Add([]byte("-5"))
	f.Fuzz(func(t *testing.T, h []byte) {
		if n, ok := parseDecimal(h); ok {
			if want, err := strconv.ParseInt(string(h), 10, 64); err != nil || want != n {
				t.Fatalf("parseDecimal(%q) = %d, strconv says %d (%v)", h, n, want, err)
			}
		}
		id, ok := parseFrom(h)
		if !ok {
			return
		}
		again, ok := parseFrom([]byte(fmt.Sprintf("%s/%d/%d/%d", id.Topic, id.Partition, id.Offset, id.Index)))
		if !ok || again != id {
			t.Fatalf("parseFrom(%q) = %+v, printed and parsed again %+v (%v)", h, id, again, ok)
		}
	})
}

// keyPartition agrees with the partitioner weft's producers use (sarama's
// hash partitioner with goka's fnv-1a hasher).
func TestKeyPartition(t *testing.T) {
	part := sarama.NewCustomHashPartitioner(goka.DefaultHasher())("")
	for _, n := range []int32{1, 3, 4, 8, 13} {
		for i := range 2000 {
			key := fmt.Sprintf("key-%d-%x", i, i*7919)
			want, err := part.Partition(&sarama.ProducerMessage{Key: sarama.StringEncoder(key)}, n)
			if err != nil {
				t.Fatal(err)
			}
			if got := keyPartition(key, n); got != want {
				t.Fatalf("keyPartition(%q, %d) = %d, sarama says %d", key, n, got, want)
			}
		}
	}
}
