package processors_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/weftstream/weft/processors"
	"github.com/weftstream/weft/statestore"
)

// nilCodec decodes every value to nil without allocating.
type nilCodec struct{}

func (nilCodec) Encode(any) ([]byte, error) { return []byte("v"), nil }
func (nilCodec) Decode([]byte) (any, error) { return nil, nil }

// EnvelopeCodec decodes every envelope as statestore.DecodeEnvelope does,
// whatever it decoded before (it keeps the source topics of the last
// value to reuse their strings), and a value whose topics it knows costs
// one allocation.
func TestEnvelopeCodecDecodesSourcesAsDecodeEnvelope(t *testing.T) {
	c := processors.EnvelopeCodec(nilCodec{})
	src := func(topic string, p int32, off int64) statestore.SourceOffset {
		return statestore.SourceOffset{Topic: topic, Partition: p, Offset: off}
	}
	lists := [][]statestore.SourceOffset{
		{src("orders", 0, 1)},
		{src("orders", 1, 2)},
		{src("payments", 0, 3), src("orders", 1, 2)},
		{src("orders", 1, 4), src("payments", 0, 3)},
		nil,
		{src("orders", 2, 5), src("payments", 1, 6), src("refunds", 0, 7)},
		{{Topic: "orders", Partition: 3, Offset: 8, Index: 2, Upstream: true}},
		{src("payments", 2, 9)},
		{src("", 0, 10)},
		{src("orders", 0, 11)},
	}
	for round := range 2 {
		for i, sources := range lists {
			e := statestore.Envelope{Version: uint64(i + 1), EventTime: time.UnixMilli(int64(1000 * i)).UTC(), Sources: sources, Value: []byte("v")}
			data := statestore.AppendEnvelope(nil, &e)
			want, err := statestore.DecodeEnvelope(data)
			if err != nil {
				t.Fatal(err)
			}
			want.Value = nil
			v, err := c.Decode(data)
			if err != nil {
				t.Fatal(err)
			}
			got := v.(*processors.Stored)
			if !reflect.DeepEqual(got.Meta, want) || got.Value != nil {
				t.Fatalf("round %d, value %d: decoded %+v, want %+v", round, i, got.Meta, want)
			}
		}
	}
	e := statestore.Envelope{Version: 3, Sources: []statestore.SourceOffset{src("orders", 0, 1), src("payments", 0, 1)}, Value: []byte("v")}
	data := statestore.AppendEnvelope(nil, &e)
	if _, err := c.Decode(data); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() {
		if _, err := c.Decode(data); err != nil {
			t.Fatal(err)
		}
	}); n != 1 {
		t.Errorf("decoding a value with known topics: %v allocations, want 1", n)
	}
}
