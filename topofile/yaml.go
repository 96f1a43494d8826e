package topofile

import (
	"strings"

	"github.com/weftstream/weft/internal/yamlpos"
	"gopkg.in/yaml.v3"
)

// YAML helpers of the topology file loader: every value is read from a
// yaml.Node so that every mistake has a line and a column. The YAML rules
// (one document, string keys once per mapping, no merge keys, bounded
// alias expansion) are yamlpos's, shared with the test files of topotest.

// loader reads one topology file and collects its errors.
type loader struct {
	*yamlpos.Reader
	env func(string) (string, bool)
}

// kv is an entry of a mapping: its key node and its (resolved) value node.
type kv = yamlpos.KV

// fields returns the entries of mapping n (described as what) by key and
// reports keys not in known. A null n is an empty mapping. ok is false
// when n is not a mapping.
func (l *loader) fields(n *yaml.Node, at *yaml.Node, what string, known ...string) (map[string]kv, bool) {
	m := map[string]kv{}
	if yamlpos.IsNull(n) {
		return m, true
	}
	if n.Kind != yaml.MappingNode {
		l.Errorf(yamlpos.OrAt(n, at), "%s must be a mapping, found %s", what, yamlpos.KindName(n))
		return m, false
	}
	for _, e := range l.Entries(n) {
		if !contains(known, e.K.Value) {
			if s := didYouMean(e.K.Value, known); s != "" {
				l.Errorf(e.K, "unknown key %q in %s%s", e.K.Value, what, s)
			} else {
				l.Errorf(e.K, "unknown key %q in %s (keys: %s)", e.K.Value, what, strings.Join(known, ", "))
			}
			continue
		}
		m[e.K.Value] = e
	}
	return m, true
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
		l.Errorf(at, "missing required key %q in %s", key, what)
	}
	return e, ok
}

// str returns the value of e as a string: a scalar that is not null.
func (l *loader) str(e kv, what string) (string, bool) {
	if yamlpos.IsNull(e.V) {
		l.Errorf(e.K, "%s needs a value", what)
		return "", false
	}
	if e.V.Kind != yaml.ScalarNode {
		l.Errorf(e.V, "%s must be a string, found %s", what, yamlpos.KindName(e.V))
		return "", false
	}
	return e.V.Value, true
}
