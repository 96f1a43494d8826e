package topotest_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/weftstream/weft/topology"
	"github.com/weftstream/weft/topotest"
)

// runCases runs the cases of yaml on top and returns the results by name.
func runCases(t *testing.T, top *topology.Topology, yaml string) map[string]topotest.Result {
	t.Helper()
	cases, err := topotest.ParseCases([]byte(yaml), "suppress.test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	results, err := topotest.Run(context.Background(), top, cases)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]topotest.Result{}
	for _, r := range results {
		byName[r.Case] = r
	}
	return byName
}

// Two suppress nodes below one table (one group, two coalescers, next to
// an immediate output of the same table): each flushes the latest total of
// every changed key once, in the order the keys first changed.
func TestTwoSuppressNodesInOneGroup(t *testing.T) {
	b := topology.New("sums")
	totals := b.Stream("amounts", topology.JSON{}).GroupByKey().Aggregate("totals",
		func() any { return int64(0) },
		func(_ string, v, agg any) (any, error) { return agg.(int64) + v.(int64), nil },
		topology.JSON{})
	totals.Suppress("totals-a", 10*time.Second).To("totals-a", topology.JSON{})
	totals.ToStream().To("totals-updates", topology.JSON{})
	totals.Suppress("totals-b", time.Minute).To("totals-b", topology.JSON{})
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	results := runCases(t, top, `
tests:
  - name: both flush
    input:
      - {topic: amounts, key: a, value: 1}
      - {topic: amounts, key: b, value: 2}
      - {topic: amounts, key: a, value: 3}
      - {topic: amounts, key: c, value: 4}
      - {topic: amounts, key: a, value: 5}
    expect:
      outputs:
        - {topic: totals-updates, key: a, value: 1}
        - {topic: totals-updates, key: b, value: 2}
        - {topic: totals-updates, key: a, value: 4}
        - {topic: totals-updates, key: c, value: 4}
        - {topic: totals-updates, key: a, value: 9}
        - {topic: totals-a, key: a, value: 9}
        - {topic: totals-a, key: b, value: 2}
        - {topic: totals-a, key: c, value: 4}
        - {topic: totals-b, key: a, value: 9}
        - {topic: totals-b, key: b, value: 2}
        - {topic: totals-b, key: c, value: 4}
      tables:
        - {table: totals, key: a, value: 9}
      rejected: 0
  - name: wrong order
    input:
      - {topic: amounts, key: a, value: 1}
      - {topic: amounts, key: b, value: 2}
      - {topic: amounts, key: a, value: 3}
    expect:
      outputs:
        - {topic: totals-b, key: b, value: 2}
        - {topic: totals-b, key: a, value: 4}
`)
	if r := results["both flush"]; !r.Passed {
		t.Errorf("case failed:\n%s", strings.Join(r.Failures, "\n"))
	}
	r := results["wrong order"]
	want := []string{
		`output totals-b[0]: key differs: want "b", got "a"`,
		"output totals-b[0]: value differs:\n  - want 2\n  + got  4",
		`output totals-b[1]: key differs: want "a", got "b"`,
		"output totals-b[1]: value differs:\n  - want 4\n  + got  2",
	}
	if r.Passed || strings.Join(r.Failures, "\n---\n") != strings.Join(want, "\n---\n") {
		t.Errorf("case \"wrong order\": passed %v, failures:\n%s\n\nwant:\n%s", r.Passed,
			strings.Join(r.Failures, "\n---\n"), strings.Join(want, "\n---\n"))
	}
}

// A suppress below a table join: the coalescer of the join's result table
// flushes the latest joined value of each key (an inner join: a key joins
// once both sides have it).
func TestSuppressAfterTableJoin(t *testing.T) {
	b := topology.New("bank")
	counts := b.Stream("payments", topology.JSON{}).GroupByKey().Count("counts")
	crm := b.Table("crm-table", topology.JSON{})
	counts.Join("with-crm", crm, func(_ string, n, c any) (any, error) {
		return map[string]any{"n": n, "crm": c}, nil
	}, topology.JSON{}).Suppress("with-crm-out", 10*time.Second).To("with-crm-out", topology.JSON{})
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	results := runCases(t, top, `
tests:
  - name: joined values, coalesced
    input:
      - {topic: payments, key: c1, value: {amount: 5}}
      - {topic: crm-table, key: c1, value: {name: Alice}}
      - {topic: payments, key: c1, value: {amount: 7}}
      - {topic: crm-table, key: c2, value: {name: Bob}}
      - {topic: payments, key: c3, value: {amount: 1}}
      - {topic: payments, key: c2, value: {amount: 2}}
      - {topic: crm-table, key: c1, value: {name: Alicia}}
    expect:
      outputs:
        - {topic: with-crm-out, key: c1, value: {n: 2, crm: {name: Alicia}}}
        - {topic: with-crm-out, key: c2, value: {n: 1, crm: {name: Bob}}}
      tables:
        - {table: with-crm, key: c3, value: null}
      rejected: 0
`)
	if r := results["joined values, coalesced"]; !r.Passed {
		t.Errorf("case failed:\n%s", strings.Join(r.Failures, "\n"))
	}
}
