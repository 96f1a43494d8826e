package cqrs_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/lovoo/goka"

	"github.com/weftstream/weft/topology"
)

// customers.yaml: (a) the customer-orders read model (orders joined with the
// customers table) and (b) the totals per segment and month, compared with
// the expected read models of testdata/cqrs/gen.py. (c) daily-purchases
// windows on record timestamps, which processors.Emitter cannot set (the
// producer's send time is used): its days and late records are tested in
// customers.test.yaml; here only that the windows of today (and yesterday,
// around midnight UTC) add up to each customer's orders and total.
//
// The reference processes every customer before any order; so does the
// test: the customers group runs first, and the groups that read orders
// start once the customers table is complete. goka starts a processor only
// after its lookup tables (the join's customers table) have caught up.
func TestIntegrationCustomersAndOrders(t *testing.T) {
	a := loadApp(t, "customers.yaml")
	customers := readLines(t, filepath.Join(cqrsDir, "customer-events.jsonl"))
	orders := readLines(t, filepath.Join(cqrsDir, "order-events.jsonl"))
	wantCustomerOrders := byField(t, filepath.Join(cqrsDir, "expected-customer-orders.jsonl"), "customer")
	wantSegmentMonths := map[string]any{}
	for _, kv := range readObjects(t, filepath.Join(cqrsDir, "expected-segment-months.jsonl")) {
		wantSegmentMonths[kv["key"].(string)] = kv["value"]
	}

	customersGroup := a.group("customers")
	a.produce("customer-events", customers, "customer")
	a.start(func(g *topology.Group) bool { return g.Name == customersGroup })
	a.waitHandled(int64(len(customers)), customersGroup)

	produced := time.Now().UTC()
	a.produce("order-events", orders, "order")
	a.start(func(g *topology.Group) bool { return g.Name != customersGroup })
	// Each order passes the stateless group of order-events (validation,
	// re-keying, join), then customer-orders, segment-months and
	// daily-purchases.
	orderGroups := []goka.Group{a.sourceGroup("order-events"),
		a.group("customer-orders"), a.group("segment-months"), a.group("daily-purchases")}
	a.waitHandled(int64(4*len(orders)), orderGroups...)
	if n, reasons := a.rejected(); n != 0 {
		t.Fatalf("%d records rejected: %v", n, reasons)
	}
	a.compareTable("customer-orders", wantCustomerOrders)
	a.compareTable("segment-months", wantSegmentMonths)

	// (c), partly: the windows are the days of the records' produce times,
	// so every customer's daily purchases add up to its orders and total.
	var days []time.Time
	for d := produced.Add(-time.Minute).Truncate(24 * time.Hour); !d.After(time.Now().UTC()); d = d.Add(24 * time.Hour) {
		days = append(days, d)
	}
	for customer, w := range wantCustomerOrders {
		var orders, total float64
		for _, d := range days {
			if v, ok := a.value("daily-purchases", topology.WindowKey(customer, d)).(map[string]any); ok {
				orders += v["orders"].(float64)
				total += v["total"].(float64)
			}
		}
		want := w.(map[string]any)
		if orders != want["orders"] || total != want["total"] {
			t.Errorf("daily purchases of %s on %v: %v orders, total %v; want %v, %v", customer, days, orders, total, want["orders"], want["total"])
		}
	}
}
