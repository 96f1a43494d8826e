package processors_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lovoo/goka"

	"github.com/weftstream/weft/processors"
	"github.com/weftstream/weft/statestore"
	"github.com/weftstream/weft/topology"
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

// plainCodec hides the json codec's AppendEncode: the envelope codec then
// encodes the value apart and copies it, as for any other codec.
type plainCodec struct{ goka.Codec }

// An envelope whose value the json codec appends in place has the bytes
// of one whose value is encoded apart, and decodes to the same value.
func TestEnvelopeCodecAppendsJSONValues(t *testing.T) {
	appended := processors.EnvelopeCodec(topology.JSON{})
	copied := processors.EnvelopeCodec(plainCodec{topology.JSON{}})
	big := strings.Repeat("x", 1000) // more than the initial buffer
	for _, v := range []any{
		nil, int64(7), "s", []any{1.5, "a"},
		map[string]any{"account": "acc-1", "balance": int64(12), "owner": big},
	} {
		s := &processors.Stored{Value: v, Meta: statestore.Envelope{
			Version: 3, EventTime: time.UnixMilli(1700000000000).UTC(),
			Sources: []statestore.SourceOffset{{Topic: "in", Partition: 2, Offset: 41}},
		}}
		got, err := appended.Encode(s)
		if err != nil {
			t.Fatal(err)
		}
		want, err := copied.Encode(s)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Fatalf("%#v: appended %q, copied %q", v, got, want)
		}
		back, err := appended.Decode(got)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(v, back.(*processors.Stored).Value); d != "" {
			t.Fatalf("%#v: decoded back (-want +got):\n%s", v, d)
		}
	}
}
