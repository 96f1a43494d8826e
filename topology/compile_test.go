package topology_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/tester"
	"github.com/weftstream/weft/processors"
	"github.com/weftstream/weft/topology"
)

func field(v any, name string) any { return v.(map[string]any)[name] }

// shop builds a topology over orders {customer, segment, amount}.
func shop(t *testing.T) *topology.Topology {
	b := topology.New("shop")
	orders := b.Stream("orders", topology.JSON{})
	valid := orders.Filter("valid", func(_ string, v any) (bool, error) {
		amount, ok := field(v, "amount").(int64)
		if !ok {
			return false, fmt.Errorf("amount %v is not an integer", field(v, "amount"))
		}
		return amount > 0, nil
	})
	valid.GroupByKey().Count("orders-per-customer")
	valid.GroupBy("by-segment", func(_ string, v any) (string, error) {
		s, _ := field(v, "segment").(string)
		return s, nil
	}).Aggregate("segment-totals",
		func() any { return int64(0) },
		func(_ string, v, agg any) (any, error) { return agg.(int64) + field(v, "amount").(int64), nil },
		topology.JSON{})
	branches := valid.Branch("size",
		func(_ string, v any) (bool, error) { return field(v, "amount").(int64) >= 100, nil },
		func(string, any) (bool, error) { return true, nil })
	branches[0].MapValues("tag", func(_ string, v any) (any, error) {
		return map[string]any{"customer": field(v, "customer"), "big": true}, nil
	}).To("big-orders", topology.JSON{})
	customers := b.Table("crm-table", topology.JSON{})
	valid.Join("with-customer", customers, func(_ string, v, c any) (any, error) {
		name := "unknown"
		if c != nil {
			name = field(c, "name").(string)
		}
		return map[string]any{"name": name, "amount": field(v, "amount")}, nil
	}).To("enriched", topology.JSON{})
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return top
}

func TestCompileShop(t *testing.T) {
	c, err := topology.Compile(shop(t))
	if err != nil {
		t.Fatal(err)
	}
	groups := map[goka.Group]*topology.Group{}
	for _, g := range c.Groups {
		groups[g.Name] = g
	}
	want := map[goka.Group]string{
		"shop-orders-per-customer": "orders",
		"shop-segment-totals":      "shop-segment-totals-repartition",
		"shop-orders":              "orders",
	}
	if len(groups) != len(want) {
		t.Fatalf("groups:\n%s", c)
	}
	for name, input := range want {
		if g := groups[name]; g == nil || g.Input != input {
			t.Fatalf("group %s: %+v, want input %s\n%s", name, g, input, c)
		}
	}

	tt := tester.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, g := range c.Groups {
		p, err := goka.NewProcessor(nil, g.Graph, goka.WithTester(tt))
		if err != nil {
			t.Fatal(err)
		}
		go p.Run(ctx)
	}
	tt.SetTableValue("crm-table", "c1", &processors.Stored{Value: map[string]any{"name": "Alice"}})
	big := tt.NewQueueTracker("big-orders")
	enriched := tt.NewQueueTracker("enriched")

	orders := []struct {
		customer, segment string
		amount            any
	}{
		{"c1", "retail", 50}, {"c1", "retail", 150}, {"c2", "retail", 20},
		{"c2", "b2b", 500}, {"c3", "b2b", -5}, {"c3", "b2b", "lots"},
	}
	for _, o := range orders {
		data, _ := json.Marshal(map[string]any{"customer": o.customer, "segment": o.segment, "amount": o.amount})
		tt.Consume("orders", o.customer, data)
	}

	count := func(key string) any {
		v := tt.TableValue("shop-orders-per-customer-table", key)
		if v == nil {
			return nil
		}
		return v.(*processors.Stored).Value
	}
	// Valid orders: c1 x2, c2 x2; c3's are filtered (-5) or rejected ("lots").
	for key, want := range map[string]any{"c1": int64(2), "c2": int64(2), "c3": nil} {
		if got := count(key); got != want {
			t.Errorf("count %s = %v, want %v", key, got, want)
		}
	}
	total := func(seg string) any {
		v := tt.TableValue("shop-segment-totals-table", seg)
		if v == nil {
			return nil
		}
		return v.(*processors.Stored).Value
	}
	if got := total("retail"); got != int64(220) {
		t.Errorf("retail total = %v, want 220", got)
	}
	if got := total("b2b"); got != int64(500) {
		t.Errorf("b2b total = %v, want 500", got)
	}
	var bigs []string
	for {
		k, v, ok := big.Next()
		if !ok {
			break
		}
		bigs = append(bigs, fmt.Sprintf("%s:%s", k, v))
	}
	if len(bigs) != 2 {
		t.Errorf("big orders %v, want 2 (150 and 500)", bigs)
	}
	var names []string
	for {
		_, v, ok := enriched.Next()
		if !ok {
			break
		}
		var e map[string]any
		if err := json.Unmarshal(v.([]byte), &e); err != nil {
			t.Fatal(err)
		}
		names = append(names, fmt.Sprint(e["name"]))
	}
	if fmt.Sprint(names) != "[Alice Alice unknown unknown]" {
		t.Errorf("enriched names %v", names)
	}
}

func TestBuildErrors(t *testing.T) {
	b := topology.New("")
	s := b.Stream("in", nil)
	s.Filter("f", nil)
	s.Filter("f", func(string, any) (bool, error) { return true, nil })
	_, err := b.Build()
	if err == nil {
		t.Fatal("Build accepted a broken topology")
	}
	for _, want := range []string{"without a codec", "without a predicate", `name "f" is used twice`, "application name"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}
