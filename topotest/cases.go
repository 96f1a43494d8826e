// Package topotest runs topology test cases on goka's in-memory tester,
// without a broker, like Kafka Streams' TopologyTestDriver or benthos test:
// each case feeds input records to a fresh copy of a topology and compares
// what it produced (output records, table values, dead-lettered records)
// with what the case expects. `weft test` is its command line.
//
// The test file format is described in docs/topology-format.md, section
// "Test cases":
//
//	tests:
//	  - name: big orders are tagged
//	    input:
//	      - {topic: orders, key: c1, value: {customer: c1, amount: 150}}
//	    expect:
//	      outputs:                 # in order, per topic
//	        - {topic: enriched-orders, key: c1, value: {amount: 150, name: unknown}}
//	      tables:
//	        - {table: per-customer, key: c1, value: 1}
//	      rejected: 0              # records sent to dead-letter topics
//
// Details of the semantics:
//
//   - Input values are written as YAML and encoded with the codec of their
//     topic: json as JSON (YAML integers stay integers), string and bytes
//     as the scalar's text, int64 as an integer; null is a tombstone (a
//     record without a value). An input may also name the topic of a table
//     the topology joins (Builder.Table / `tables:`): its value is then
//     stored in that table before the next input, as if another weft
//     processor had written it.
//   - Outputs are checked per topic: on every topic `outputs` names, the
//     records must be exactly the expected ones, in order; a missing or an
//     extra record fails the case. Topics it does not name are not
//     checked, except that `outputs: []` expects no output on any topic.
//     An expected output's headers must be present in the record with
//     those values (other headers, such as traceparent, are ignored).
//   - Values are compared as JSON-like values: 150 equals 150.0 and the
//     order of map keys does not matter. On string and bytes topics the
//     expected scalar is compared as text.
//   - `tables` names the table by the name of its aggregating node (the
//     pipeline name in a topology file); `value: null` expects no value.
//   - `rejected` is the number of records in all dead-letter topics.
//   - A suppress (coalesced emit) flushes once, after the last input of the
//     case: its topic then gets the latest value of every changed key, in
//     the order the keys first changed. A suppress until window_close
//     emits as it runs: a window's final value when a later input moves
//     stream time past the window's end plus grace (windows that are still
//     open at the end of the case emit nothing).
//
// Each case runs on a new tester with newly compiled processors, so cases
// do not see each other's state.
package topotest

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Case is one test case: records to feed and what to expect.
type Case struct {
	Name   string
	Inputs []Record
	Expect Expect
	// Pos is where the case is written (file:line:col), if it was loaded.
	Pos string
}

// Record is an input record, or an expected output record.
type Record struct {
	Topic string
	Key   string
	// Value is the value as a generic YAML value: map[string]any, []any,
	// string, int64, float64, bool or nil.
	Value     any
	Headers   map[string]string
	Timestamp time.Time
	// Pos is where the record is written (file:line:col), if it was loaded.
	Pos string

	// text is the literal text of a scalar value, used on string and
	// bytes topics ("1.50" stays "1.50").
	text *string
}

// Expect is what a case expects after its inputs.
type Expect struct {
	// Outputs are the expected output records, in order per topic: each
	// topic they name must have exactly these records; other topics are
	// not checked. Empty but not nil (`outputs: []`): no topic may have
	// any record.
	Outputs []Record
	// Tables are expected table values.
	Tables []TableValue
	// Rejected is the expected number of dead-lettered records; nil: not
	// checked.
	Rejected *int
}

// TableValue is an expected table value.
type TableValue struct {
	// Table is the name of the table's aggregating node (the pipeline
	// name in a topology file).
	Table string
	Key   string
	// Value is the expected value (a generic YAML value); nil expects no
	// value.
	Value any
	// Pos is where the expectation is written (file:line:col).
	Pos string
}

// LoadCases reads the test cases of a test file. Errors name the file,
// line and column.
func LoadCases(path string) ([]Case, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseCases(data, path)
}

// ParseCases parses the test cases in data; filename is used in errors
// and positions.
func ParseCases(data []byte, filename string) ([]Case, error) {
	p := &parser{file: filename}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %s", filename, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, fmt.Errorf("%s: empty test file: want a mapping with tests", filename)
	}
	root := doc.Content[0]
	fields, err := p.mapping(root, "test file", "tests")
	if err != nil {
		return nil, err
	}
	tests := fields["tests"]
	if tests == nil {
		return nil, p.errf(root, "test file without tests")
	}
	tests = resolve(tests)
	if tests.Kind != yaml.SequenceNode {
		return nil, p.errf(tests, "tests: want a list of test cases, got %s", kindName(tests))
	}
	var cases []Case
	names := map[string]string{}
	for _, n := range tests.Content {
		c, err := p.testCase(n)
		if err != nil {
			return nil, err
		}
		if prev, ok := names[c.Name]; ok {
			return nil, p.errf(n, "test case %q is defined twice (first at %s)", c.Name, prev)
		}
		names[c.Name] = c.Pos
		cases = append(cases, c)
	}
	if len(cases) == 0 {
		return nil, p.errf(tests, "tests: no test cases")
	}
	return cases, nil
}

type parser struct{ file string }

func (p *parser) pos(n *yaml.Node) string { return fmt.Sprintf("%s:%d:%d", p.file, n.Line, n.Column) }

func (p *parser) errf(n *yaml.Node, format string, args ...any) error {
	return fmt.Errorf("%s: %s", p.pos(n), fmt.Sprintf(format, args...))
}

// resolve follows aliases.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "null"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "nothing"
}

// mapping returns the values of a mapping's fields by name; unknown and
// duplicate fields are errors. Merge keys (<<) are expanded.
func (p *parser) mapping(n *yaml.Node, what string, known ...string) (map[string]*yaml.Node, error) {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		return nil, p.errf(n, "%s: want a mapping, got %s", what, kindName(n))
	}
	out := map[string]*yaml.Node{}
	check := func(k *yaml.Node) error {
		if k.Kind != yaml.ScalarNode {
			return p.errf(k, "%s: field names must be plain words", what)
		}
		if !contains(known, k.Value) {
			return p.errf(k, "unknown field %q in %s (known: %s)", k.Value, what, strings.Join(known, ", "))
		}
		return nil
	}
	// Explicit fields first: they win over merged (<<) ones.
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Tag == "!!merge" {
			continue
		}
		if err := check(k); err != nil {
			return nil, err
		}
		if _, dup := out[k.Value]; dup {
			return nil, p.errf(k, "field %q appears twice in %s", k.Value, what)
		}
		out[k.Value] = v
	}
	var fill func(m *yaml.Node) error
	fill = func(m *yaml.Node) error {
		for i := 0; i+1 < len(m.Content); i += 2 {
			k, v := m.Content[i], m.Content[i+1]
			if k.Tag == "!!merge" {
				if err := p.merge(v, fill); err != nil {
					return err
				}
				continue
			}
			if m == n {
				continue
			}
			if err := check(k); err != nil {
				return err
			}
			if _, set := out[k.Value]; !set {
				out[k.Value] = v
			}
		}
		return nil
	}
	if err := fill(n); err != nil {
		return nil, err
	}
	return out, nil
}

func (p *parser) merge(v *yaml.Node, walk func(*yaml.Node) error) error {
	v = resolve(v)
	switch v.Kind {
	case yaml.MappingNode:
		return walk(v)
	case yaml.SequenceNode:
		for _, e := range v.Content {
			e = resolve(e)
			if e.Kind != yaml.MappingNode {
				return p.errf(e, "a merge (<<) takes mappings, got %s", kindName(e))
			}
			if err := walk(e); err != nil {
				return err
			}
		}
		return nil
	}
	return p.errf(v, "a merge (<<) takes mappings, got %s", kindName(v))
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// str returns a scalar's text; null is "".
func (p *parser) str(n *yaml.Node, what string) (string, error) {
	n = resolve(n)
	if n.Kind != yaml.ScalarNode {
		return "", p.errf(n, "%s: want a scalar, got %s", what, kindName(n))
	}
	if n.Tag == "!!null" {
		return "", nil
	}
	return n.Value, nil
}

func (p *parser) required(fields map[string]*yaml.Node, at *yaml.Node, name, what string) (string, error) {
	n := fields[name]
	if n == nil {
		return "", p.errf(at, "%s without %s", what, name)
	}
	s, err := p.str(n, what+": "+name)
	if err != nil {
		return "", err
	}
	if s == "" {
		return "", p.errf(n, "%s: empty %s", what, name)
	}
	return s, nil
}

func (p *parser) testCase(n *yaml.Node) (Case, error) {
	n = resolve(n)
	fields, err := p.mapping(n, "test case", "name", "input", "expect")
	if err != nil {
		return Case{}, err
	}
	c := Case{Pos: p.pos(n)}
	if c.Name, err = p.required(fields, n, "name", "test case"); err != nil {
		return Case{}, err
	}
	what := fmt.Sprintf("test case %q", c.Name)
	if in := fields["input"]; in != nil {
		if c.Inputs, err = p.records(in, what+": input", true); err != nil {
			return Case{}, err
		}
	}
	if ex := fields["expect"]; ex != nil {
		if c.Expect, err = p.expect(ex, what); err != nil {
			return Case{}, err
		}
	}
	return c, nil
}

func (p *parser) records(n *yaml.Node, what string, input bool) ([]Record, error) {
	n = resolve(n)
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return []Record{}, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, p.errf(n, "%s: want a list of records, got %s", what, kindName(n))
	}
	out := make([]Record, 0, len(n.Content))
	for i, e := range n.Content {
		r, err := p.record(e, fmt.Sprintf("%s[%d]", what, i), input)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

func (p *parser) record(n *yaml.Node, what string, input bool) (Record, error) {
	n = resolve(n)
	known := []string{"topic", "key", "value", "headers"}
	if input {
		known = append(known, "timestamp")
	}
	fields, err := p.mapping(n, what, known...)
	if err != nil {
		return Record{}, err
	}
	r := Record{Pos: p.pos(n)}
	if r.Topic, err = p.required(fields, n, "topic", what); err != nil {
		return Record{}, err
	}
	if k := fields["key"]; k != nil {
		if r.Key, err = p.str(k, what+": key"); err != nil {
			return Record{}, err
		}
	}
	if v := fields["value"]; v != nil {
		if r.Value, err = p.value(v); err != nil {
			return Record{}, err
		}
		if v := resolve(v); v.Kind == yaml.ScalarNode && v.Tag != "!!null" {
			text := v.Value
			r.text = &text
		}
	}
	if h := fields["headers"]; h != nil {
		hf := resolve(h)
		if hf.Kind != yaml.MappingNode {
			return Record{}, p.errf(hf, "%s: headers: want a mapping of names to values, got %s", what, kindName(hf))
		}
		r.Headers = map[string]string{}
		for i := 0; i+1 < len(hf.Content); i += 2 {
			name, err := p.str(hf.Content[i], what+": header name")
			if err != nil {
				return Record{}, err
			}
			val, err := p.str(hf.Content[i+1], fmt.Sprintf("%s: header %s", what, name))
			if err != nil {
				return Record{}, err
			}
			r.Headers[name] = val
		}
	}
	if ts := fields["timestamp"]; ts != nil {
		s, err := p.str(ts, what+": timestamp")
		if err != nil {
			return Record{}, err
		}
		if r.Timestamp, err = time.Parse(time.RFC3339Nano, s); err != nil {
			return Record{}, p.errf(ts, "%s: timestamp %q is not RFC 3339 (like 2026-01-05T10:00:00Z)", what, s)
		}
	}
	return r, nil
}

func (p *parser) expect(n *yaml.Node, what string) (Expect, error) {
	n = resolve(n)
	fields, err := p.mapping(n, what+": expect", "outputs", "tables", "rejected")
	if err != nil {
		return Expect{}, err
	}
	var e Expect
	if o := fields["outputs"]; o != nil {
		if e.Outputs, err = p.records(o, what+": outputs", false); err != nil {
			return Expect{}, err
		}
	}
	if t := fields["tables"]; t != nil {
		t = resolve(t)
		if t.Kind != yaml.SequenceNode {
			return Expect{}, p.errf(t, "%s: tables: want a list of {table, key, value}, got %s", what, kindName(t))
		}
		for i, tn := range t.Content {
			tw := fmt.Sprintf("%s: tables[%d]", what, i)
			tf, err := p.mapping(tn, tw, "table", "key", "value")
			if err != nil {
				return Expect{}, err
			}
			tv := TableValue{Pos: p.pos(resolve(tn))}
			if tv.Table, err = p.required(tf, tn, "table", tw); err != nil {
				return Expect{}, err
			}
			if k := tf["key"]; k != nil {
				if tv.Key, err = p.str(k, tw+": key"); err != nil {
					return Expect{}, err
				}
			}
			if v := tf["value"]; v != nil {
				if tv.Value, err = p.value(v); err != nil {
					return Expect{}, err
				}
			}
			e.Tables = append(e.Tables, tv)
		}
	}
	if r := fields["rejected"]; r != nil {
		var count int
		if err := resolve(r).Decode(&count); err != nil || count < 0 {
			return Expect{}, p.errf(r, "%s: rejected: want a number of records (0 or more), got %s", what, kindName(resolve(r)))
		}
		e.Rejected = &count
	}
	return e, nil
}

// value turns a YAML node into a generic value: map[string]any, []any,
// string, int64, float64, bool or nil.
func (p *parser) value(n *yaml.Node) (any, error) {
	n = resolve(n)
	switch n.Kind {
	case yaml.MappingNode:
		m := map[string]any{}
		// Merged (<<) keys first, so that explicit keys win.
		var add func(m2 *yaml.Node) error
		add = func(m2 *yaml.Node) error {
			for _, merges := range []bool{true, false} {
				for i := 0; i+1 < len(m2.Content); i += 2 {
					k, v := resolve(m2.Content[i]), m2.Content[i+1]
					if (k.Tag == "!!merge") != merges {
						continue
					}
					if merges {
						if err := p.merge(v, add); err != nil {
							return err
						}
						continue
					}
					if k.Kind != yaml.ScalarNode {
						return p.errf(k, "map keys must be scalars")
					}
					val, err := p.value(v)
					if err != nil {
						return err
					}
					m[k.Value] = val
				}
			}
			return nil
		}
		if err := add(n); err != nil {
			return nil, err
		}
		return m, nil
	case yaml.SequenceNode:
		l := make([]any, 0, len(n.Content))
		for _, e := range n.Content {
			v, err := p.value(e)
			if err != nil {
				return nil, err
			}
			l = append(l, v)
		}
		return l, nil
	case yaml.ScalarNode:
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, p.errf(n, "%v", err)
		}
		switch x := v.(type) {
		case int:
			return int64(x), nil
		case uint64:
			return float64(x), nil
		case time.Time: // a !!timestamp tag: keep the text
			return n.Value, nil
		case []byte:
			return string(x), nil
		}
		return v, nil
	}
	return nil, errors.New("empty value")
}
