package topofile

// CEL expressions compiled to Go closures (see the comment at the top of
// cel.go for the interpreter).
//
// Most expressions of topology files are small decision trees over the
// fields of a record: comparisons, &&, ||, ?:, `in` a list of constants,
// field reads, map literals, reject(). cel-go's interpreter evaluates them
// over boxed ref.Val values, and its fixed cost (the activation, attribute
// resolution, boxing of every field read, the result conversion) is most of
// the CPU of an aggregate such as bank.yaml's add. compileFast translates
// an expression of a subset of CEL into a tree of Go closures that work on
// the plain Go values the codecs produce (nil, bool, int64, uint64,
// float64, string, []any, map[string]any), so that reading a field is a
// map lookup and the result needs no conversion.
//
// The closures never decide an error. A closure returns ok=false for
// anything it does not handle exactly as the interpreter would: any
// evaluation error of CEL (a missing field, an overflow, a wrong type,
// reject()), a value of another Go type. The caller then evaluates the
// expression with the interpreter, whose result (value or error, with its
// message) is the one used. So the compiled form must only agree with the
// interpreter on the values it returns; TestCELCompiledMatchesInterpreter
// and FuzzCELCompiled check that on the subset.
//
// The subset: literals (null, bool, int, uint, double, string); the
// variables; the type names (int, string, map, ...); field selection
// (a.f), has(a.f), indexing (a['f'], a[0]); a.?f.orValue(x); list
// literals and map literals with constant string keys; !, unary -, &&, ||
// (with CEL's commutative absorption of errors), ?: (only the taken branch
// is evaluated); ==, != (heterogeneous equality), <, <=, >, >= (numbers
// across int, uint and double, strings, bools); +, -, *, /, % on numbers of
// one type with CEL's overflow checks, + on strings and lists; `in` on
// lists and maps; type(x); size(x) and x.size(); startsWith, endsWith and
// contains on strings; reject(reason). An expression with anything else
// (macros, bind, the extension functions, bytes, timestamps, ...) is
// evaluated by the interpreter only.

import (
	"cmp"
	"math"
	"strings"
	"unicode"
	"unicode/utf8"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
)

// cnode is a compiled sub-expression: its value as a plain Go value, or
// ok=false when the interpreter must decide (see above).
type cnode func(a *activation) (v any, ok bool)

// ctype is a CEL type as a value (what type(x) returns).
type ctype uint8

const (
	tNull ctype = iota + 1
	tBool
	tInt
	tUint
	tDouble
	tString
	tBytes
	tList
	tMap
	tType
)

// typeNames are the type identifiers of the subset.
var typeNames = map[string]ctype{
	"null_type": tNull, "bool": tBool, "int": tInt, "uint": tUint, "double": tDouble,
	"string": tString, "bytes": tBytes, "list": tList, "map": tMap, "type": tType,
}

// typeOf returns the CEL type of a plain value.
func typeOf(v any) (ctype, bool) {
	switch v.(type) {
	case nil:
		return tNull, true
	case bool:
		return tBool, true
	case int64:
		return tInt, true
	case uint64:
		return tUint, true
	case float64:
		return tDouble, true
	case string:
		return tString, true
	case []any:
		return tList, true
	case map[string]any:
		return tMap, true
	case ctype:
		return tType, true
	}
	return 0, false
}

// plain reports whether v is of a Go type the compiled form handles as
// the interpreter does (a list or a map counts as such: their elements are
// checked where they are used).
func plain(v any) bool {
	switch v.(type) {
	case nil, bool, int64, uint64, float64, string, []any, map[string]any:
		return true
	}
	return false
}

// compileFast compiles a checked expression to closures, or returns nil
// when it uses anything outside the subset. slots is the number of local
// variables (of comprehensions) an evaluation needs in its activation.
func compileFast(checked *cel.Ast) (n cnode, slots int) {
	c := &fastCompiler{ast: checked.NativeRep()}
	n, ok := c.node(c.ast.Expr())
	if !ok {
		return nil, 0
	}
	return n, c.slots
}

type fastCompiler struct {
	ast *ast.AST
	// scope are the local variables visible where the compiler is, the
	// innermost last; slots counts the slots given out.
	scope []localVar
	slots int
}

// localVar is a variable of a comprehension (its iteration variable or
// its accumulator) and its slot in the activation's locals.
type localVar struct {
	name string
	slot int
}

// localVal is the value of a local variable in one evaluation: ok=false
// when it holds an error (an accumulator may, and CEL's && and || may
// still absorb it).
type localVal struct {
	v  any
	ok bool
}

func (c *fastCompiler) node(e ast.Expr) (cnode, bool) {
	switch e.Kind() {
	case ast.LiteralKind:
		return c.literal(e)
	case ast.IdentKind:
		return c.ident(e)
	case ast.SelectKind:
		return c.selectNode(e)
	case ast.CallKind:
		return c.call(e)
	case ast.ListKind:
		return c.list(e)
	case ast.MapKind:
		return c.mapLiteral(e)
	case ast.ComprehensionKind:
		return c.comprehension(e)
	}
	return nil, false
}

// comprehension compiles the macros over lists (all, exists, exists_one,
// map, filter) and cel.bind, as cel-go folds them: for each element the
// loop condition must be true for the step to be taken, the step's value
// (or error) is the new accumulator, and the result is evaluated at the
// end. Ranges other than lists (maps: their order of iteration) and
// accumulators whose initial value fails (cel-go evaluates it only when
// it is read) are the interpreter's.
func (c *fastCompiler) comprehension(e ast.Expr) (cnode, bool) {
	comp := e.AsComprehension()
	if comp.IterVar2() != "" {
		return nil, false
	}
	rng, ok := c.node(comp.IterRange())
	if !ok {
		return nil, false
	}
	init, ok := c.node(comp.AccuInit())
	if !ok {
		return nil, false
	}
	accu := c.push(comp.AccuVar())
	iter := c.push(comp.IterVar())
	cond, ok := c.node(comp.LoopCondition())
	if !ok {
		return nil, false
	}
	step, ok := c.node(comp.LoopStep())
	if !ok {
		return nil, false
	}
	c.scope = c.scope[:len(c.scope)-1] // the result does not see the iteration variable
	result, ok := c.node(comp.Result())
	if !ok {
		return nil, false
	}
	c.scope = c.scope[:len(c.scope)-1]
	return func(a *activation) (any, bool) {
		r, ok := rng(a)
		list, isList := r.([]any)
		if !ok || !isList {
			return nil, false
		}
		v, ok := init(a)
		if !ok {
			return nil, false
		}
		a.locals[accu] = localVal{v, true}
		for _, el := range list {
			if !plain(el) {
				return nil, false
			}
			a.locals[iter] = localVal{el, true}
			cv, ok := cond(a)
			if !ok {
				return nil, false
			}
			if b, isBool := cv.(bool); !isBool || !b {
				break
			}
			v, ok := step(a)
			a.locals[accu] = localVal{v, ok}
		}
		return result(a)
	}, true
}

// isRecordKey reports whether e is the variable key, the record's key: not
// a local variable of that name.
func (c *fastCompiler) isRecordKey(e ast.Expr) bool {
	if e.Kind() != ast.IdentKind || e.AsIdent() != "key" {
		return false
	}
	for _, v := range c.scope {
		if v.name == "key" {
			return false
		}
	}
	return true
}

// push adds a local variable to the scope and returns its slot.
func (c *fastCompiler) push(name string) int {
	slot := c.slots
	c.slots++
	c.scope = append(c.scope, localVar{name: name, slot: slot})
	return slot
}

func constNode(v any) cnode { return func(*activation) (any, bool) { return v, true } }

func (c *fastCompiler) literal(e ast.Expr) (cnode, bool) {
	switch x := e.AsLiteral().(type) {
	case types.Null:
		return constNode(nil), true
	case types.Bool:
		return constNode(bool(x)), true
	case types.Int:
		return constNode(int64(x)), true
	case types.Uint:
		return constNode(uint64(x)), true
	case types.Double:
		return constNode(float64(x)), true
	case types.String:
		return constNode(string(x)), true
	}
	return nil, false
}

func (c *fastCompiler) ident(e ast.Expr) (cnode, bool) {
	name := e.AsIdent()
	for i := len(c.scope) - 1; i >= 0; i-- {
		if c.scope[i].name == name {
			slot := c.scope[i].slot
			return func(a *activation) (any, bool) {
				l := a.locals[slot]
				return l.v, l.ok
			}, true
		}
	}
	var i int
	switch name {
	case "key":
		return func(a *activation) (any, bool) {
			if a.keyAny == nil {
				a.keyAny = a.key
			}
			return a.keyAny, true
		}, true
	case "value":
		i = varValue
	case "other":
		i = varOther
	case "current":
		i = varCurrent
	case "aggregate":
		i = varAggregate
	default:
		t, ok := typeNames[name]
		if !ok || c.ast.GetType(e.ID()).Kind() != types.TypeKind {
			return nil, false
		}
		return constNode(t), true
	}
	return func(a *activation) (any, bool) {
		v := a.vars[i].raw
		return v, plain(v)
	}, true
}

// selectNode compiles a.f and has(a.f).
func (c *fastCompiler) selectNode(e ast.Expr) (cnode, bool) {
	s := e.AsSelect()
	operand, ok := c.node(s.Operand())
	if !ok {
		return nil, false
	}
	field := s.FieldName()
	if s.IsTestOnly() {
		return func(a *activation) (any, bool) {
			v, ok := operand(a)
			m, isMap := v.(map[string]any)
			if !ok || !isMap {
				return nil, false
			}
			_, found := m[field]
			return found, true
		}, true
	}
	return func(a *activation) (any, bool) {
		v, ok := operand(a)
		m, isMap := v.(map[string]any)
		if !ok || !isMap {
			return nil, false
		}
		f, found := m[field]
		return f, found && plain(f)
	}, true
}

func (c *fastCompiler) list(e ast.Expr) (cnode, bool) {
	l := e.AsList()
	if len(l.OptionalIndices()) > 0 {
		return nil, false
	}
	elems, ok := c.nodes(l.Elements())
	if !ok {
		return nil, false
	}
	return func(a *activation) (any, bool) {
		out := make([]any, len(elems))
		for i, n := range elems {
			v, ok := n(a)
			if !ok || !storable(v) {
				return nil, false
			}
			out[i] = v
		}
		return out, true
	}, true
}

// storable reports whether v may be an element of a result: a type value
// may not (the interpreter's result conversion refuses it).
func storable(v any) bool {
	_, isType := v.(ctype)
	return !isType
}

func (c *fastCompiler) mapLiteral(e ast.Expr) (cnode, bool) {
	entries := e.AsMap().Entries()
	keys := make([]string, 0, len(entries))
	vals := make([]cnode, 0, len(entries))
	seen := make(map[string]bool, len(entries))
	for _, en := range entries {
		if en.Kind() != ast.MapEntryKind {
			return nil, false
		}
		me := en.AsMapEntry()
		if me.IsOptional() || me.Key().Kind() != ast.LiteralKind {
			return nil, false
		}
		k, ok := me.Key().AsLiteral().(types.String)
		if !ok || seen[string(k)] {
			return nil, false
		}
		seen[string(k)] = true
		v, ok := c.node(me.Value())
		if !ok {
			return nil, false
		}
		keys, vals = append(keys, string(k)), append(vals, v)
	}
	return func(a *activation) (any, bool) {
		out := make(map[string]any, len(keys))
		for i, n := range vals {
			v, ok := n(a)
			if !ok || !storable(v) {
				return nil, false
			}
			out[keys[i]] = v
		}
		return out, true
	}, true
}

func (c *fastCompiler) nodes(es []ast.Expr) ([]cnode, bool) {
	out := make([]cnode, len(es))
	for i, e := range es {
		n, ok := c.node(e)
		if !ok {
			return nil, false
		}
		out[i] = n
	}
	return out, true
}

func (c *fastCompiler) call(e ast.Expr) (cnode, bool) {
	call := e.AsCall()
	fn := call.FunctionName()
	if call.IsMemberFunction() {
		return c.memberCall(fn, call)
	}
	args := call.Args()
	if fn == "reject" && len(args) == 1 {
		// Always an error: the interpreter makes its message.
		return func(*activation) (any, bool) { return nil, false }, true
	}
	ns, ok := c.nodes(args)
	if !ok {
		return nil, false
	}
	switch len(ns) {
	case 1:
		x := ns[0]
		switch fn {
		case "@not_strictly_false":
			// The loop condition of all and exists: true unless false.
			return func(a *activation) (any, bool) {
				v, ok := x(a)
				b, isBool := v.(bool)
				return !ok || !isBool || b, true
			}, true
		case "!_":
			return func(a *activation) (any, bool) {
				v, ok := x(a)
				b, isBool := v.(bool)
				return !b, ok && isBool
			}, true
		case "-_":
			return func(a *activation) (any, bool) {
				v, ok := x(a)
				if !ok {
					return nil, false
				}
				switch n := v.(type) {
				case int64:
					return -n, n != math.MinInt64
				case float64:
					return -n, true
				}
				return nil, false
			}, true
		case "type":
			return func(a *activation) (any, bool) {
				v, ok := x(a)
				if !ok {
					return nil, false
				}
				t, ok := typeOf(v)
				return t, ok
			}, true
		case "size":
			return sizeNode(x), true
		case "int", "uint", "double", "string", "bool":
			t := conversionTypes[fn]
			return func(a *activation) (any, bool) {
				v, ok := x(a)
				if !ok {
					return nil, false
				}
				return convert(v, t)
			}, true
		}
	case 2:
		l, r := ns[0], ns[1]
		switch fn {
		case "_&&_":
			return andNode(l, r), true
		case "_||_":
			return orNode(l, r), true
		case "_==_", "_!=_":
			want := fn == "_==_"
			// key == x compares the strings, without boxing the key
			// (unless a comprehension's variable named key hides it).
			if c.isRecordKey(args[0]) {
				return keyEqNode(r, want), true
			}
			if c.isRecordKey(args[1]) {
				return keyEqNode(l, want), true
			}
			return binaryNode(l, r, func(x, y any) (any, bool) {
				eq, ok := equalValues(x, y)
				return eq == want, ok
			}), true
		case "_<_", "_<=_", "_>_", "_>=_":
			test := orderTests[fn]
			return binaryNode(l, r, func(x, y any) (any, bool) {
				c, ok := compareValues(x, y)
				return test(c), ok
			}), true
		case "_+_":
			return binaryNode(l, r, addValues), true
		case "_-_":
			return binaryNode(l, r, subtractValues), true
		case "_*_":
			return binaryNode(l, r, multiplyValues), true
		case "_/_":
			return binaryNode(l, r, divideValues), true
		case "_%_":
			return binaryNode(l, r, moduloValues), true
		case "@in":
			if list, ok := constList(args[1]); ok {
				r = constNode(list)
			}
			return binaryNode(l, r, inValues), true
		case "_[_]":
			return binaryNode(l, r, indexValues), true
		}
	case 3:
		if fn == "_?_:_" {
			cond, yes, no := ns[0], ns[1], ns[2]
			return func(a *activation) (any, bool) {
				v, ok := cond(a)
				b, isBool := v.(bool)
				if !ok || !isBool {
					return nil, false
				}
				if b {
					return yes(a)
				}
				return no(a)
			}, true
		}
	}
	return nil, false
}

func (c *fastCompiler) memberCall(fn string, call ast.CallExpr) (cnode, bool) {
	args := call.Args()
	if fn == "orValue" && len(args) == 1 {
		// x.?f.orValue(d)
		t := call.Target()
		if t.Kind() != ast.CallKind || t.AsCall().FunctionName() != "_?._" || t.AsCall().IsMemberFunction() {
			return nil, false
		}
		sel := t.AsCall().Args()
		if len(sel) != 2 || sel[1].Kind() != ast.LiteralKind {
			return nil, false
		}
		field, ok := sel[1].AsLiteral().(types.String)
		if !ok {
			return nil, false
		}
		operand, ok := c.node(sel[0])
		if !ok {
			return nil, false
		}
		def, ok := c.node(args[0])
		if !ok {
			return nil, false
		}
		return func(a *activation) (any, bool) {
			v, ok := operand(a)
			m, isMap := v.(map[string]any)
			if !ok || !isMap {
				return nil, false
			}
			if f, found := m[string(field)]; found {
				return f, plain(f)
			}
			return def(a)
		}, true
	}
	target, ok := c.node(call.Target())
	if !ok {
		return nil, false
	}
	ns, ok := c.nodes(args)
	if !ok {
		return nil, false
	}
	switch {
	case fn == "size" && len(ns) == 0:
		return sizeNode(target), true
	case len(ns) == 0 && (fn == "lowerAscii" || fn == "upperAscii" || fn == "trim"):
		f := map[string]func(string) string{"lowerAscii": lowerASCII, "upperAscii": upperASCII, "trim": strings.TrimSpace}[fn]
		return func(a *activation) (any, bool) {
			v, ok := target(a)
			s, isStr := v.(string)
			if !ok || !isStr {
				return nil, false
			}
			return f(s), true
		}, true
	case fn == "substring" && (len(ns) == 1 || len(ns) == 2):
		return substringNode(target, ns), true
	case len(ns) == 1 && (fn == "startsWith" || fn == "endsWith" || fn == "contains"):
		test := strings.HasPrefix
		switch fn {
		case "endsWith":
			test = strings.HasSuffix
		case "contains":
			test = strings.Contains
		}
		arg := ns[0]
		return func(a *activation) (any, bool) {
			v, ok := target(a)
			s, isStr := v.(string)
			if !ok || !isStr {
				return nil, false
			}
			w, ok := arg(a)
			sub, isStr := w.(string)
			if !ok || !isStr {
				return nil, false
			}
			return test(s, sub), true
		}, true
	}
	return nil, false
}

// conversionTypes are the types of the conversions int(), uint(),
// double(), string() and bool(), which cel-go's standard library makes
// with ConvertToType.
var conversionTypes = map[string]ref.Type{
	"int": types.IntType, "uint": types.UintType, "double": types.DoubleType,
	"string": types.StringType, "bool": types.BoolType,
}

// convert is a conversion of a scalar, by cel-go's own ConvertToType.
func convert(v any, t ref.Type) (any, bool) {
	cv, ok := scalarVal(v)
	if !ok {
		return nil, false
	}
	return constGo(cv.ConvertToType(t))
}

// lowerASCII and upperASCII change the case of the ASCII letters of s, as
// cel-go's string extension does (through runes: invalid UTF-8 becomes
// U+FFFD).
func lowerASCII(s string) string { return mapASCII(s, unicode.ToLower) }

func upperASCII(s string) string { return mapASCII(s, unicode.ToUpper) }

func mapASCII(s string, f func(rune) rune) string {
	runes := []rune(s)
	for i, r := range runes {
		if r <= unicode.MaxASCII {
			runes[i] = f(r)
		}
	}
	return string(runes)
}

// substringNode is s.substring(start) and s.substring(start, end), in
// code points.
func substringNode(target cnode, args []cnode) cnode {
	return func(a *activation) (any, bool) {
		v, ok := target(a)
		s, isStr := v.(string)
		if !ok || !isStr {
			return nil, false
		}
		var bounds [2]int64
		for i, arg := range args {
			w, ok := arg(a)
			n, isInt := w.(int64)
			if !ok || !isInt {
				return nil, false
			}
			bounds[i] = n
		}
		runes := []rune(s)
		start, end := bounds[0], int64(len(runes))
		if len(args) == 2 {
			end = bounds[1]
		}
		if start < 0 || start > end || end > int64(len(runes)) {
			return nil, false
		}
		return string(runes[start:end]), true
	}
}

// andNode is CEL's &&: false if either side is false, whatever the other
// side is (even an error); true if both are true; else an error.
func andNode(l, r cnode) cnode {
	return func(a *activation) (any, bool) {
		lv, lok := l(a)
		lb, lBool := lv.(bool)
		if lok && lBool && !lb {
			return false, true
		}
		rv, rok := r(a)
		rb, rBool := rv.(bool)
		if rok && rBool && !rb {
			return false, true
		}
		return true, lok && lBool && rok && rBool
	}
}

// orNode is CEL's ||, the dual of andNode.
func orNode(l, r cnode) cnode {
	return func(a *activation) (any, bool) {
		lv, lok := l(a)
		lb, lBool := lv.(bool)
		if lok && lBool && lb {
			return true, true
		}
		rv, rok := r(a)
		rb, rBool := rv.(bool)
		if rok && rBool && rb {
			return true, true
		}
		return false, lok && lBool && rok && rBool
	}
}

// binaryNode evaluates both operands, then op on their values.
func binaryNode(l, r cnode, op func(x, y any) (any, bool)) cnode {
	return func(a *activation) (any, bool) {
		lv, ok := l(a)
		if !ok {
			return nil, false
		}
		rv, ok := r(a)
		if !ok {
			return nil, false
		}
		return op(lv, rv)
	}
}

// keyEqNode is key == x (want true) or key != x.
func keyEqNode(x cnode, want bool) cnode {
	return func(a *activation) (any, bool) {
		v, ok := x(a)
		if !ok {
			return nil, false
		}
		if s, isStr := v.(string); isStr {
			return (s == a.key) == want, true
		}
		return !want, plain(v) || isType(v)
	}
}

// constList returns the value of a list literal of constants, made once
// (for the right side of `in`, which only reads it).
func constList(e ast.Expr) ([]any, bool) {
	if e.Kind() != ast.ListKind || len(e.AsList().OptionalIndices()) > 0 {
		return nil, false
	}
	c := &fastCompiler{}
	var out []any
	for _, el := range e.AsList().Elements() {
		if el.Kind() != ast.LiteralKind {
			return nil, false
		}
		n, ok := c.literal(el)
		if !ok {
			return nil, false
		}
		v, _ := n(nil)
		out = append(out, v)
	}
	return out, true
}

// equalValues is CEL's heterogeneous equality: numbers compare by value
// across int, uint and double (NaN equals nothing), lists and maps
// element by element, values of different types are not equal.
func equalValues(x, y any) (bool, bool) {
	switch a := x.(type) {
	case nil:
		return y == nil, plain(y) || isType(y)
	case bool:
		b, ok := y.(bool)
		return ok && a == b, ok || plain(y) || isType(y)
	case string:
		b, ok := y.(string)
		return ok && a == b, ok || plain(y) || isType(y)
	case int64, uint64, float64:
		switch y.(type) {
		case int64, uint64, float64:
			if isNaN(x) || isNaN(y) {
				return false, true
			}
			c, _ := compareNumbers(x, y)
			return c == 0, true
		}
		return false, plain(y) || isType(y)
	case ctype:
		b, ok := y.(ctype)
		return ok && a == b, ok || plain(y)
	case []any:
		b, ok := y.([]any)
		if !ok {
			return false, plain(y) || isType(y)
		}
		if len(a) != len(b) {
			return false, true
		}
		for i := range a {
			eq, ok := equalValues(a[i], b[i])
			if !ok {
				return false, false
			}
			if !eq {
				return false, true
			}
		}
		return true, true
	case map[string]any:
		b, ok := y.(map[string]any)
		if !ok {
			return false, plain(y) || isType(y)
		}
		if len(a) != len(b) {
			return false, true
		}
		for k, av := range a {
			bv, found := b[k]
			if !found {
				return false, true
			}
			eq, ok := equalValues(av, bv)
			if !ok {
				return false, false
			}
			if !eq {
				return false, true
			}
		}
		return true, true
	}
	return false, false
}

func isType(v any) bool {
	_, ok := v.(ctype)
	return ok
}

func isNaN(v any) bool {
	f, ok := v.(float64)
	return ok && math.IsNaN(f)
}

// orderTests are the comparison operators as tests of compareValues's
// result.
var orderTests = map[string]func(int) bool{
	"_<_":  func(c int) bool { return c < 0 },
	"_<=_": func(c int) bool { return c <= 0 },
	"_>_":  func(c int) bool { return c > 0 },
	"_>=_": func(c int) bool { return c >= 0 },
}

// compareValues orders two values as CEL's comparison operators do with
// cross-type numeric comparisons: numbers across types (NaN is not
// ordered), strings, bools; anything else is an error (ok=false).
func compareValues(x, y any) (int, bool) {
	switch a := x.(type) {
	case string:
		b, ok := y.(string)
		return strings.Compare(a, b), ok
	case bool:
		b, ok := y.(bool)
		switch {
		case !ok:
			return 0, false
		case a == b:
			return 0, true
		case !a:
			return -1, true
		}
		return 1, true
	}
	if isNaN(x) || isNaN(y) {
		return 0, false
	}
	return compareNumbers(x, y)
}

// compareNumbers orders two numbers (int64, uint64, float64, not NaN):
// of one type directly, across types with cel-go's own comparison (a double
// against an int or a uint is compared as a double within their range).
func compareNumbers(x, y any) (int, bool) {
	switch a := x.(type) {
	case int64:
		if b, ok := y.(int64); ok {
			return cmp.Compare(a, b), true
		}
	case uint64:
		if b, ok := y.(uint64); ok {
			return cmp.Compare(a, b), true
		}
	case float64:
		if b, ok := y.(float64); ok {
			return cmp.Compare(a, b), true
		}
	}
	xv, xok := scalarVal(x)
	yv, yok := scalarVal(y)
	if !xok || !yok {
		return 0, false
	}
	c, ok := xv.(traits.Comparer).Compare(yv).(types.Int)
	return int(c), ok
}

// scalarVal is the CEL value of a plain scalar.
func scalarVal(v any) (ref.Val, bool) {
	switch x := v.(type) {
	case int64:
		return types.Int(x), true
	case uint64:
		return types.Uint(x), true
	case float64:
		return types.Double(x), true
	case string:
		return types.String(x), true
	case bool:
		return types.Bool(x), true
	}
	return nil, false
}

// addValues is +: numbers of one type (ints and uints checked for
// overflow), strings, lists.
func addValues(x, y any) (any, bool) {
	switch a := x.(type) {
	case int64:
		b, ok := y.(int64)
		if !ok || (b > 0 && a > math.MaxInt64-b) || (b < 0 && a < math.MinInt64-b) {
			return nil, false
		}
		return a + b, true
	case uint64:
		b, ok := y.(uint64)
		if !ok || a > math.MaxUint64-b {
			return nil, false
		}
		return a + b, true
	case float64:
		b, ok := y.(float64)
		return a + b, ok
	case string:
		b, ok := y.(string)
		return a + b, ok
	case []any:
		b, ok := y.([]any)
		if !ok {
			return nil, false
		}
		out := make([]any, 0, len(a)+len(b))
		return append(append(out, a...), b...), true
	}
	return nil, false
}

func subtractValues(x, y any) (any, bool) {
	switch a := x.(type) {
	case int64:
		b, ok := y.(int64)
		if !ok || (b < 0 && a > math.MaxInt64+b) || (b > 0 && a < math.MinInt64+b) {
			return nil, false
		}
		return a - b, true
	case uint64:
		b, ok := y.(uint64)
		if !ok || b > a {
			return nil, false
		}
		return a - b, true
	case float64:
		b, ok := y.(float64)
		return a - b, ok
	}
	return nil, false
}

func multiplyValues(x, y any) (any, bool) {
	switch a := x.(type) {
	case int64:
		b, ok := y.(int64)
		if !ok || (a == -1 && b == math.MinInt64) || (b == -1 && a == math.MinInt64) ||
			(a > 0 && b > 0 && a > math.MaxInt64/b) ||
			(a > 0 && b < 0 && b < math.MinInt64/a) ||
			(a < 0 && b > 0 && a < math.MinInt64/b) ||
			(a < 0 && b < 0 && b < math.MaxInt64/a) {
			return nil, false
		}
		return a * b, true
	case uint64:
		b, ok := y.(uint64)
		if !ok || (b != 0 && a > math.MaxUint64/b) {
			return nil, false
		}
		return a * b, true
	case float64:
		b, ok := y.(float64)
		return a * b, ok
	}
	return nil, false
}

func divideValues(x, y any) (any, bool) {
	switch a := x.(type) {
	case int64:
		b, ok := y.(int64)
		if !ok || b == 0 || (a == math.MinInt64 && b == -1) {
			return nil, false
		}
		return a / b, true
	case uint64:
		b, ok := y.(uint64)
		if !ok || b == 0 {
			return nil, false
		}
		return a / b, true
	case float64:
		b, ok := y.(float64)
		return a / b, ok
	}
	return nil, false
}

func moduloValues(x, y any) (any, bool) {
	switch a := x.(type) {
	case int64:
		b, ok := y.(int64)
		if !ok || b == 0 || (a == math.MinInt64 && b == -1) {
			return nil, false
		}
		return a % b, true
	case uint64:
		b, ok := y.(uint64)
		if !ok || b == 0 {
			return nil, false
		}
		return a % b, true
	}
	return nil, false
}

// inValues is `x in list` (an element equal to x) and `k in map` (a
// string key of the map).
func inValues(x, c any) (any, bool) {
	switch in := c.(type) {
	case []any:
		for _, e := range in {
			eq, ok := equalValues(x, e)
			if !ok {
				return nil, false
			}
			if eq {
				return true, true
			}
		}
		return false, true
	case map[string]any:
		k, ok := x.(string)
		if !ok {
			return nil, false
		}
		_, found := in[k]
		return found, true
	}
	return nil, false
}

// indexValues is m['f'] on a map and l[i] on a list (an int index).
func indexValues(c, i any) (any, bool) {
	switch x := c.(type) {
	case map[string]any:
		k, ok := i.(string)
		if !ok {
			return nil, false
		}
		v, found := x[k]
		return v, found && plain(v)
	case []any:
		n, ok := i.(int64)
		if !ok || n < 0 || n >= int64(len(x)) {
			return nil, false
		}
		return x[n], plain(x[n])
	}
	return nil, false
}

// sizeNode is size(x): the code points of a string, the elements of a
// list or a map.
func sizeNode(x cnode) cnode {
	return func(a *activation) (any, bool) {
		v, ok := x(a)
		if !ok {
			return nil, false
		}
		switch s := v.(type) {
		case string:
			return int64(utf8.RuneCountInString(s)), true
		case []any:
			return int64(len(s)), true
		case map[string]any:
			return int64(len(s)), true
		}
		return nil, false
	}
}
