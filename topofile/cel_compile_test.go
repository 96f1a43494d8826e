package topofile

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/weftstream/weft/topology"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"gopkg.in/yaml.v3"
)

// The compiled form of CEL expressions (cel_compile.go) against cel-go's
// interpreter, the independent implementation: whenever the compiled form
// returns a value, the interpreter must return the same value (not an
// error). When the compiled form declines, the interpreter decides, so
// declining is always correct (only slower); the tests below also check
// that the expressions of the subset do not decline on valid input.

// diffResult is the outcome of evaluating one expression on one input
// both ways.
type diffResult struct {
	fast, fastOK bool // the compiled form exists; it returned a value
	fastVal      any
	interpVal    any
	interpErr    error
}

// evalBoth evaluates x on the input with the compiled form (as evalValue
// uses it) and with the interpreter alone.
func evalBoth(x *celExpr, key string, value, other, aggregate any) diffResult {
	var r diffResult
	if x.fast != nil {
		r.fast = true
		a := x.begin(key, value, other, nil, aggregate)
		v, ok := x.fast(a)
		r.fastOK = ok && storable(v)
		r.fastVal = v
		a.release()
	}
	a := x.begin(key, value, other, nil, aggregate)
	out, err := x.eval(a)
	if err == nil {
		r.interpVal, err = celToGo(out)
	}
	r.interpErr = err
	a.release()
	return r
}

var diffOpts = cmp.Options{cmpopts.EquateNaNs()}

// disagreement describes how the compiled form contradicts the
// interpreter on r, or is "".
func (r diffResult) disagreement() string {
	if !r.fastOK {
		return ""
	}
	if r.interpErr != nil {
		return fmt.Sprintf("compiled form returned %#v, the interpreter failed: %v", r.fastVal, r.interpErr)
	}
	if !cmp.Equal(r.fastVal, r.interpVal, diffOpts) {
		return fmt.Sprintf("compiled form returned %#v, the interpreter %#v", r.fastVal, r.interpVal)
	}
	return ""
}

// diffInputs are the values of value/other/aggregate the table test
// evaluates every expression on.
func diffInputs() []any {
	return []any{
		nil, true, false, int64(0), int64(1), int64(-3), int64(math.MaxInt64), int64(math.MinInt64),
		uint64(0), uint64(7), uint64(math.MaxUint64), 0.0, math.Copysign(0, -1), 1.5, -2.5, math.NaN(), math.Inf(1),
		9.223372036854775807e18, 1e300, "", "a", "acc-1", "héllo", " Ab\n", "12", "-1.5", "true", "\xffa",
		[]any{}, []any{int64(1), "a", nil}, []any{1.0, []any{int64(2)}},
		map[string]any{},
		map[string]any{"type": "Deposited", "account": "acc-1", "amount": int64(5)},
		map[string]any{"type": "Withdrawn", "account": "acc-1", "amount": 2.5, "owner": nil},
		map[string]any{"a": int64(1), "b": "x", "n": map[string]any{"a": []any{int64(1)}}},
		map[string]any{"a": 1.0, "b": "x", "n": nil},
		map[string]any{"balance": int64(math.MaxInt64), "events": int64(1), "status": "open"},
	}
}

// diffExprs cover every construct of the subset (and some outside it).
var diffExprs = []string{
	`null`, `true`, `1`, `1u`, `1.5`, `'s'`, `value`, `key`, `aggregate`,
	`value.a`, `value.n.a`, `value.n.a[0]`, `value['a']`, `value[0]`, `value[1]`, `value[-1]`,
	`has(value.a)`, `has(value.n.a)`, `value.?a.orValue(0)`, `value.?owner.orValue('')`,
	`[value, key, 1]`, `{'v': value, 'k': key}`, `{}`, `[]`, `{'t': type(value)}`, `[type(value)]`,
	`!value`, `-value`, `-value.a`, `value && true`, `value && false`, `false && value.zz`, `value.zz || true`,
	`value.zz && value.a == 1`, `value || aggregate`, `value ? 1 : 2`, `value.a ? 1 : reject('no')`,
	`value == aggregate`, `value != aggregate`, `value == 1`, `value == 1u`, `value == 1.0`, `value == null`,
	`value == key`, `value == [1, 'a', null]`, `value == {'a': 1.0, 'b': 'x', 'n': null}`, `type(value) == type(aggregate)`,
	`value < aggregate`, `value <= 1`, `value > 1u`, `value >= 1.5`, `value < 'b'`, `value > true`, `value.a < value.b`,
	`value + aggregate`, `value - aggregate`, `value * aggregate`, `value / aggregate`, `value % aggregate`,
	`value + 1`, `value - 1`, `value * 2`, `value / 2`, `value % 2`, `value + 1u`, `value - 1u`, `value / 0`, `value % 0`,
	`value + 0.5`, `value + 'x'`, `value + [1]`, `value.balance + 1`, `aggregate.balance - value.amount`,
	`value in [1, 'a', null]`, `value in aggregate`, `key in value`, `'a' in value`, `1 in value`,
	`type(value)`, `type(value) == map`, `type(value) != list`, `type(value) == int`, `type(value) == uint`,
	`type(value) == double`, `type(value) == string`, `type(value) == bool`, `type(value) == null_type`, `type(type(value)) == type`,
	`size(value)`, `value.size()`, `size(key)`, `value.startsWith('a')`, `value.endsWith('1')`, `value.contains('cc')`,
	`key.startsWith(value)`, `int(value)`, `uint(value)`, `double(value)`, `string(value)`, `bool(value)`,
	`value.lowerAscii()`, `value.upperAscii()`, `value.trim()`, `value.substring(1)`, `value.substring(1, 3)`,
	`key.substring(value)`, `reject('r')`, `reject(value)`,
	`[1, 2, value].all(x, x > 0)`, `value.all(x, x > 0)`, `value.exists(x, x == 1)`, `value.exists_one(x, x == 'a')`,
	`value.map(x, x + 1)`, `value.filter(x, x != null)`, `value.map(x, x > 0, x * 2)`, `cel.bind(y, value, y + y)`,
	`cel.bind(y, reject('r'), 1)`, `[[1], [2, 3]].all(l, l.exists(x, x == value))`, `value.all(x, x.a > 0)`,
	`value.exists(k, k == 'a')`, `[value, aggregate].map(x, x.map(y, [x, y]))`,
	`['a', 'acc-1'].exists(key, key == 'a')`, `cel.bind(key, value, key == 'a' && key != 'b')`,
	`[value].map(value, value == key)`, `['x', 'y'].map(aggregate, [aggregate, key == value])`,
	`value.split('a')`,
	`value.?a.?b.orValue(1)`,
}

func TestCELCompiledMatchesInterpreter(t *testing.T) {
	inputs := diffInputs()
	compiled := 0
	for _, text := range diffExprs {
		x, issues := compileCEL(text, varsAggregate, wantAny)
		if len(issues) > 0 {
			t.Fatalf("%s: %v", text, issues)
		}
		if x.fast != nil {
			compiled++
		}
		for _, v := range inputs {
			for _, agg := range []any{nil, int64(2), "acc-1", map[string]any{"a": int64(1)}, []any{int64(1)}, 0.5} {
				if d := evalBoth(x, "acc-1", v, nil, agg).disagreement(); d != "" {
					t.Errorf("%s on value %#v, aggregate %#v: %s", text, v, agg, d)
				}
			}
		}
	}
	// Every expression but the last two (an extension function, a
	// chained optional) is in the subset.
	if want := len(diffExprs) - 2; compiled != want {
		t.Errorf("%d of %d expressions compiled, want %d", compiled, len(diffExprs), want)
	}
}

// The add of bank.yaml is compiled, and on every event of events.jsonl
// the compiled form returns exactly when the interpreter does not reject.
func TestCELCompiledBankAdd(t *testing.T) {
	data, err := os.ReadFile(perfBankFile)
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Pipelines []struct {
			Steps []struct {
				Aggregate struct{ Add string }
			}
		}
	}
	if err := yaml.Unmarshal(data, &file); err != nil {
		t.Fatal(err)
	}
	add := file.Pipelines[0].Steps[1].Aggregate.Add
	x, issues := compileCEL(add, varsAggregate, wantAny)
	if len(issues) > 0 || x.fast == nil {
		t.Fatalf("the add of %s (%q) is not compiled: %v", perfBankFile, add, issues)
	}
	state := map[string]any{}
	accepted, rejected := 0, 0
	for i, e := range append(bankEvents(t), badBankEvents(t)...) {
		r := evalBoth(x, e.key, e.value, nil, state[e.key])
		if d := r.disagreement(); d != "" {
			t.Fatalf("event %d: %s", i+1, d)
		}
		if r.fastOK == (r.interpErr != nil) {
			t.Fatalf("event %d: compiled form returned: %v, interpreter error: %v", i+1, r.fastOK, r.interpErr)
		}
		if r.interpErr != nil {
			if !strings.Contains(r.interpErr.Error(), rejectedPrefix) {
				t.Fatalf("event %d: %v", i+1, r.interpErr)
			}
			rejected++
			continue
		}
		accepted++
		state[e.key] = r.interpVal
	}
	if accepted == 0 || rejected == 0 {
		t.Fatalf("%d events accepted, %d rejected: want some of each", accepted, rejected)
	}
}

// badBankEvents are the events of bad-events.jsonl that decode as JSON,
// keyed by their account ("" without one).
func badBankEvents(t *testing.T) []perfEvent {
	data, err := os.ReadFile("../testdata/bank/bad-events.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	var out []perfEvent
	for _, line := range strings.Split(string(data), "\n") {
		v, err := topology.JSON{}.Decode([]byte(line))
		if err != nil || strings.TrimSpace(line) == "" {
			continue
		}
		key := ""
		if m, ok := v.(map[string]any); ok {
			key, _ = m["account"].(string)
		}
		out = append(out, perfEvent{key: key, value: v})
	}
	return out
}

// exprGen builds a CEL expression and inputs from bytes (a fuzzer's, or
// pseudo-random ones).
type exprGen struct {
	data []byte
	i    int
	vars []string // the comprehension variables in scope
}

func (g *exprGen) pick(n int) int {
	if g.i >= len(g.data) {
		return 0
	}
	b := g.data[g.i]
	g.i++
	return int(b) % n
}

var (
	genLeaves = []string{
		`null`, `true`, `false`, `0`, `1`, `-1`, `7`, `9223372036854775807`, `-9223372036854775807`, `0u`, `1u`,
		`18446744073709551615u`, `0.0`, `-0.0`, `1.5`, `2.0`, `1e19`, `9.223372036854775807e18`, `''`, `'a'`, `'b'`,
		`key`, `value`, `aggregate`, `int`, `uint`, `double`, `string`, `bool`, `map`, `list`, `null_type`,
	}
	genBinary = []string{`&&`, `||`, `==`, `!=`, `<`, `<=`, `>`, `>=`, `+`, `-`, `*`, `/`, `%`, `in`}
	genFields = []string{`a`, `b`, `n`}
)

func (g *exprGen) expr(depth int) string {
	leaf := func() string {
		if len(g.vars) > 0 && g.pick(3) == 0 {
			return g.vars[g.pick(len(g.vars))]
		}
		return genLeaves[g.pick(len(genLeaves))]
	}
	if depth <= 0 {
		return leaf()
	}
	sub := func() string { return "(" + g.expr(depth-1) + ")" }
	switch g.pick(18) {
	case 0, 1, 2:
		return leaf()
	case 16:
		v := g.localName()
		rng := sub()
		g.vars = append(g.vars, v)
		defer func() { g.vars = g.vars[:len(g.vars)-1] }()
		macros := []string{"all", "exists", "exists_one", "map", "filter"}
		m := macros[g.pick(len(macros))]
		if m == "map" && g.pick(2) == 0 {
			return rng + ".map(" + v + ", " + g.expr(depth-1) + ", " + g.expr(depth-1) + ")"
		}
		return rng + "." + m + "(" + v + ", " + g.expr(depth-1) + ")"
	case 17:
		v := g.localName()
		init := g.expr(depth - 1)
		g.vars = append(g.vars, v)
		defer func() { g.vars = g.vars[:len(g.vars)-1] }()
		return "cel.bind(" + v + ", " + init + ", " + g.expr(depth-1) + ")"
	case 3:
		return "!" + sub()
	case 4:
		return "-" + sub()
	case 5, 6:
		return sub() + " " + genBinary[g.pick(len(genBinary))] + " " + sub()
	case 7:
		return sub() + " ? " + sub() + " : " + sub()
	case 8:
		return sub() + "." + genFields[g.pick(len(genFields))]
	case 9:
		return "has(" + sub() + "." + genFields[g.pick(len(genFields))] + ")"
	case 10:
		return sub() + ".?" + genFields[g.pick(len(genFields))] + ".orValue(" + g.expr(depth-1) + ")"
	case 11:
		return sub() + "[" + g.expr(depth-1) + "]"
	case 12:
		return "[" + g.expr(depth-1) + ", " + g.expr(depth-1) + "]"
	case 13:
		return "{'a': " + g.expr(depth-1) + ", 'n': " + g.expr(depth-1) + "}"
	case 14:
		fns := []string{"type", "size", "reject", "int", "uint", "double", "string", "bool"}
		return fns[g.pick(len(fns))] + sub()
	}
	methods := []string{
		"size()", "startsWith('a')", "endsWith('b')", "contains('')", "lowerAscii()", "upperAscii()", "trim()",
		"substring(1)", "substring(0, 1)", "substring(" + g.expr(0) + ")",
	}
	return sub() + "." + methods[g.pick(len(methods))]
}

// localName names a comprehension's variable: a new name, or one that
// hides a variable of the expression (key, value, aggregate).
func (g *exprGen) localName() string {
	if n := g.pick(4); n < 3 {
		return []string{"key", "value", "aggregate"}[n]
	}
	return fmt.Sprintf("v%d", len(g.vars))
}

func (g *exprGen) value(depth int) any {
	scalars := []any{
		nil, true, false, int64(0), int64(1), int64(-1), int64(math.MaxInt64), int64(math.MinInt64), uint64(0), uint64(1),
		uint64(math.MaxUint64), 0.0, math.Copysign(0, -1), 1.5, 1.0, math.NaN(), math.Inf(-1), 9.223372036854775807e18,
		1e19, "", "a", "b", "ab",
	}
	k := g.pick(len(scalars) + 2)
	if k < len(scalars) || depth <= 0 {
		return scalars[k%len(scalars)]
	}
	if k == len(scalars) {
		n := g.pick(3)
		l := make([]any, n)
		for i := range l {
			l[i] = g.value(depth - 1)
		}
		return l
	}
	m := map[string]any{}
	for _, f := range genFields {
		if g.pick(2) == 1 {
			m[f] = g.value(depth - 1)
		}
	}
	return m
}

// checkGenerated evaluates the expression and inputs built from data both
// ways; an expression that does not type-check is skipped.
// It reports whether the compiled form returned a value.
func checkGenerated(t *testing.T, data []byte) bool {
	g := &exprGen{data: data}
	text := g.expr(3)
	x, issues := compileCEL(text, varsAggregate, wantAny)
	if len(issues) > 0 {
		return false
	}
	key := []string{"", "a", "b"}[g.pick(3)]
	value, agg := g.value(2), g.value(2)
	r := evalBoth(x, key, value, nil, agg)
	if d := r.disagreement(); d != "" {
		t.Fatalf("%s on key %q, value %#v, aggregate %#v: %s", text, key, value, agg, d)
	}
	return r.fastOK
}

// Generated expressions, many of them, from a fixed seed.
func TestCELCompiledGenerated(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 64)
	const n = 5000
	returned := 0
	for range n {
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		if checkGenerated(t, data) {
			returned++
		}
	}
	// The check means something only if many generated expressions
	// type-check and evaluate without an error.
	if returned < n/10 {
		t.Fatalf("the compiled form returned a value for %d of %d generated expressions", returned, n)
	}
	t.Logf("the compiled form returned a value for %d of %d generated expressions", returned, n)
}

func FuzzCELCompiled(f *testing.F) {
	f.Add([]byte{5, 8, 22, 0, 2, 3, 7, 5, 2, 0})
	f.Add([]byte{7, 5, 21, 2, 24, 3, 1, 2, 4, 9, 9, 9})
	f.Add([]byte{13, 4, 3, 0, 10, 1, 22, 5, 0, 8, 2})
	f.Fuzz(func(t *testing.T, data []byte) { checkGenerated(t, data) })
}
