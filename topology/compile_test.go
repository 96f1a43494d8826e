package topology_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

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
		if g := groups[name]; g == nil || strings.Join(g.Inputs, ",") != input {
			t.Fatalf("group %s: %+v, want input %s\n%s", name, g, input, c)
		}
	}

	tt := runOnTester(t, c)
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

// A stream can join a table the same topology builds.
func TestJoinTableOfTheSameTopology(t *testing.T) {
	b := topology.New("app")
	counts := b.Stream("orders", topology.JSON{}).GroupByKey().Count("orders-per-customer")
	b.Stream("pings", topology.JSON{}).Join("with-count", counts, func(k string, _, other any) (any, error) {
		return map[string]any{"customer": k, "orders": other}, nil
	}).To("answers", topology.JSON{})
	c := mustCompile(t, b)
	tt := runOnTester(t, c)
	answers := tt.NewQueueTracker("answers")
	tt.Consume("orders", "c1", []byte(`{}`))
	tt.Consume("orders", "c1", []byte(`{}`))
	tt.Consume("pings", "c1", []byte(`{}`))
	tt.Consume("pings", "c2", []byte(`{}`))
	var got []string
	for {
		_, v, ok := answers.Next()
		if !ok {
			break
		}
		got = append(got, string(v.([]byte)))
	}
	if want := `[{"customer":"c1","orders":2} {"customer":"c2","orders":null}]`; fmt.Sprint(got) != want {
		t.Fatalf("answers %v, want %s", got, want)
	}
}

// Purchases per customer per day (tumbling) and per 2-hour window sliding
// by 1 hour (hopping), with a 30-minute grace period.
func TestWindowedAggregations(t *testing.T) {
	b := topology.New("shop")
	purchases := b.Stream("purchases", topology.JSON{})
	purchases.GroupByKey().WindowedBy("daily", topology.Tumbling(24*time.Hour, 30*time.Minute)).
		Aggregate("daily-purchases", func() any { return int64(0) },
			func(_ string, v, agg any) (any, error) { return agg.(int64) + field(v, "amount").(int64), nil }, topology.JSON{})
	purchases.GroupByKey().WindowedBy("two-hours", topology.Hopping(2*time.Hour, time.Hour, 0)).Count("purchases-2h")
	c := mustCompile(t, b)
	tt := runOnTester(t, c)
	day := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	buy := func(at time.Duration, amount int) {
		tt.Consume("purchases", "c1", []byte(fmt.Sprintf(`{"amount":%d}`, amount)), tester.WithTime(day.Add(at)))
	}
	buy(1*time.Hour+10*time.Minute, 10) // day 1; 2h windows 00:00 and 01:00
	buy(23*time.Hour, 20)               // day 1; windows 22:00, 23:00
	buy(24*time.Hour+5*time.Minute, 40) // day 2; windows 23:00 (day 1), 00:00 (day 2)
	buy(23*time.Hour+50*time.Minute, 5) // day 1 within grace (day 1 closes at day 2 00:30); 2h: 23:00 open, 22:00 closed
	buy(24*time.Hour+40*time.Minute, 1) // day 2; stream time 00:40 closes day 1
	buy(23*time.Hour+55*time.Minute, 7) // late for the day window; 2h window 23:00 still open (closes 01:00), 22:00 closed

	value := func(table, key string) any {
		v := tt.TableValue(goka.Table(table), key)
		if v == nil {
			return nil
		}
		return v.(*processors.Stored).Value
	}
	wk := func(offset time.Duration) string { return topology.WindowKey("c1", day.Add(offset)) }
	for key, want := range map[string]any{wk(0): int64(35), wk(24 * time.Hour): int64(41)} {
		if got := value("shop-daily-purchases-table", key); got != want {
			t.Errorf("daily %s = %v, want %v", key, got, want)
		}
	}
	for key, want := range map[string]any{
		wk(0): int64(1), wk(time.Hour): int64(1), wk(22 * time.Hour): int64(1), wk(23 * time.Hour): int64(5),
		wk(24 * time.Hour): int64(2),
	} {
		if got := value("shop-purchases-2h-table", key); got != want {
			t.Errorf("2h %s = %v, want %v", key, got, want)
		}
	}
}

// A table-table join: customers (latest) joined with their payment counts.
func TestTableTableJoin(t *testing.T) {
	b := topology.New("bank")
	customers := b.Stream("customers", topology.JSON{}).Latest("customer", topology.JSON{})
	payments := b.Stream("payments", topology.JSON{}).GroupByKey().Count("payments-per-customer")
	customers.Join("customer-payments", payments, func(_ string, c, n any) (any, error) {
		return map[string]any{"name": field(c, "name"), "payments": n}, nil
	}, topology.JSON{})
	c := mustCompile(t, b)
	tt := runOnTester(t, c)
	joined := func(key string) string {
		v := tt.TableValue("bank-customer-payments-table", key)
		if v == nil {
			return "none"
		}
		data, _ := json.Marshal(v.(*processors.Stored).Value)
		return string(data)
	}
	tt.Consume("customers", "c1", []byte(`{"name":"Alice"}`))
	if got := joined("c1"); got != "none" {
		t.Fatalf("joined before any payment: %s", got)
	}
	tt.Consume("payments", "c1", []byte(`{}`))
	tt.Consume("payments", "c1", []byte(`{}`))
	tt.Consume("payments", "c2", []byte(`{}`))
	if got := joined("c1"); got != `{"name":"Alice","payments":2}` {
		t.Fatalf("c1 = %s", got)
	}
	if got := joined("c2"); got != "none" {
		t.Fatalf("c2 has no customer yet, joined = %s", got)
	}
	tt.Consume("customers", "c2", []byte(`{"name":"Bob"}`))
	tt.Consume("customers", "c1", []byte(`{"name":"Alice B."}`))
	if got := joined("c2"); got != `{"name":"Bob","payments":1}` {
		t.Fatalf("c2 = %s", got)
	}
	if got := joined("c1"); got != `{"name":"Alice B.","payments":2}` {
		t.Fatalf("c1 after the rename = %s", got)
	}
	// Deleting a side retracts the joined value; the other side stays, so
	// the join is back when the deleted side returns.
	tt.Consume("customers", "c1", []byte(`null`))
	if got := joined("c1"); got != "none" {
		t.Fatalf("c1 after deleting the customer = %s", got)
	}
	if got := joined("c2"); got != `{"name":"Bob","payments":1}` {
		t.Fatalf("c2 after deleting c1 = %s", got)
	}
	tt.Consume("customers", "c1", []byte(`{"name":"Alice C."}`))
	if got := joined("c1"); got != `{"name":"Alice C.","payments":2}` {
		t.Fatalf("c1 after it came back = %s", got)
	}
	// Deleting a key that never joined changes nothing downstream.
	tt.Consume("customers", "c3", []byte(`{"name":"Carol"}`))
	tt.Consume("customers", "c3", []byte(`null`))
	if got := joined("c3"); got != "none" {
		t.Fatalf("c3 = %s", got)
	}
	if got := tt.TableValue("bank-customer-payments-sides-table", "c3"); got != nil {
		t.Fatalf("the sides of c3 are kept after both sides went: %v", got)
	}
}

// mustCompile builds and compiles the topology of b.
func mustCompile(t *testing.T, b *topology.Builder, opts ...topology.CompileOption) *topology.Compiled {
	t.Helper()
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	c, err := topology.Compile(top, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// runOnTester runs every group of c on a new goka tester until the test
// ends.
func runOnTester(t *testing.T, c *topology.Compiled) *tester.Tester {
	t.Helper()
	tt := tester.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	for _, g := range c.Groups {
		p, err := goka.NewProcessor(nil, g.Graph, append(g.GokaOptions, goka.WithTester(tt))...)
		if err != nil {
			t.Fatal(err)
		}
		go p.Run(ctx)
	}
	return tt
}

// A tombstone (null value) deletes the key of a latest table that mirrors
// its topic; a count does not count it but dead-letters it.
func TestTombstones(t *testing.T) {
	b := topology.New("shop")
	customers := b.Stream("customers", topology.JSON{})
	customers.Latest("customer", topology.JSON{})
	customers.GroupByKey().Count("updates")
	c := mustCompile(t, b)
	tt := runOnTester(t, c)
	dlq := tt.NewQueueTracker("shop-updates-dlq")
	tt.Consume("customers", "c1", []byte(`{"name":"Alice"}`))
	tt.Consume("customers", "c2", []byte(`{"name":"Bob"}`))
	tt.Consume("customers", "c1", nil)
	if v := tt.TableValue("shop-customer-table", "c1"); v != nil {
		t.Fatalf("c1 after its tombstone = %v, want deleted", v)
	}
	if v := tt.TableValue("shop-customer-table", "c2"); v == nil {
		t.Fatal("c2 is gone")
	}
	if v := tt.TableValue("shop-updates-table", "c1"); v.(*processors.Stored).Value != int64(1) {
		t.Fatalf("count of c1 = %v, want 1 (the tombstone is not an update)", v.(*processors.Stored).Value)
	}
	key, _, ok := dlq.Next()
	if !ok || key != "c1" {
		t.Fatalf("dead letter: key %q ok %v, want the tombstone of c1", key, ok)
	}
	for _, g := range c.Groups {
		if g.Name == "shop-updates" {
			if got := g.Runtime.Tally().RejectedByReason()[processors.ReasonNull]; got != 1 {
				t.Fatalf("rejected as null: %d, want 1", got)
			}
		}
	}
}
