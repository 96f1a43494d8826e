package topofile

import (
	"github.com/weftstream/weft/topology"

	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
)

// The CEL hot path of the bank read model (testdata/cqrs/bank.yaml), the
// `add` of its aggregate compiled through the real loader, without Kafka,
// goka or the codecs: one event of testdata/bank/events.jsonl per op, the
// aggregate of its account the previous result (as the aggregate step
// passes it after decoding the stored value). bankAddGo is the same adder
// in Go (bench/topology_test.go's bankAdd), for comparison.
//
//	go test -run XXX -bench CELBankAdder -benchmem ./topology/
//	go test -run XXX -bench 'CELBankAdder/cel' -cpuprofile cpu.out -o topology.test ./topology/
//	go tool pprof -top -nodecount=40 topology.test cpu.out

const (
	perfBankFile   = "../testdata/cqrs/bank.yaml"
	perfBankEvents = "../testdata/bank/events.jsonl"
)

// perfEvent is one decoded event of events.jsonl.
type perfEvent struct {
	key   string
	value any
}

// bankAdder loads bank.yaml and returns the adder of its aggregate.
func bankAdder(tb testing.TB) topology.Aggregator {
	tb.Helper()
	f, err := LoadFile(perfBankFile)
	if err != nil {
		tb.Fatal(err)
	}
	var add topology.Aggregator
	for _, n := range f.Topology.Nodes {
		if n.Kind == topology.KindAggregate {
			if add != nil {
				tb.Fatalf("%s: more than one aggregate", perfBankFile)
			}
			add = n.Aggregator()
		}
	}
	if add == nil {
		tb.Fatalf("%s: no aggregate", perfBankFile)
	}
	return add
}

// bankEvents decodes events.jsonl with the JSON codec.
func bankEvents(tb testing.TB) []perfEvent {
	tb.Helper()
	data, err := os.ReadFile(perfBankEvents)
	if err != nil {
		tb.Fatal(err)
	}
	var out []perfEvent
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		v, err := topology.JSON{}.Decode(line)
		if err != nil {
			tb.Fatal(err)
		}
		key, _ := v.(map[string]any)["account"].(string)
		if key == "" {
			tb.Fatalf("event without account: %s", line)
		}
		out = append(out, perfEvent{key: key, value: v})
	}
	return out
}

// foldBank runs every event through add, in order, and returns the
// aggregates by account.
func foldBank(tb testing.TB, add topology.Aggregator, events []perfEvent) map[string]any {
	tb.Helper()
	state := map[string]any{}
	for i, e := range events {
		out, err := add(e.key, e.value, state[e.key])
		if err != nil {
			tb.Fatalf("event %d (%v): %v", i+1, e.value, err)
		}
		state[e.key] = out
	}
	return state
}

// The CEL adder and the Go one give the same read model.
func TestCELBankAdderMatchesGo(t *testing.T) {
	events := bankEvents(t)
	cel := foldBank(t, bankAdder(t), events)
	gov := foldBank(t, bankAddGo, events)
	if len(cel) != 300 || !reflect.DeepEqual(cel, gov) {
		t.Fatalf("CEL and Go read models differ (%d and %d accounts)", len(cel), len(gov))
	}
}

func BenchmarkCELBankAdder(b *testing.B) {
	events := bankEvents(b)
	for _, c := range []struct {
		name string
		add  topology.Aggregator
	}{{"cel", bankAdder(b)}, {"go", bankAddGo}} {
		b.Run(c.name, func(b *testing.B) {
			state := make(map[string]any, 300)
			j := 0
			for b.Loop() {
				if j == len(events) {
					clear(state)
					j = 0
				}
				e := events[j]
				out, err := c.add(e.key, e.value, state[e.key])
				if err != nil {
					b.Fatalf("event %d: %v", j+1, err)
				}
				state[e.key] = out
				j++
			}
		})
	}
}

// BenchmarkCELBankDeposit evaluates the adder on one Deposited event of an
// open account, the most frequent case: the whole chain of checks and a
// new map of 5 entries.
func BenchmarkCELBankDeposit(b *testing.B) {
	add := bankAdder(b)
	value := map[string]any{"type": "Deposited", "account": "acc-0001", "amount": int64(1250), "at": "2026-01-01T00:05:00Z"}
	agg := map[string]any{"account": "acc-0001", "owner": "Alice Smith", "balance": int64(100), "status": "open", "events": int64(3)}
	for b.Loop() {
		out, err := add("acc-0001", value, agg)
		if err != nil {
			b.Fatal(err)
		}
		if out.(map[string]any)["balance"] != int64(1350) {
			b.Fatalf("result %v", out)
		}
	}
}

// bankAddGo is the `add` of bank.yaml in Go (bench/topology_test.go).
func bankAddGo(key string, value, aggregate any) (any, error) {
	v, ok := value.(map[string]any)
	if !ok {
		return nil, errors.New("rejected: 1: not a topology.JSON object")
	}
	typ, ok := v["type"].(string)
	switch typ {
	case "AccountCreated", "Deposited", "Withdrawn", "Closed":
	default:
		ok = false
	}
	if !ok {
		return nil, errors.New("rejected: 2: unknown event type")
	}
	account, ok := v["account"].(string)
	if !ok || account == "" {
		return nil, errors.New("rejected: 3: missing account")
	}
	if account != key {
		return nil, errors.New("rejected: the account does not match the record key")
	}
	if typ == "AccountCreated" {
		if aggregate != nil {
			return nil, errors.New("rejected: 4: account already exists")
		}
		owner, ok := v["owner"]
		if !ok {
			owner = ""
		}
		return map[string]any{"account": account, "owner": owner, "balance": int64(0), "status": "open", "events": int64(1)}, nil
	}
	if aggregate == nil {
		return nil, errors.New("rejected: 5: unknown account")
	}
	cur, ok := aggregate.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("aggregate is a %T, not a map", aggregate)
	}
	if cur["status"] == "closed" {
		return nil, errors.New("rejected: 6: account closed")
	}
	events, _ := cur["events"].(int64)
	if typ == "Closed" {
		return map[string]any{"account": cur["account"], "owner": cur["owner"], "balance": cur["balance"],
			"status": "closed", "events": events + 1}, nil
	}
	amount, ok := v["amount"].(int64)
	if !ok || amount <= 0 {
		return nil, errors.New("rejected: 7: bad amount")
	}
	balance, _ := cur["balance"].(int64)
	if typ == "Withdrawn" {
		if amount > balance {
			return nil, errors.New("rejected: 8: insufficient funds")
		}
		balance -= amount
	} else {
		if balance > math.MaxInt64-amount {
			return nil, errors.New("integer overflow")
		}
		balance += amount
	}
	return map[string]any{"account": cur["account"], "owner": cur["owner"], "balance": balance,
		"status": "open", "events": events + 1}, nil
}

// The fast paths of cel.go (the caching view of map variables, the map
// literals built as map[string]any, the direct conversion of the
// interpreter's maps and lists) change no result: every expression below
// gives what the interpreter gives on its own (plain map activation, no
// decorator, celToGo of its result), value or error.
func TestCELFastPathsMatchInterpreter(t *testing.T) {
	value := map[string]any{
		"x": int64(1250), "s": "abc", "f": 1.5, "b": true, "n": nil,
		"items":  []any{int64(1), "two", map[string]any{"three": int64(3)}},
		"nested": map[string]any{"y": int64(7), "z": "zz"},
		"ts":     "2024-01-02T03:04:05Z",
	}
	aggregate := map[string]any{"account": "acc-1", "owner": "Ann", "balance": int64(300), "status": "open", "events": int64(4)}
	exprs := []string{
		// map literals with string keys
		`{'a': value.x, 'b': 1, 'c': 'const', 'd': value.s}`,
		`{'a': value.x, 'b': {'c': value.s, 'd': [value.f, 2]}}`,
		`{'a': optional.of(value.x)}.a.hasValue()`,
		`{'a': optional.none(), 'b': value.x}`,
		`{'a': optional.of(value.x), 'b': value.x}`,
		`{'t': type(value), 'b': value.x}`,
		`{'a': {1: value.x}}`,
		`{'a': {1: value.x}}.a[1]`,
		`{'a': value.x, 'b': value.s}.size()`,
		`'a' in {'a': value.x}`,
		`{'a': value.x} == {'a': value.x}`,
		`{'x': value.x} == {'x': 1250}`,
		`{?'a': value.?x, ?'m': value.?missing, 'b': value.s}`,
		`{'a': value.missing, 'b': 1}`,
		`{'a': reject('no'), 'b': value.x}`,
		`{'a': value.x, 'b': reject('late')}`,
		`{'a': value.items, 'b': [value.x, 2, value.s]}`,
		`{'k': key, 'ts': timestamp(value.ts), 'd': duration('1s') + duration(string(value.x) + 'ms'), 'by': bytes(value.s), 'u': uint(value.x), 'n': value.n}`,
		`{'k': key, 'ts': timestamp(value.ts)}.ts + duration('1h')`,
		`[1, 2].map(i, {'i': i, 'x': value.x})`,
		`cel.bind(m, {'a': value.x}, m.a + m.a)`,
		`{'v': value, 'w': value.nested}`,
		`{'a': value.x, 'a2': value.x + 1}.a2`,
		`{'a': 1, 'a': value.x}`,
		`{'l': [optional.none()], 'x': value.x}`,
		// the map variables
		`value`, `value.x + value.x`, `value.size()`, `'x' in value`, `'q' in value`, `1 in value`,
		`value.all(k, k != '')`, `value.filter(k, k.startsWith('n')).size()`,
		`value.exists(k, value[k] == 'abc')`,
		`value == value`, `value == {'x': 1}`, `value != null`, `type(value) == map`,
		`value['x']`, `value[key]`, `value[1]`, `value.missing`, `has(value.missing)`, `has(value.x)`,
		`has(value.nested.y)`, `value.nested.y`, `value.nested.missing`, `value.?nested.?y.orValue(0)`,
		`value.?missing.orValue('none')`, `value.items[2].three`, `value.items[5]`, `value.items.size()`,
		`string(value.x) + value.s`, `value.n == null`, `dyn(value).f * 2.0`, `value.b && value.x > 1000`,
		`key + key`, `aggregate == null ? 0 : aggregate.balance + value.x`,
		`aggregate.status == 'open' ? {'account': aggregate.account, 'owner': aggregate.owner, 'balance': aggregate.balance + value.x, 'events': aggregate.events + 1} : reject('closed')`,
		`aggregate == value`, `aggregate.size() + value.size()`, `{'v': aggregate}.v.owner`,
		`optional.of(value).value().x`, `[value, aggregate][1].owner`,
		`value.x.foo`, `value + 1`,
	}
	var (
		scalars = []any{nil, "str", int64(3), 2.5, true, []any{int64(1), "a"}, []byte("b"), uint64(9), map[string]any{}}
	)
	type input struct{ value, aggregate any }
	inputs := []input{{value, aggregate}, {value, nil}}
	for _, s := range scalars {
		inputs = append(inputs, input{s, s})
	}
	for round := range 2 { // the second round reuses pooled activations
		for _, text := range exprs {
			x, issues := compileCEL(text, varsAggregate, wantAny)
			if len(issues) > 0 {
				t.Fatalf("%s: %v", text, issues)
			}
			for _, in := range inputs {
				got, gotErr := x.evalValue("acc-1", in.value, nil, nil, in.aggregate)
				want, wantErr := referenceEval(t, text, "acc-1", in.value, in.aggregate)
				if (gotErr != nil) != (wantErr != nil) ||
					(gotErr != nil && strings.TrimPrefix(gotErr.Error(), "CEL "+quoteExpr(text)+": ") != wantErr.Error()) {
					t.Errorf("round %d: %s on %#v: error %v, the interpreter's %v", round, text, in.value, gotErr, wantErr)
					continue
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("round %d: %s on %#v: %#v, the interpreter's %#v", round, text, in.value, got, want)
				}
			}
		}
	}
}

// referenceEval evaluates text the interpreter's own way: no decorator, a
// map activation with the Go values.
func referenceEval(t *testing.T, text, key string, value, aggregate any) (any, error) {
	t.Helper()
	env, err := celEnv(varsAggregate)
	if err != nil {
		t.Fatal(err)
	}
	checked, iss := env.Compile(text)
	if iss != nil && iss.Err() != nil {
		t.Fatal(iss.Err())
	}
	prg, err := env.Program(checked)
	if err != nil {
		t.Fatal(err)
	}
	null := func(v any) any {
		if v == nil {
			return types.NullValue
		}
		return v
	}
	out, _, err := prg.Eval(map[string]any{"key": key, "value": null(value), "aggregate": null(aggregate)})
	if err != nil {
		return nil, err
	}
	if types.IsUnknownOrError(out) {
		return nil, fmt.Errorf("%v", out)
	}
	return referenceToGo(out)
}

// referenceToGo is celToGo as it was: iterator and Get, no fast path but
// the Go maps and lists that came in.
func referenceToGo(v ref.Val) (any, error) {
	switch x := v.(type) {
	case traits.Mapper:
		if m, ok := x.Value().(map[string]any); ok {
			return m, nil
		}
		out := map[string]any{}
		for it := x.Iterator(); it.HasNext() == types.True; {
			k := it.Next()
			ks, ok := k.(types.String)
			if !ok {
				return nil, fmt.Errorf("map key %v is a %s, not a string", k, k.Type().TypeName())
			}
			e, err := referenceToGo(x.Get(k))
			if err != nil {
				return nil, err
			}
			out[string(ks)] = e
		}
		return out, nil
	case traits.Lister:
		if l, ok := x.Value().([]any); ok {
			return l, nil
		}
		var out []any
		n := x.Size().(types.Int)
		for i := types.Int(0); i < n; i++ {
			e, err := referenceToGo(x.Get(i))
			if err != nil {
				return nil, err
			}
			out = append(out, e)
		}
		if out == nil {
			out = []any{}
		}
		return out, nil
	case *types.Optional:
		if !x.HasValue() {
			return nil, nil
		}
		return referenceToGo(x.GetValue())
	}
	return celToGo(v)
}

// A flat_map result refers to the record's value: it is converted before
// the activation goes back to the pool.
func TestCELFlatMapKeepsValues(t *testing.T) {
	x, issues := compileCEL(`[{'key': value.id, 'value': value}, {'key': key, 'value': {'n': value.n}}]`, varsRecord, wantList)
	if len(issues) > 0 {
		t.Fatal(issues)
	}
	fm := x.FlatMapper()
	for i := range 3 {
		v := map[string]any{"id": fmt.Sprint("id-", i), "n": int64(i)}
		kvs, err := fm("k", v)
		if err != nil {
			t.Fatal(err)
		}
		want := []topology.KeyValue{{Key: fmt.Sprint("id-", i), Value: v}, {Key: "k", Value: map[string]any{"n": int64(i)}}}
		if !reflect.DeepEqual(kvs, want) {
			t.Fatalf("%v, want %v", kvs, want)
		}
	}
}

// Evaluations running at once do not share their activations.
func TestCELConcurrentEvaluations(t *testing.T) {
	x, issues := compileCEL(`{'id': value.id, 'twice': value.n * 2, 'key': key}`, varsRecord, wantAny)
	if len(issues) > 0 {
		t.Fatal(issues)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				n := int64(g*10000 + i)
				k := fmt.Sprint("k", n)
				out, err := x.evalValue(k, map[string]any{"id": k, "n": n}, nil, nil, nil)
				want := map[string]any{"id": k, "twice": 2 * n, "key": k}
				if err != nil || !reflect.DeepEqual(out, want) {
					errs <- fmt.Errorf("%v, %v; want %v", out, err, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
