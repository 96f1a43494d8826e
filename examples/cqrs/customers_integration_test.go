package cqrs_test

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/lovoo/goka"
	"github.com/weftstream/weft/internal/kafkatest"
	"github.com/weftstream/weft/topology"
	"go.opentelemetry.io/otel/trace"
)

// customers.yaml: (a) the customer-orders read model (orders joined with the
// customers table), (b) the totals per segment and month and (c) the daily
// purchases, windows of the orders' event time (their `at`, through the
// stream's timestamp extractor), compared with the expected read models of
// testdata/cqrs/gen.py; then (d) the final daily purchases, suppressed until
// each window closes: the suppressing group is stopped, its local state
// deleted and started again (its buffer comes back from the changelog),
// then orders at the end of the year close every window, and each window's
// final value must come out exactly once, in a flush span linked to every
// update of the window.
//
// The reference processes every customer before any order; so does the
// test: the customers group runs first, and the groups that read orders
// start once the customers table is complete. goka starts a processor only
// after its lookup tables (the join's customers table) have caught up.
// order-events has one partition, so that stream time moves in the order
// of the orders in every group (with several input partitions consumed at
// different speeds, an update can reach the suppressor after its window
// closed there, and is dead-lettered as late: docs/topology-format.md).
func TestIntegrationCustomersAndOrders(t *testing.T) {
	a := loadApp(t, "customers.yaml")
	customers := readLines(t, filepath.Join(cqrsDir, "customer-events.jsonl"))
	orders := readLines(t, filepath.Join(cqrsDir, "order-events.jsonl"))
	wantCustomerOrders := byField(t, filepath.Join(cqrsDir, "expected-customer-orders.jsonl"), "customer")
	keyed := func(name string) map[string]any {
		out := map[string]any{}
		for _, kv := range readObjects(t, filepath.Join(cqrsDir, name)) {
			out[kv["key"].(string)] = kv["value"]
		}
		return out
	}
	wantSegmentMonths := keyed("expected-segment-months.jsonl")
	wantDaily := keyed("expected-daily-purchases.jsonl")

	customersGroup := a.group("customers")
	a.produce("customer-events", customers, "customer")
	a.start(func(g *topology.Group) bool { return g.Name == customersGroup })
	a.waitHandled(int64(len(customers)), customersGroup)

	kafkatest.CreateTopic(t, a.kafka.Brokers, a.topic("order-events"), 1)
	a.produce("order-events", orders, "order")
	final := a.suppressGroup()
	stopFinal := a.start(func(g *topology.Group) bool { return g.Name == final.Name })
	a.start(func(g *topology.Group) bool { return g.Name != customersGroup && g.Name != final.Name })
	// Each order passes the stateless group of order-events (validation,
	// event time, re-keying, join), then customer-orders, segment-months
	// and daily-purchases, whose updates reach the suppressor.
	orderGroups := []goka.Group{a.sourceGroup("order-events"),
		a.group("customer-orders"), a.group("segment-months"), a.group("daily-purchases")}
	a.waitHandled(int64(4*len(orders)), orderGroups...)
	a.waitUpdates(final, len(orders))
	if n, reasons := a.rejected(); n != 0 {
		t.Fatalf("%d records rejected: %v", n, reasons)
	}
	a.compareTable("customer-orders", wantCustomerOrders)
	a.compareTable("segment-months", wantSegmentMonths)
	a.compareTable("daily-purchases", wantDaily)

	// (d) Restart the suppressor from its changelog alone.
	stopFinal()
	if err := os.RemoveAll(filepath.Join(a.stateDir, "processors", string(final.Name))); err != nil {
		t.Fatal(err)
	}
	a.start(func(g *topology.Group) bool { return g.Name == final.Name })
	// Orders at the end of the year move stream time past every window's
	// close on every partition of the suppressor's input (one window key
	// per partition; their own windows stay open).
	ticks := tickOrders(t, int32(a.kafka.Partitions), "2026-12-31T12:00:00Z")
	a.produce("order-events", ticks, "order")
	a.waitUpdates(final, len(orders)+len(ticks))

	recs := a.consume("daily-purchases-final", len(wantDaily))
	got := map[string]any{}
	for _, r := range recs {
		if _, dup := got[string(r.Key)]; dup {
			t.Errorf("window %s emitted twice", r.Key)
		}
		got[string(r.Key)] = decodeJSON(t, r.Value)
	}
	if !reflect.DeepEqual(got, wantDaily) {
		for k, w := range wantDaily {
			if !reflect.DeepEqual(got[k], w) {
				t.Errorf("final %s = %s, want %s", k, jsonText(got[k]), jsonText(w))
			}
		}
		t.Fatalf("final daily purchases: %d windows, want %d", len(got), len(wantDaily))
	}
	if n, reasons := a.rejected(); n != 0 {
		t.Fatalf("%d records rejected: %v", n, reasons)
	}

	// Every final record is the child of a flush span linked to each
	// update of its window (recorded before the restart, restored from
	// the changelog).
	updateSpans := map[trace.SpanID]bool{}
	updateName := "process " + a.file.App + "-" + string(final.Root.Name) + "-repartition"
	for _, s := range a.spans.Ended() {
		if s.Name() == updateName {
			updateSpans[s.SpanContext().SpanID()] = true
		}
	}
	for _, r := range recs {
		sc := traceparentOf(t, r)
		flush := a.span(sc.SpanID())
		if flush == nil || flush.Name() != "flush "+final.Root.Name {
			t.Fatalf("final %s: writer span %v is not a flush span", r.Key, flush)
		}
		wantLinks := int(wantDaily[string(r.Key)].(map[string]any)["orders"].(float64))
		if len(flush.Links()) != wantLinks {
			t.Errorf("final %s: %d links, want one per order of the window (%d)", r.Key, len(flush.Links()), wantLinks)
		}
		for _, l := range flush.Links() {
			if !updateSpans[l.SpanContext.SpanID()] || linkKind(l) != "coalesced" {
				t.Errorf("final %s: link to %s (kind %s) is not an update of the window", r.Key, l.SpanContext.SpanID(), linkKind(l))
			}
		}
	}
}

// suppressGroup is the group of the file's suppress until window_close.
func (a *app) suppressGroup() *topology.Group {
	for _, g := range a.compiled.Groups {
		if g.Root.Kind == topology.KindSuppress {
			return g
		}
	}
	a.t.Fatal("no suppress group")
	return nil
}

// waitUpdates waits until the suppress group handled n updates (not
// counting its loopback closes and purges).
func (a *app) waitUpdates(g *topology.Group, n int) {
	a.t.Helper()
	topic := a.file.App + "-" + g.Root.Name + "-repartition"
	kafkatest.WaitFor(a.t, timeout, fmt.Sprintf("%d updates handled by %s", n, g.Name), func() bool {
		return a.spansNamed("process "+topic) >= n
	})
}

// tickOrders returns one order per partition of the suppressor's input,
// at time at, for customers tick-<i> chosen so that their window keys
// cover every partition.
func tickOrders(t *testing.T, partitions int32, at string) []string {
	t.Helper()
	day := at[:10] + "T00:00:00Z"
	var out []string
	for _, key := range kafkatest.KeysCovering(t, partitions, func(i int) string { return fmt.Sprintf("tick-%d@%s", i, day) }) {
		customer := strings.TrimSuffix(key, "@"+day)
		out = append(out, fmt.Sprintf(`{"type":"OrderCreated","order":"ord-%s","customer":%q,"amount":100,"at":%q}`, customer, customer, at))
	}
	return out
}
