package topology_test

import (
	"testing"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/tester"
	"github.com/weftstream/weft/processors"
	"github.com/weftstream/weft/topology"
)

// Records that an upstream group emits again after a crash (same
// weft.from identity, new offsets in the repartition topic) update the
// state once; records with another identity count.
func TestRepartitionDuplicatesApplyOnce(t *testing.T) {
	b := topology.New("shop")
	b.Stream("orders", topology.JSON{}).GroupBy("by-customer", func(_ string, v any) (string, error) {
		c, _ := field(v, "customer").(string)
		return c, nil
	}).Count("orders-per-customer")
	c := mustCompile(t, b)
	tt := runOnTester(t, c)
	count := func() any {
		v := tt.TableValue("shop-orders-per-customer-table", "ann")
		if v == nil {
			return nil
		}
		return v.(*processors.Stored).Value
	}
	// Through the source group: each emitted record carries its identity.
	tt.Consume("orders", "o1", []byte(`{"customer":"ann"}`))
	tt.Consume("orders", "o2", []byte(`{"customer":"ann"}`))
	if got := count(); got != int64(2) {
		t.Fatalf("count after two orders = %v", got)
	}
	// The upstream group replays o2 (offset 1 of orders) after a crash:
	// its record arrives again, with the same identity.
	from := func(s string) tester.EmitOption {
		return tester.WithHeaders(goka.Headers{processors.HeaderFrom: []byte(s)})
	}
	repartition := "shop-orders-per-customer-repartition"
	tt.Consume(repartition, "ann", []byte(`{"customer":"ann"}`), from("orders/0/1/0"))
	if got := count(); got != int64(2) {
		t.Fatalf("count after a replayed record = %v, want 2", got)
	}
	// A second record emitted for the same upstream record (a flatMap), and
	// a record of a later upstream offset, count.
	tt.Consume(repartition, "ann", []byte(`{"customer":"ann"}`), from("orders/0/1/1"))
	tt.Consume(repartition, "ann", []byte(`{"customer":"ann"}`), from("orders/0/7/0"))
	if got := count(); got != int64(4) {
		t.Fatalf("count after two new records = %v, want 4", got)
	}
	// The envelope names the upstream record that made the version.
	st := tt.TableValue("shop-orders-per-customer-table", "ann").(*processors.Stored)
	if s := st.Meta.Sources[0]; s.Topic != "orders" || s.Offset != 7 || s.Index != 0 || !s.Upstream {
		t.Fatalf("Sources[0] = %+v, want orders/0@7 #0 upstream", s)
	}
	// A header that is not an identity leaves the record's own offset.
	tt.Consume(repartition, "ann", []byte(`{"customer":"ann"}`), from("garbage"))
	if got := count(); got != int64(5) {
		t.Fatalf("count after a record with a bad header = %v, want 5", got)
	}
}
