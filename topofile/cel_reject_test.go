package topofile

import (
	"github.com/weftstream/weft/topology"

	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/tester"
	"github.com/weftstream/weft/processors"
)

// reject(reason) fails the evaluation with "rejected: <reason>"; the branch
// not taken is not evaluated.
func TestCELRejectFails(t *testing.T) {
	x, issues := compileCEL("value.amount > 0 ? value.amount : reject('amount ' + string(value.amount) + ' is not positive')", varsRecord, wantAny)
	if len(issues) > 0 {
		t.Fatalf("compile: %v", issues)
	}
	got, err := x.evalValue("k", map[string]any{"amount": int64(5)}, nil, nil, nil)
	if err != nil || got != int64(5) {
		t.Fatalf("valid record: %v, %v; want 5", got, err)
	}
	_, err = x.evalValue("k", map[string]any{"amount": int64(-3)}, nil, nil, nil)
	if err == nil {
		t.Fatal("reject did not fail the evaluation")
	}
	if want := "rejected: amount -3 is not positive"; !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q lacks %q", err, want)
	}
}

// reject fits every kind of expression: a predicate, a key, an aggregate's
// add (whose state decides), and an initial value.
func TestCELRejectInEveryPosition(t *testing.T) {
	pred, issues := compileCEL("value.ok || reject('not ok')", varsRecord, wantBool)
	if len(issues) > 0 {
		t.Fatalf("filter: %v", issues)
	}
	if ok, err := pred.evalBool("k", map[string]any{"ok": true}); !ok || err != nil {
		t.Fatalf("filter on ok: %v, %v", ok, err)
	}
	if _, err := pred.evalBool("k", map[string]any{"ok": false}); err == nil || !strings.Contains(err.Error(), "rejected: not ok") {
		t.Fatalf("filter on not ok: %v", err)
	}

	key, issues := compileCEL("has(value.id) ? value.id : reject('no id')", varsRecord, wantString)
	if len(issues) > 0 {
		t.Fatalf("key: %v", issues)
	}
	if _, err := key.evalString("k", map[string]any{}); err == nil || !strings.Contains(err.Error(), "rejected: no id") {
		t.Fatalf("key without id: %v", err)
	}

	add, issues := compileCEL("aggregate == null ? reject('unknown account') : aggregate + value", varsAggregate, wantAny)
	if len(issues) > 0 {
		t.Fatalf("aggregate: %v", issues)
	}
	agg := add.Aggregator()
	if _, err := agg("k", int64(1), nil); err == nil || !strings.Contains(err.Error(), "rejected: unknown account") {
		t.Fatalf("aggregate of an unknown key: %v", err)
	}
	if v, err := agg("k", int64(1), int64(41)); err != nil || v != int64(42) {
		t.Fatalf("aggregate of a known key: %v, %v", v, err)
	}

	init, issues := compileCEL("reject('no initial value')", varsNone, wantAny)
	if len(issues) > 0 {
		t.Fatalf("initial: %v", issues)
	}
	if _, err := init.constant(); err == nil || !strings.Contains(err.Error(), "rejected: no initial value") {
		t.Fatalf("initial: %v", err)
	}
}

// reject takes one string, checked when the expression is compiled.
func TestCELRejectTypeChecked(t *testing.T) {
	for _, text := range []string{"reject(1)", "reject()", "reject('a', 'b')"} {
		if _, issues := compileCEL(text, varsRecord, wantAny); len(issues) == 0 {
			t.Errorf("%s compiled", text)
		}
	}
	// A dyn argument is checked per record.
	x, issues := compileCEL("reject(value)", varsRecord, wantAny)
	if len(issues) > 0 {
		t.Fatalf("reject(value): %v", issues)
	}
	if _, err := x.evalValue("k", int64(1), nil, nil, nil); err == nil || strings.Contains(err.Error(), "rejected:") {
		t.Fatalf("reject(1) at run time: %v, want a type error", err)
	}
}

// In a topology file, a record whose aggregate calls reject goes to the
// dead-letter topic of its group and leaves the table as it was.
func TestCELRejectDeadLetters(t *testing.T) {
	f, err := Load("reject.yaml", []byte(`
app: ledger
streams:
  moves: {topic: moves, codec: json}
pipelines:
  - name: balances
    from: moves
    steps:
      - group_by_key: {}
      - aggregate:
          initial: "null"
          add: >-
            type(value.amount) != int ? reject('amount is not an integer') :
            (aggregate == null ? 0 : aggregate) + value.amount < 0 ? reject('insufficient funds') :
            (aggregate == null ? 0 : aggregate) + value.amount
          codec: json
`))
	if err != nil {
		t.Fatal(err)
	}
	c, err := topology.Compile(f.Topology)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Groups) != 1 {
		t.Fatalf("groups:\n%s", c)
	}
	g := c.Groups[0]
	tt := tester.New(t)
	dlq := tt.NewQueueTracker(string(processors.DeadLetterTopic(g.Name)))
	p, err := goka.NewProcessor(nil, g.Graph, goka.WithTester(tt))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.Run(ctx)
	for _, amount := range []any{10, -4, -7, "9", 1} {
		data, _ := json.Marshal(map[string]any{"amount": amount})
		tt.Consume("moves", "acc", data)
	}
	st, ok := tt.TableValue(goka.Table(g.Table), "acc").(*processors.Stored)
	if !ok || st.Value != int64(7) {
		t.Fatalf("balance %+v, want 7 (10 - 4 + 1)", st)
	}
	var reasons []string
	for {
		h, _, _, ok := dlq.NextRawWithHeaders()
		if !ok {
			break
		}
		reasons = append(reasons, string(h[processors.HeaderErrorMessage]))
	}
	if len(reasons) != 2 || !strings.Contains(reasons[0], "rejected: insufficient funds") ||
		!strings.Contains(reasons[1], "rejected: amount is not an integer") {
		t.Fatalf("dead letters %q, want insufficient funds and not an integer", reasons)
	}
	if n := g.Runtime.Tally().Rejected(); n != 2 {
		t.Fatalf("tally: %d rejected, want 2", n)
	}
}

// cel.bind names a value once for the rest of an expression.
func TestCELBind(t *testing.T) {
	f, err := Load("bind.yaml", []byte(`app: a
streams:
  in: {topic: in}
pipelines:
  - name: doubled
    from: in
    steps:
      - map_values: "cel.bind(x, value.n * 2, {'twice': x, 'four': x * 2})"
      - to: {topic: out}
`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := topology.Compile(f.Topology); err != nil {
		t.Fatal(err)
	}
}
