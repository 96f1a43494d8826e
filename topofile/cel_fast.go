package topofile

// The fast paths of CEL evaluation (see the comment at the top of cel.go):
// map literals that build Go maps directly, and input maps whose fields
// are converted once per evaluation.

import (
	"fmt"
	"reflect"

	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"cel.dev/cel-go/interpreter"
)

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
