package topofile

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// YAML helpers of the topology file loader: every value is read from a
// yaml.Node so that every mistake has a line and a column.

// maxVisits bounds the nodes a file may expand to (through aliases).
const maxVisits = 1 << 20

// loader reads one topology file and collects its errors.
type loader struct {
	file   string
	data   []byte
	env    func(string) (string, bool)
	errs   ConfigErrors
	visits int
	tooBig bool
	lines  [][]rune
}

// kv is an entry of a mapping: its key node and its (resolved) value node.
type kv struct{ k, v *yaml.Node }

func (l *loader) errAt(line, col int, format string, args ...any) {
	if line < 1 {
		line = 1
	}
	if col < 1 {
		col = 1
	}
	l.errs = append(l.errs, &ConfigError{File: l.file, Line: line, Col: col, Msg: fmt.Sprintf(format, args...)})
}

// errf reports an error at node n (1:1 without a node).
func (l *loader) errf(n *yaml.Node, format string, args ...any) {
	line, col := 1, 1
	if n != nil {
		line, col = n.Line, n.Column
	}
	l.errAt(line, col, format, args...)
}

// resolve follows aliases and counts the nodes visited; it returns nil
// once the file expands to too many nodes.
func (l *loader) resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode; i++ {
		if i > 100 || n.Alias == nil {
			l.errf(n, "alias %q does not resolve", n.Value)
			return nil
		}
		n = n.Alias
	}
	l.visits++
	if l.visits > maxVisits {
		if !l.tooBig {
			l.tooBig = true
			l.errf(n, "the file expands to more than %d values (through aliases)", maxVisits)
		}
		return nil
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// kindName describes the kind of a node for error messages.
func kindName(n *yaml.Node) string {
	switch {
	case n == nil || isNull(n):
		return "nothing"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case n.Kind == yaml.ScalarNode:
		switch n.Tag {
		case "!!int", "!!float":
			return "a number"
		case "!!bool":
			return "a boolean"
		}
		return "a string"
	}
	return "a document"
}

// entries returns the entries of mapping n in order, reporting keys that
// are not strings, merge keys and repeated keys.
func (l *loader) entries(n *yaml.Node) []kv {
	var out []kv
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := l.resolve(n.Content[i])
		if k == nil {
			return out
		}
		if k.Kind != yaml.ScalarNode {
			l.errf(k, "keys must be strings, found %s", kindName(k))
			continue
		}
		if k.Tag == "!!merge" {
			l.errf(k, "merge keys (<<) are not supported")
			continue
		}
		if prev, ok := seen[k.Value]; ok {
			l.errf(k, "key %q appears twice (first at line %d)", k.Value, prev.Line)
			continue
		}
		seen[k.Value] = k
		v := l.resolve(n.Content[i+1])
		if v == nil && l.tooBig {
			return out
		}
		out = append(out, kv{k: k, v: v})
	}
	return out
}

// fields returns the entries of mapping n (described as what) by key and
// reports keys not in known. A null n is an empty mapping. ok is false
// when n is not a mapping.
func (l *loader) fields(n *yaml.Node, at *yaml.Node, what string, known ...string) (map[string]kv, bool) {
	m := map[string]kv{}
	if isNull(n) {
		return m, true
	}
	if n.Kind != yaml.MappingNode {
		l.errf(orAt(n, at), "%s must be a mapping, found %s", what, kindName(n))
		return m, false
	}
	for _, e := range l.entries(n) {
		if !contains(known, e.k.Value) {
			if s := didYouMean(e.k.Value, known); s != "" {
				l.errf(e.k, "unknown key %q in %s%s", e.k.Value, what, s)
			} else {
				l.errf(e.k, "unknown key %q in %s (keys: %s)", e.k.Value, what, strings.Join(known, ", "))
			}
			continue
		}
		m[e.k.Value] = e
	}
	return m, true
}

// orAt returns n unless it has no position (a null), then at.
func orAt(n, at *yaml.Node) *yaml.Node {
	if n == nil || isNull(n) && at != nil {
		return at
	}
	return n
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// require returns the entry key of m, reporting its absence at at.
func (l *loader) require(m map[string]kv, key string, at *yaml.Node, what string) (kv, bool) {
	e, ok := m[key]
	if !ok {
		l.errf(at, "missing required key %q in %s", key, what)
	}
	return e, ok
}

// str returns the value of e as a string: a scalar that is not null.
func (l *loader) str(e kv, what string) (string, bool) {
	if isNull(e.v) {
		l.errf(e.k, "%s needs a value", what)
		return "", false
	}
	if e.v.Kind != yaml.ScalarNode {
		l.errf(e.v, "%s must be a string, found %s", what, kindName(e.v))
		return "", false
	}
	return e.v.Value, true
}

// line returns line n (1-based) of the file as runes.
func (l *loader) line(n int) []rune {
	if l.lines == nil {
		for _, s := range strings.Split(string(l.data), "\n") {
			l.lines = append(l.lines, []rune(strings.TrimSuffix(s, "\r")))
		}
	}
	if n < 1 || n > len(l.lines) {
		return nil
	}
	return l.lines[n-1]
}

// posIn returns the file position of the character at offset off (runes,
// 0-based) of scalar n's value, when the value appears verbatim on one
// line of the file (a single-line plain or quoted scalar without escapes).
func (l *loader) posIn(n *yaml.Node, off int) (line, col int, exact bool) {
	if n == nil {
		return 1, 1, false
	}
	val := []rune(n.Value)
	if n.Kind != yaml.ScalarNode || strings.ContainsAny(n.Value, "\n\r") || off < 0 || off > len(val) {
		return n.Line, n.Column, false
	}
	src := l.line(n.Line)
	start := n.Column - 1
	if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 {
		start++
	}
	if start < 0 || start+len(val) > len(src) || string(src[start:start+len(val)]) != n.Value {
		return n.Line, n.Column, false
	}
	return n.Line, start + off + 1, true
}
