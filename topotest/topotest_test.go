package topotest_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lovoo/goka/codec"
	"github.com/weftstream/weft/topology"
	"github.com/weftstream/weft/topotest"
)

func field(v any, name string) any { return v.(map[string]any)[name] }

// shop builds a topology over orders {customer, segment, amount} with the
// Go DSL: a count and a sum (suppressed to a topic), a branch, a join and
// a string stream.
func shop(t *testing.T) *topology.Topology {
	t.Helper()
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
		topology.JSON{}).
		Suppress("totals-out", 10*time.Second).To("segment-totals", topology.JSON{})
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
	b.Stream("notes", new(codec.String)).
		MapValues("prefix", func(_ string, v any) (any, error) { return "note: " + v.(string), nil }).
		To("notes-out", new(codec.String))
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return top
}

func run(t *testing.T) map[string]topotest.Result {
	t.Helper()
	cases, err := topotest.LoadCases("testdata/shop.test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	results, err := topotest.Run(context.Background(), shop(t), cases)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != len(cases) {
		t.Fatalf("%d results for %d cases", len(results), len(cases))
	}
	byName := map[string]topotest.Result{}
	for _, r := range results {
		byName[r.Case] = r
	}
	return byName
}

func TestRun(t *testing.T) {
	results := run(t)

	for _, name := range []string{"valid orders", "no outputs at all", "bad amounts go to the dead-letter topic"} {
		r := results[name]
		if !r.Passed || len(r.Failures) > 0 {
			t.Errorf("case %q failed:\n%s", name, strings.Join(r.Failures, "\n"))
		}
	}

	r := results["wrong expectations"]
	if r.Passed {
		t.Fatal(`case "wrong expectations" passed`)
	}
	want := []string{
		"output enriched: got 3 records, want 2",
		"output enriched[0]: value differs:\n" +
			`  - want {"amount":150,"name":"Alice"}` + "\n" +
			`  + got  {"amount":150,"name":"unknown"}` + "\n" +
			`    name: want "Alice", got "unknown"`,
		`output enriched[1]: key differs: want "c3", got "c2"`,
		`output enriched[2]: unexpected: key "c2", value {"amount":7,"name":"unknown"}`,
		"output big-orders: got 1 records, want 2",
		`output big-orders[0]: header source: want "web", got none`,
		`output big-orders[1]: missing: want key "c9", value {"big":true,"customer":"c9"}`,
		"table orders-per-customer[c1]: value differs:\n  - want 2\n  + got  1",
		"table orders-per-customer[c9]: no value, want 1",
		"table segment-totals[retail]: want no value, got 162",
		"rejected: got 0 records, want 1",
	}
	if got := strings.Join(r.Failures, "\n---\n"); got != strings.Join(want, "\n---\n") {
		t.Errorf("failures:\n%s\n\nwant:\n%s", got, strings.Join(want, "\n---\n"))
	}
}

func TestRejectedDetails(t *testing.T) {
	cases, err := topotest.ParseCases([]byte(`
tests:
  - name: two bad records
    input:
      - {topic: orders, key: c3, value: {customer: c3, segment: b2b, amount: lots}}
      - {topic: orders, key: c4, value: {customer: c4, segment: b2b}}
    expect:
      rejected: 1
`), "inline.test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	results, err := topotest.Run(context.Background(), shop(t), cases)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(results[0].Failures, "\n")
	for _, want := range []string{
		"rejected: got 2 records, want 1:\n" +
			`  orders@0 key "c3": filter: filter "valid": amount lots is not an integer` + "\n" +
			`  orders@1 key "c4": filter: filter "valid": amount <nil> is not an integer`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("failures lack %q:\n%s", want, got)
		}
	}
}

func TestRunErrors(t *testing.T) {
	cases, err := topotest.ParseCases([]byte(`
tests:
  - name: typos
    input:
      - {topic: order, key: c1, value: {amount: 1}}
    expect:
      outputs:
        - {topic: enrich, key: c1, value: 1}
      tables:
        - {table: per-customer, key: c1, value: 1}
`), "typos.test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, err = topotest.Run(context.Background(), shop(t), cases)
	if err == nil {
		t.Fatal("Run accepted unknown topics and tables")
	}
	for _, want := range []string{
		`typos.test.yaml:5:9: test case "typos": input[0]: topology shop reads no stream or table "order" (streams: notes, orders; tables: crm-table)`,
		`typos.test.yaml:8:11: test case "typos": outputs[0]: topology shop writes no topic "enrich" (outputs: big-orders, enriched, notes-out, segment-totals)`,
		`typos.test.yaml:10:11: test case "typos": tables[0]: topology shop has no table "per-customer" (tables: orders-per-customer, segment-totals)`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestLoadCasesErrors(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"tests: {}", "x.yaml:1:8: tests: want a list of test cases, got a mapping"},
		{"tset: []", `x.yaml:1:1: unknown field "tset" in test file (known: tests)`},
		{"tests:\n  - input: []", `x.yaml:2:5: test case without name`},
		{"tests:\n  - name: a\n    inputs: []", `x.yaml:3:5: unknown field "inputs" in test case (known: name, input, expect)`},
		{"tests:\n  - name: a\n  - name: a", `x.yaml:3:5: test case "a" is defined twice (first at x.yaml:2:5)`},
		{"tests:\n  - name: a\n    input:\n      - {key: k}", `x.yaml:4:9: test case "a": input[0] without topic`},
		{"tests:\n  - name: a\n    input:\n      - {topic: t, timestamp: yesterday}", `x.yaml:4:31: test case "a": input[0]: timestamp "yesterday" is not RFC 3339`},
		{"tests:\n  - name: a\n    expect: {rejected: some}", `x.yaml:3:24: test case "a": rejected: want a number of records`},
		{"tests:\n  - name: a\n    expect:\n      outputs:\n        - {topic: t, timestamp: 2026-01-01T00:00:00Z}", `x.yaml:5:22: unknown field "timestamp" in test case "a": outputs[0] (known: topic, key, value, headers)`},
		{"tests: [", "x.yaml:2:1: YAML: did not find expected node content"},
	} {
		_, err := topotest.ParseCases([]byte(tc.yaml), "x.yaml")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.yaml, err, tc.want)
		}
	}
}

func TestLoadCasesValues(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "v.test.yaml")
	err := os.WriteFile(path, []byte(`
base: &base {customer: c1, amount: 3}
tests:
  - name: values
    input:
      - topic: orders
        key: 42
        value: {<<: *base, amount: 150, tags: [a, 1, 2.5, true, null], when: 2026-01-05}
        headers: {traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
        timestamp: 2026-01-05T10:00:00Z
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := topotest.LoadCases(path); err == nil || !strings.Contains(err.Error(), `unknown field "base"`) {
		t.Fatalf("error %v, want unknown field base", err)
	}
	cases, err := topotest.ParseCases([]byte(`
tests:
  - &c
    name: values
    input:
      - topic: orders
        key: 42
        value: {customer: c1, amount: 150, tags: [a, 1, 2.5, true, null], when: 2026-01-05}
        headers: {source: web}
        timestamp: 2026-01-05T10:00:00Z
`), "v.yaml")
	if err != nil {
		t.Fatal(err)
	}
	in := cases[0].Inputs[0]
	if in.Key != "42" || in.Headers["source"] != "web" || !in.Timestamp.Equal(time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("record %+v", in)
	}
	got := fmt.Sprintf("%#v", in.Value)
	want := `map[string]interface {}{"amount":150, "customer":"c1", "tags":[]interface {}{"a", 1, 2.5, true, interface {}(nil)}, "when":"2026-01-05"}`
	if got != want {
		t.Errorf("value\n%s\nwant\n%s", got, want)
	}
	if _, ok := in.Value.(map[string]any)["amount"].(int64); !ok {
		t.Errorf("amount is %T, want int64", in.Value.(map[string]any)["amount"])
	}
}

func TestNoOutputsExpected(t *testing.T) {
	rejected := 0
	cases := []topotest.Case{{
		Name: "built in Go",
		Inputs: []topotest.Record{
			{Topic: "notes", Key: "n1", Value: "hello"},
		},
		Expect: topotest.Expect{Outputs: []topotest.Record{}, Rejected: &rejected},
	}}
	results, err := topotest.Run(context.Background(), shop(t), cases)
	if err != nil {
		t.Fatal(err)
	}
	want := "output notes-out: got 1 records, want 0\n" + `output notes-out[0]: unexpected: key "n1", value "note: hello"`
	if got := strings.Join(results[0].Failures, "\n"); results[0].Passed || got != want {
		t.Errorf("failures:\n%s\nwant:\n%s", got, want)
	}
}
