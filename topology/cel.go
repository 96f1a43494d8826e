package topology

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"cel.dev/cel-go/ext"
	"cel.dev/cel-go/interpreter"
)

// CEL expressions of topology files.
//
// Every expression sees `key` (string) and `value` (dyn); a join also sees
// `other`, a reduce `current`, an aggregate's add `aggregate` (all dyn); an
// aggregate's initial value sees nothing. Expressions are compiled,
// type-checked and planned once, when the file is loaded; a record is then
// evaluated against a small pooled activation struct (no reflection, no
// map), and the result is converted back to the plain Go values the codecs
// use (map[string]any, []any, string, int64, float64, bool, nil).
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
	return &celExpr{text: text, prg: prg, want: want, adapter: adapter}, nil
}

// Map literals with string keys: {'account': value.account, 'events': 1}.
//
// The interpreter builds a map literal as a map[ref.Val]ref.Val, which
// celToGo then copies into a map[string]any, for every record. A literal
// whose keys are all string constants (and that has no optional entry
// {?'k': v}) is planned instead as goMapLiteral, which evaluates the values
// in the same order, converts them to Go values right away and returns the
// map[string]any as a CEL map (types.NewStringInterfaceMap), which celToGo
// returns as is. Within the expression it is the same map: every value
// celToGo accepts comes back from the Go value as the same CEL value (null,
// bool, int, uint, double, string, bytes, timestamp, duration, and lists and
// string-keyed maps of these). When a value is anything else (an optional,
// a type, a map with other keys, ...) that evaluation builds the
// interpreter's own map from the CEL values instead.

// stringKeyMaps returns the ids of the map literals of e whose keys are all
// string constants and that have no optional entry.
func stringKeyMaps(e ast.Expr) map[int64]bool {
	ids := map[int64]bool{}
	ast.PostOrderVisit(e, ast.NewExprVisitor(func(x ast.Expr) {
		if x.Kind() != ast.MapKind {
			return
		}
		entries := x.AsMap().Entries()
		if len(entries) == 0 {
			return
		}
		for _, en := range entries {
			if en.Kind() != ast.MapEntryKind {
				return
			}
			me := en.AsMapEntry()
			if me.IsOptional() || me.Key().Kind() != ast.LiteralKind {
				return
			}
			if _, ok := me.Key().AsLiteral().(types.String); !ok {
				return
			}
		}
		ids[x.ID()] = true
	}))
	return ids
}

// goMapLiterals plans the map literals ids (see stringKeyMaps) as
// goMapLiteral, except those whose values are all constants: the
// optimizer makes them one constant.
func goMapLiterals(ids map[int64]bool, adapter types.Adapter) interpreter.InterpretableDecoratorV2 {
	return func(i interpreter.InterpretableV2) (interpreter.InterpretableV2, error) {
		if !ids[i.ID()] {
			return i, nil
		}
		c, ok := i.(interpreter.InterpretableConstructor)
		if !ok || c.Type() != types.MapType {
			return i, nil
		}
		init := c.InitVals() // key, value, key, value, ...
		if len(init) == 0 || len(init)%2 != 0 {
			return i, nil
		}
		m := &goMapLiteral{id: i.ID(), adapter: adapter, init: init}
		allConst := true
		for j := 0; j < len(init); j += 2 {
			k, ok := init[j].(interpreter.InterpretableConst)
			if !ok {
				return i, nil
			}
			ks, ok := k.Value().(types.String)
			if !ok {
				return i, nil
			}
			e := goMapEntry{key: string(ks), keyVal: ks, val: init[j+1]}
			if c, ok := init[j+1].(interpreter.InterpretableConst); ok {
				e.constVal = c.Value()
				if g, ok := constGo(e.constVal); ok {
					e.constGo, e.isConst = g, true
				}
			}
			if !e.isConst {
				allConst = false
			}
			m.entries = append(m.entries, e)
		}
		if allConst {
			return i, nil
		}
		return m, nil
	}
}

// constGo converts a constant scalar to its Go value, computed once (the
// result maps may share it: it is immutable).
func constGo(v ref.Val) (any, bool) {
	switch x := v.(type) {
	case types.Null:
		return nil, true
	case types.Bool:
		return bool(x), true
	case types.Int:
		return int64(x), true
	case types.Uint:
		return uint64(x), true
	case types.Double:
		return float64(x), true
	case types.String:
		return string(x), true
	}
	return nil, false
}

type goMapEntry struct {
	key      string
	keyVal   types.String
	val      interpreter.InterpretableV2
	constVal ref.Val // the value when val is a constant
	constGo  any     // its Go value, when isConst
	isConst  bool
}

// goMapLiteral is a map literal with string constant keys that builds a
// map[string]any (see stringKeyMaps).
type goMapLiteral struct {
	id      int64
	adapter types.Adapter
	entries []goMapEntry
	init    []interpreter.InterpretableV2
}

// ID implements interpreter.Interpretable.
func (m *goMapLiteral) ID() int64 { return m.id }

// Eval implements interpreter.Interpretable.
func (m *goMapLiteral) Eval(vars interpreter.Activation) ref.Val {
	return interpreter.EvalActivation(vars, m.Exec)
}

// InitVals implements interpreter.InterpretableConstructor.
func (m *goMapLiteral) InitVals() []interpreter.InterpretableV2 { return m.init }

// Type implements interpreter.InterpretableConstructor.
func (m *goMapLiteral) Type() ref.Type { return types.MapType }

// Exec implements interpreter.InterpretableV2: the values in order, the
// first error is the result (as the interpreter's map literal does).
func (m *goMapLiteral) Exec(frame *interpreter.ExecutionFrame) ref.Val {
	var small [16]ref.Val
	var vals []ref.Val
	if len(m.entries) <= len(small) {
		vals = small[:len(m.entries)]
	} else {
		vals = make([]ref.Val, len(m.entries))
	}
	var unk *types.Unknown
	for i := range m.entries {
		e := &m.entries[i]
		if e.constVal != nil {
			vals[i] = e.constVal
			continue
		}
		v := e.val.Exec(frame)
		switch x := v.(type) {
		case *types.Err:
			return x
		case *types.Unknown:
			if unk == nil {
				unk = x
			} else {
				unk = types.MergeUnknowns(unk, x)
			}
		}
		vals[i] = v
	}
	if unk != nil {
		return unk
	}
	out := make(map[string]any, len(m.entries))
	for i := range m.entries {
		e := &m.entries[i]
		if e.isConst {
			out[e.key] = e.constGo
			continue
		}
		g, err := celToGoDepth(vals[i], 1, true)
		if err != nil {
			// Not a plain value: the interpreter's own map.
			entries := make(map[ref.Val]ref.Val, len(m.entries))
			for j := range m.entries {
				entries[m.entries[j].keyVal] = vals[j]
			}
			return types.NewRefValMap(m.adapter, entries)
		}
		out[e.key] = g
	}
	return types.NewStringInterfaceMap(m.adapter, out)
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
	return a
}

// release clears a (it holds no record after) and puts it back in the pool.
func (a *activation) release() {
	a.adapter, a.key, a.keyVal = nil, "", nil
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

// inputMapCache is how many fields of an input map a view keeps converted.
const inputMapCache = 8

// inputMap is a map[string]any variable (value, aggregate, ...) as a CEL
// map for one evaluation. It behaves as the map the interpreter would make
// of it (types.NewStringInterfaceMap), but it lives in the pooled
// activation, and a field is converted to a CEL value once per evaluation
// however often the expression reads it (bank.yaml reads value.type seven
// times; each read used to box the string anew). Nested maps and lists are
// returned as Go values, so the interpreter qualifies them as before.
type inputMap struct {
	m       map[string]any
	adapter types.Adapter
	n       int
	keys    [inputMapCache]string
	vals    [inputMapCache]ref.Val
	base    traits.Mapper // the interpreter's own view of m, made when needed
}

func (w *inputMap) reset() {
	for i := 0; i < w.n; i++ {
		w.keys[i], w.vals[i] = "", nil
	}
	w.n, w.m, w.adapter, w.base = 0, nil, nil, nil
}

// mapper returns the interpreter's own view of the map, for the operations
// that are not on the hot path (iteration, conversion, equality).
func (w *inputMap) mapper() traits.Mapper {
	if w.base == nil {
		w.base = types.NewStringInterfaceMap(w.adapter, w.m)
	}
	return w.base
}

// FindStringKey is the interpreter's fast path for field selection
// (value.f): the field as a CEL value, or a nested map or list as the Go
// value (as a map[string]any variable gives it).
func (w *inputMap) FindStringKey(s string) (any, bool) {
	for i := 0; i < w.n; i++ {
		if w.keys[i] == s {
			return w.vals[i], true
		}
	}
	raw, found := w.m[s]
	if !found {
		return nil, false
	}
	var v ref.Val
	switch x := raw.(type) {
	case map[string]any, []any:
		return raw, true
	case nil:
		v = types.NullValue
	case string:
		v = types.String(x)
	case int64:
		v = types.Int(x)
	case float64:
		v = types.Double(x)
	case bool:
		v = types.Bool(x)
	default:
		v = w.adapter.NativeToValue(raw)
	}
	if w.n < inputMapCache {
		w.keys[w.n], w.vals[w.n] = s, v
		w.n++
	}
	return v, true
}

// Find implements traits.Mapper.
func (w *inputMap) Find(key ref.Val) (ref.Val, bool) {
	s, ok := key.(types.String)
	if !ok {
		return w.mapper().Find(key)
	}
	v, found := w.FindStringKey(string(s))
	if !found {
		return nil, false
	}
	return w.adapter.NativeToValue(v), true
}

// Contains implements traits.Container.
func (w *inputMap) Contains(key ref.Val) ref.Val {
	if s, ok := key.(types.String); ok {
		_, found := w.m[string(s)]
		return types.Bool(found)
	}
	return w.mapper().Contains(key)
}

// Get implements traits.Indexer.
func (w *inputMap) Get(key ref.Val) ref.Val {
	v, found := w.Find(key)
	if !found {
		return types.ValOrErr(v, "no such key: %v", key)
	}
	return v
}

// Size implements traits.Sizer.
func (w *inputMap) Size() ref.Val { return types.Int(len(w.m)) }

// IsZeroValue implements traits.Zeroer.
func (w *inputMap) IsZeroValue() bool { return len(w.m) == 0 }

// Iterator implements traits.Iterable.
func (w *inputMap) Iterator() traits.Iterator { return w.mapper().Iterator() }

// Fold implements traits.Foldable (comprehensions over the map).
func (w *inputMap) Fold(f traits.Folder) {
	if fm, ok := w.mapper().(traits.Foldable); ok {
		fm.Fold(f)
		return
	}
	it := w.Iterator()
	for it.HasNext() == types.True {
		k := it.Next()
		if !f.FoldEntry(k, w.Get(k)) {
			return
		}
	}
}

// ConvertToNative implements ref.Val.
func (w *inputMap) ConvertToNative(t reflect.Type) (any, error) {
	return w.mapper().ConvertToNative(t)
}

// ConvertToType implements ref.Val.
func (w *inputMap) ConvertToType(t ref.Type) ref.Val {
	if t == types.MapType {
		return w
	}
	return w.mapper().ConvertToType(t)
}

// Equal implements ref.Val.
func (w *inputMap) Equal(other ref.Val) ref.Val {
	if _, ok := other.(traits.Mapper); !ok {
		return types.False
	}
	return w.mapper().Equal(other)
}

// Type implements ref.Val.
func (w *inputMap) Type() ref.Type { return types.MapType }

// Value implements ref.Val: the Go map itself.
func (w *inputMap) Value() any { return w.m }

func (w *inputMap) String() string { return fmt.Sprint(w.mapper()) }

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
func (e *celExpr) Predicate() Predicate { return e.evalBool }

// ValueMapper returns the expression as a ValueMapper.
func (e *celExpr) ValueMapper() ValueMapper {
	return func(k string, v any) (any, error) { return e.evalValue(k, v, nil, nil, nil) }
}

// KeySelector returns the expression as a KeySelector.
func (e *celExpr) KeySelector() KeySelector { return e.evalString }

// keyValueMapper combines a key and a value expression (map).
func keyValueMapper(key, value *celExpr) KeyValueMapper {
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
func (e *celExpr) FlatMapper() FlatMapper {
	return func(k string, v any) ([]KeyValue, error) {
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
		kvs := make([]KeyValue, 0, int(n))
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
			kvs = append(kvs, KeyValue{Key: string(sk), Value: val})
		}
		return kvs, nil
	}
}

// ValueJoiner returns the expression as a ValueJoiner (with other).
func (e *celExpr) ValueJoiner() ValueJoiner {
	return func(k string, v, other any) (any, error) { return e.evalValue(k, v, other, nil, nil) }
}

// Reducer returns the expression as a Reducer (with current).
func (e *celExpr) Reducer() Reducer {
	return func(k string, current, v any) (any, error) { return e.evalValue(k, v, nil, current, nil) }
}

// Aggregator returns the expression as an Aggregator (with aggregate).
func (e *celExpr) Aggregator() Aggregator {
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
func initializer(v any) Initializer {
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
