package topofile

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"cel.dev/cel-go/ext"
	"cel.dev/cel-go/interpreter"
	"github.com/weftstream/weft/topology"
)

// CEL expressions of topology files.
//
// Every expression sees `key` (string) and `value` (dyn); a join also sees
// `other`, a reduce `current`, an aggregate's add `aggregate` (all dyn); an
// aggregate's initial value sees nothing. Expressions are compiled,
// type-checked and planned once, when the file is loaded. An expression of
// the subset of cel_compile.go is also compiled to Go closures, which
// evaluate a record first; whenever they cannot return the value (every
// error, every value outside the subset), and for the other expressions,
// the record is evaluated by cel-go's interpreter against a small pooled
// activation struct (no reflection, no map), and the result is converted
// back to the plain Go values the codecs use (map[string]any, []any,
// string, int64, float64, bool, nil).
//
// The hot path of an expression such as the add of testdata/cqrs/bank.yaml
// is reading fields of value/aggregate and building a map literal. A
// map[string]any variable is seen through a view (inputMap) that converts
// each field it reads once per evaluation, and a map literal with string
// keys builds the map[string]any of the result directly (goMapLiteral), so
// that the result needs no second conversion. Both behave exactly as the
// interpreter's own maps (TestCELFastPathsMatchInterpreter).
//
// Besides the standard library, expressions have the string and math
// extensions (lowerAscii, split, math.greatest, ...), optional values
// (value.?amount.orValue(0)) and numeric comparisons across int, uint and
// double (value.amount > 0 holds for 1.5).
//
// One weft function is added: reject(reason string) -> dyn. Its
// evaluation fails with the error "rejected: <reason>", so the record that
// evaluated it is rejected like any record whose expression fails: it goes
// to the dead-letter topic of its group (weft.error.message names the
// reason) and changes no state. It lets an expression enforce the rules of
// a domain, including rules that depend on state, e.g. an aggregate's add:
//
//	aggregate == null ? reject('unknown account') : {...}
//
// Only the branch of a conditional that is taken is evaluated, so
// `cond ? value : reject('why')` rejects exactly the records for which cond
// is false. Its result type is dyn so that it fits either branch of a
// conditional.

// celVars names the set of variables an expression sees.
type celVars int

const (
	varsRecord    celVars = iota // key, value
	varsJoin                     // key, value, other
	varsReduce                   // key, current, value
	varsAggregate                // key, value, aggregate
	varsNone                     // nothing: an aggregate's initial value
	numCELVars
)

// celWant is the result type an expression must have.
type celWant int

const (
	wantAny celWant = iota
	wantBool
	wantString
	wantList
	wantTime // an event time: see evalTime
)

func (w celWant) String() string {
	switch w {
	case wantBool:
		return "bool"
	case wantString:
		return "string"
	case wantList:
		return "list"
	case wantTime:
		// As in "the expression must return a %s".
		return "timestamp, an int (milliseconds since the Unix epoch) or an RFC 3339 string"
	}
	return "any"
}

var celEnvs struct {
	once sync.Once
	envs [numCELVars]*cel.Env
	err  error
}

// celEnv returns the (shared, immutable) environment of a variable set.
func celEnv(v celVars) (*cel.Env, error) {
	celEnvs.once.Do(func() {
		for i := range celEnvs.envs {
			var extra []string
			switch celVars(i) {
			case varsJoin:
				extra = []string{"other"}
			case varsReduce:
				extra = []string{"current"}
			case varsAggregate:
				extra = []string{"aggregate"}
			}
			opts := []cel.EnvOption{
				ext.Strings(), ext.Math(), ext.Bindings(), cel.OptionalTypes(),
				cel.CrossTypeNumericComparisons(true),
				rejectFunction,
			}
			if celVars(i) != varsNone {
				opts = append(opts, cel.Variable("key", cel.StringType), cel.Variable("value", cel.DynType))
			}
			for _, name := range extra {
				opts = append(opts, cel.Variable(name, cel.DynType))
			}
			env, err := cel.NewEnv(opts...)
			if err != nil {
				celEnvs.err = fmt.Errorf("CEL environment: %w", err)
				return
			}
			celEnvs.envs[i] = env
		}
	})
	if celEnvs.err != nil {
		return nil, celEnvs.err
	}
	return celEnvs.envs[v], nil
}

// rejectedPrefix starts the error of reject(reason): "rejected: <reason>".
const rejectedPrefix = "rejected: "

// rejectFunction declares reject(reason string) -> dyn, whose evaluation
// is the error "rejected: <reason>" (see the comment at the top of this file).
var rejectFunction = cel.Function("reject",
	cel.Overload("reject_string", []*cel.Type{cel.StringType}, cel.DynType,
		cel.UnaryBinding(func(reason ref.Val) ref.Val {
			s, ok := reason.(types.String)
			if !ok {
				return types.MaybeNoSuchOverloadErr(reason)
			}
			return types.NewErr("%s%s", rejectedPrefix, string(s))
		})))

// celIssue is a compilation problem of an expression, at a position inside
// the expression (line 1-based, column 0-based, both 0 when unknown).
type celIssue struct {
	line, col int
	msg       string
}

// celExpr is a compiled expression.
type celExpr struct {
	text    string
	prg     cel.Program
	want    celWant
	adapter types.Adapter
	// fast is the expression compiled to closures (cel_compile.go), nil
	// when it is outside their subset; slots is the number of its local
	// variables.
	fast  cnode
	slots int
}

// compileCEL parses, checks and plans text. The result must have type want
// (or dyn, checked again per record).
func compileCEL(text string, vars celVars, want celWant) (*celExpr, []celIssue) {
	env, err := celEnv(vars)
	if err != nil {
		return nil, []celIssue{{msg: err.Error()}}
	}
	checked, iss := env.Compile(text)
	if iss != nil && iss.Err() != nil {
		var out []celIssue
		for _, e := range iss.Errors() {
			msg := strings.TrimSuffix(e.Message, " (in container '')")
			out = append(out, celIssue{line: e.Location.Line(), col: e.Location.Column(), msg: msg})
		}
		if len(out) == 0 {
			out = append(out, celIssue{msg: iss.Err().Error()})
		}
		return nil, out
	}
	if t := checked.OutputType(); !resultTypeOK(t, want) {
		return nil, []celIssue{{msg: fmt.Sprintf("the expression must return a %s, not %s", want, t)}}
	}
	adapter := env.CELTypeAdapter()
	opts := []cel.ProgramOption{cel.EvalOptions(cel.OptOptimize)}
	if ids := stringKeyMaps(checked.NativeRep().Expr()); len(ids) > 0 {
		opts = append(opts, cel.CustomDecoratorV2(goMapLiterals(ids, adapter)))
	}
	prg, err := env.Program(checked, opts...)
	if err != nil {
		return nil, []celIssue{{msg: err.Error()}}
	}
	x := &celExpr{text: text, prg: prg, want: want, adapter: adapter}
	x.fast, x.slots = compileFast(checked)
	return x, nil
}

// resultTypeOK reports whether an expression of static type t may produce
// a value of the wanted type.
func resultTypeOK(t *cel.Type, want celWant) bool {
	if want == wantAny || t == nil || t.IsDyn() || t.Kind() == types.AnyKind || t.Kind() == types.ErrorKind {
		return true
	}
	switch want {
	case wantBool:
		return t.Kind() == types.BoolKind
	case wantString:
		return t.Kind() == types.StringKind
	case wantList:
		return t.Kind() == types.ListKind
	case wantTime:
		switch t.Kind() {
		case types.TimestampKind, types.IntKind, types.StringKind:
			return true
		}
		return false
	}
	return true
}

// activation binds the variables of one evaluation without reflection.
// Activations are pooled: one is taken for an evaluation and put back once
// its result has been converted to Go values (a result may refer to the
// views of the activation until then).
type activation struct {
	adapter types.Adapter
	key     string
	keyVal  ref.Val // types.String(key), made on first use
	keyAny  any     // key as an any, for the compiled form, made on first use
	// locals are the local variables of the compiled form.
	locals []localVal
	// vars are value, other, current and aggregate.
	vars [4]celVar
}

const (
	varValue = iota
	varOther
	varCurrent
	varAggregate
)

// celVar is one variable of an activation: its Go value and, once the
// expression used it, what ResolveName returns for it.
type celVar struct {
	raw      any
	resolved any
	done     bool
	// view is the CEL map of raw when raw is a map[string]any.
	view inputMap
}

// resolve returns what the interpreter sees for the variable: a
// map[string]any as a caching map view, a scalar converted once, null for
// nil; anything else as is (converted by the interpreter, as before).
func (v *celVar) resolve(adapter types.Adapter) any {
	if v.done {
		return v.resolved
	}
	var r any
	switch x := v.raw.(type) {
	case nil:
		r = types.NullValue
	case map[string]any:
		v.view.m, v.view.adapter = x, adapter
		r = &v.view
	case string:
		r = types.String(x)
	case int64:
		r = types.Int(x)
	case float64:
		r = types.Double(x)
	case bool:
		r = types.Bool(x)
	default:
		r = v.raw
	}
	v.resolved, v.done = r, true
	return r
}

// ResolveName implements interpreter.Activation.
func (a *activation) ResolveName(name string) (any, bool) {
	switch name {
	case "key":
		if a.keyVal == nil {
			a.keyVal = types.String(a.key)
		}
		return a.keyVal, true
	case "value":
		return a.vars[varValue].resolve(a.adapter), true
	case "other":
		return a.vars[varOther].resolve(a.adapter), true
	case "current":
		return a.vars[varCurrent].resolve(a.adapter), true
	case "aggregate":
		return a.vars[varAggregate].resolve(a.adapter), true
	}
	return nil, false
}

// Parent implements interpreter.Activation.
func (a *activation) Parent() interpreter.Activation { return nil }

var activations = sync.Pool{New: func() any { return new(activation) }}

// begin takes an activation for one evaluation of e; release it with
// release once the result has been converted.
func (e *celExpr) begin(key string, value, other, current, aggregate any) *activation {
	a := activations.Get().(*activation)
	a.adapter, a.key = e.adapter, key
	a.vars[varValue].raw = value
	a.vars[varOther].raw = other
	a.vars[varCurrent].raw = current
	a.vars[varAggregate].raw = aggregate
	if e.slots > 0 {
		if cap(a.locals) < e.slots {
			a.locals = make([]localVal, e.slots)
		}
		a.locals = a.locals[:e.slots]
	}
	return a
}

// release clears a (it holds no record after) and puts it back in the pool.
func (a *activation) release() {
	a.adapter, a.key, a.keyVal, a.keyAny = nil, "", nil, nil
	clear(a.locals)
	a.locals = a.locals[:0]
	for i := range a.vars {
		v := &a.vars[i]
		v.raw, v.resolved, v.done = nil, nil, false
		v.view.reset()
	}
	activations.Put(a)
}

// eval evaluates the expression against a; the error names the expression.
func (e *celExpr) eval(a *activation) (ref.Val, error) {
	out, _, err := e.prg.Eval(a)
	if err != nil {
		return nil, e.errorf("%v", err)
	}
	if types.IsUnknownOrError(out) {
		return nil, e.errorf("%v", out)
	}
	return out, nil
}

func (e *celExpr) errorf(format string, args ...any) error {
	return fmt.Errorf("CEL %s: %s", quoteExpr(e.text), fmt.Sprintf(format, args...))
}

// quoteExpr quotes an expression for an error message, shortened.
func quoteExpr(s string) string {
	const max = 60
	if utf8.RuneCountInString(s) > max {
		r := []rune(s)
		s = string(r[:max]) + "..."
	}
	return fmt.Sprintf("%q", s)
}

func (e *celExpr) wrongType(want string, got ref.Val) error {
	return e.errorf("returned a %s, not a %s", got.Type().TypeName(), want)
}

// evalBool evaluates a predicate.
func (e *celExpr) evalBool(key string, value any) (bool, error) {
	a := e.begin(key, value, nil, nil, nil)
	defer a.release()
	if e.fast != nil {
		if v, ok := e.fast(a); ok {
			if b, ok := v.(bool); ok {
				return b, nil
			}
		}
	}
	out, err := e.eval(a)
	if err != nil {
		return false, err
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, e.wrongType("bool", out)
	}
	return bool(b), nil
}

// evalString evaluates a key expression.
func (e *celExpr) evalString(key string, value any) (string, error) {
	a := e.begin(key, value, nil, nil, nil)
	defer a.release()
	if e.fast != nil {
		if v, ok := e.fast(a); ok {
			if s, ok := v.(string); ok {
				return s, nil
			}
		}
	}
	out, err := e.eval(a)
	if err != nil {
		return "", err
	}
	s, ok := out.(types.String)
	if !ok {
		return "", e.wrongType("string", out)
	}
	return string(s), nil
}

// evalTime evaluates an event-time expression (wantTime): a timestamp, an
// int (milliseconds since the Unix epoch) or a string (RFC 3339, with or
// without fractional seconds), as a time in UTC.
func (e *celExpr) evalTime(key string, value any) (time.Time, error) {
	a := e.begin(key, value, nil, nil, nil)
	defer a.release()
	out, err := e.eval(a)
	if err != nil {
		return time.Time{}, err
	}
	switch x := out.(type) {
	case types.Timestamp:
		return x.Time.UTC(), nil
	case types.Int:
		return time.UnixMilli(int64(x)).UTC(), nil
	case types.String:
		t, err := time.Parse(time.RFC3339Nano, string(x))
		if err != nil {
			return time.Time{}, e.errorf("returned %s, not an RFC 3339 time", quoteExpr(string(x)))
		}
		return t.UTC(), nil
	}
	return time.Time{}, e.wrongType("timestamp, int or string", out)
}

// evalValue evaluates an expression to a plain Go value.
func (e *celExpr) evalValue(key string, value, other, current, aggregate any) (any, error) {
	a := e.begin(key, value, other, current, aggregate)
	defer a.release()
	if e.fast != nil {
		if v, ok := e.fast(a); ok && storable(v) {
			return v, nil
		}
	}
	out, err := e.eval(a)
	if err != nil {
		return nil, err
	}
	v, err := celToGo(out)
	if err != nil {
		return nil, e.errorf("%v", err)
	}
	return v, nil
}

// Predicate returns the expression as a Predicate.
func (e *celExpr) Predicate() topology.Predicate { return e.evalBool }

// ValueMapper returns the expression as a ValueMapper.
func (e *celExpr) ValueMapper() topology.ValueMapper {
	return func(k string, v any) (any, error) { return e.evalValue(k, v, nil, nil, nil) }
}

// KeySelector returns the expression as a KeySelector.
func (e *celExpr) KeySelector() topology.KeySelector { return e.evalString }

// keyValueMapper combines a key and a value expression (map).
func keyValueMapper(key, value *celExpr) topology.KeyValueMapper {
	return func(k string, v any) (string, any, error) {
		nk, err := key.evalString(k, v)
		if err != nil {
			return "", nil, err
		}
		nv, err := value.evalValue(k, v, nil, nil, nil)
		if err != nil {
			return "", nil, err
		}
		return nk, nv, nil
	}
}

// FlatMapper returns the expression as a FlatMapper: it must return a list
// of maps {'key': string, 'value': any}.
func (e *celExpr) FlatMapper() topology.FlatMapper {
	return func(k string, v any) ([]topology.KeyValue, error) {
		a := e.begin(k, v, nil, nil, nil)
		defer a.release()
		out, err := e.eval(a)
		if err != nil {
			return nil, err
		}
		list, ok := out.(traits.Lister)
		if !ok {
			return nil, e.wrongType("list", out)
		}
		n, ok := list.Size().(types.Int)
		if !ok {
			return nil, e.errorf("list without a size")
		}
		kvs := make([]topology.KeyValue, 0, int(n))
		for i := types.Int(0); i < n; i++ {
			m, ok := list.Get(i).(traits.Mapper)
			if !ok {
				return nil, e.errorf("element %d is not a map {'key': string, 'value': any}", i)
			}
			rk, found := m.Find(types.String("key"))
			if !found {
				return nil, e.errorf("element %d has no 'key'", i)
			}
			sk, ok := rk.(types.String)
			if !ok {
				return nil, e.errorf("element %d: 'key' is a %s, not a string", i, rk.Type().TypeName())
			}
			var val any
			if rv, found := m.Find(types.String("value")); found {
				if val, err = celToGo(rv); err != nil {
					return nil, e.errorf("element %d: %v", i, err)
				}
			}
			kvs = append(kvs, topology.KeyValue{Key: string(sk), Value: val})
		}
		return kvs, nil
	}
}

// ValueJoiner returns the expression as a ValueJoiner (with other).
func (e *celExpr) ValueJoiner() topology.ValueJoiner {
	return func(k string, v, other any) (any, error) { return e.evalValue(k, v, other, nil, nil) }
}

// Reducer returns the expression as a Reducer (with current).
func (e *celExpr) Reducer() topology.Reducer {
	return func(k string, current, v any) (any, error) { return e.evalValue(k, v, nil, current, nil) }
}

// Aggregator returns the expression as an Aggregator (with aggregate).
func (e *celExpr) Aggregator() topology.Aggregator {
	return func(k string, v, agg any) (any, error) { return e.evalValue(k, v, nil, nil, agg) }
}

// constant evaluates an expression without variables (an initial value).
func (e *celExpr) constant() (any, error) {
	out, _, err := e.prg.Eval(interpreter.EmptyActivation())
	if err != nil {
		return nil, err
	}
	if types.IsUnknownOrError(out) {
		return nil, fmt.Errorf("%v", out)
	}
	return celToGo(out)
}

// initializer returns a fresh copy of v for every key.
func initializer(v any) topology.Initializer {
	return func() any { return copyValue(v) }
}

func copyValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = copyValue(e)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = copyValue(e)
		}
		return l
	}
	return v
}

// maxDepth bounds the nesting of converted values.
const maxDepth = 1000

// celToGo converts a CEL value to plain Go values: null → nil, bool,
// int → int64, uint → uint64, double → float64, string, bytes → []byte,
// list → []any, map → map[string]any (keys must be strings), timestamp →
// time.Time, duration → time.Duration.
func celToGo(v ref.Val) (any, error) { return celToGoDepth(v, 0, false) }

// celToGoDepth converts v at nesting depth; strict refuses the values whose
// Go value does not come back as the same CEL value (optionals), for
// goMapLiteral.
func celToGoDepth(v ref.Val, depth int, strict bool) (any, error) {
	if depth > maxDepth {
		return nil, errors.New("value nested too deeply")
	}
	switch x := v.(type) {
	case nil:
		return nil, nil
	case types.Null:
		return nil, nil
	case types.Bool:
		return bool(x), nil
	case types.Int:
		return int64(x), nil
	case types.Uint:
		return uint64(x), nil
	case types.Double:
		return float64(x), nil
	case types.String:
		return string(x), nil
	case types.Bytes:
		return []byte(x), nil
	case types.Timestamp:
		return x.Time, nil
	case types.Duration:
		return x.Duration, nil
	case *types.Err:
		return nil, x
	case *types.Optional:
		if strict {
			return nil, errors.New("an optional value")
		}
		if !x.HasValue() {
			return nil, nil
		}
		return celToGoDepth(x.GetValue(), depth+1, strict)
	case traits.Mapper:
		switch m := x.Value().(type) {
		case map[string]any:
			// A map that came in (part of value, other, ...) or a
			// goMapLiteral is returned as is: it holds plain Go values.
			return m, nil
		case map[ref.Val]ref.Val:
			// The interpreter's map literal: no iterator, no lookups.
			out := make(map[string]any, len(m))
			for k, e := range m {
				ks, ok := k.(types.String)
				if !ok {
					return nil, fmt.Errorf("map key %v is a %s, not a string", k, k.Type().TypeName())
				}
				g, err := celToGoDepth(e, depth+1, strict)
				if err != nil {
					return nil, err
				}
				out[string(ks)] = g
			}
			return out, nil
		}
		out := map[string]any{}
		it := x.Iterator()
		for it.HasNext() == types.True {
			k := it.Next()
			ks, ok := k.(types.String)
			if !ok {
				return nil, fmt.Errorf("map key %v is a %s, not a string", k, k.Type().TypeName())
			}
			e, err := celToGoDepth(x.Get(k), depth+1, strict)
			if err != nil {
				return nil, err
			}
			out[string(ks)] = e
		}
		return out, nil
	case traits.Lister:
		switch l := x.Value().(type) {
		case []any:
			return l, nil
		case []ref.Val:
			out := make([]any, len(l))
			for i, e := range l {
				g, err := celToGoDepth(e, depth+1, strict)
				if err != nil {
					return nil, err
				}
				out[i] = g
			}
			return out, nil
		}
		n, ok := x.Size().(types.Int)
		if !ok {
			return nil, errors.New("list without a size")
		}
		out := make([]any, 0, int(n))
		for i := types.Int(0); i < n; i++ {
			e, err := celToGoDepth(x.Get(i), depth+1, strict)
			if err != nil {
				return nil, err
			}
			out = append(out, e)
		}
		return out, nil
	}
	if types.IsUnknown(v) {
		return nil, fmt.Errorf("unknown value %v", v)
	}
	return nil, fmt.Errorf("cannot use a CEL %s as a value", v.Type().TypeName())
}

// cel compiles the expression of e, reporting its problems at their
// position in the file.
func (l *loader) cel(e kv, what string, vars celVars, want celWant) *celExpr {
	text, ok := l.str(e, what)
	if !ok {
		return nil
	}
	x, issues := compileCEL(text, vars, want)
	for _, is := range issues {
		if is.line == 0 {
			l.Errorf(e.V, "%s: %s", what, is.msg)
			continue
		}
		off := 0
		if is.line == 1 {
			off = is.col
		}
		line, col, exact := l.PosIn(e.V, off)
		if exact && is.line == 1 {
			l.ErrorAt(line, col, "%s: %s", what, is.msg)
		} else {
			l.ErrorAt(line, col, "%s: %s (at line %d, column %d of the expression)", what, is.msg, is.line, is.col+1)
		}
	}
	return x
}
