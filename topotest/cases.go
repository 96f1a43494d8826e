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
//     processor had written it (a table join, which reads the table's
//     topic, gets it as a record of that topic, as in weft run).
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

	"github.com/weftstream/weft/internal/yamlpos"
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
// and positions. The YAML rules are those of topology files (package
// internal/yamlpos: one document, keys once per mapping, no merge keys,
// bounded alias expansion); the error lists every mistake found (each
// case is read up to its first one), sorted by position.
func ParseCases(data []byte, filename string) ([]Case, error) {
	p := &parser{r: yamlpos.NewReader(filename, data)}
	cases := p.file()
	if errs := p.r.Errors(); errs != nil {
		return nil, errs
	}
	return cases, nil
}

// parser reads a test file; its errors are collected in r.
type parser struct{ r *yamlpos.Reader }

// errReported stops reading a part of the file whose error is reported
// (in parser.r).
var errReported = errors.New("reported")

func (p *parser) pos(n *yaml.Node) string {
	return fmt.Sprintf("%s:%d:%d", p.r.File(), n.Line, n.Column)
}

// errf reports an error at n and returns errReported.
func (p *parser) errf(n *yaml.Node, format string, args ...any) error {
	p.r.Errorf(n, format, args...)
	return errReported
}

// resolve follows aliases (within the file's bound on them).
func (p *parser) resolve(n *yaml.Node) (*yaml.Node, error) {
	if n = p.r.Resolve(n); n == nil {
		return nil, errReported
	}
	return n, nil
}

// file reads the test cases of the file.
func (p *parser) file() []Case {
	root := p.r.Document("a test file", "empty test file: want a mapping with tests")
	if root == nil {
		return nil
	}
	fields, err := p.mapping(root, "test file", "tests")
	if err != nil {
		return nil
	}
	tests := fields["tests"]
	if tests == nil {
		p.errf(root, "test file without tests")
		return nil
	}
	if tests.Kind != yaml.SequenceNode {
		p.errf(tests, "tests: want a list of test cases, got %s", kindName(tests))
		return nil
	}
	var cases []Case
	names := map[string]string{}
	for _, n := range tests.Content {
		c, err := p.testCase(n)
		if p.r.TooBig() {
			return nil
		}
		if err != nil {
			continue // reported: read the next case
		}
		if prev, ok := names[c.Name]; ok {
			p.errf(n, "test case %q is defined twice (first at %s)", c.Name, prev)
			continue
		}
		names[c.Name] = c.Pos
		cases = append(cases, c)
	}
	if len(tests.Content) == 0 {
		p.errf(tests, "tests: no test cases")
	}
	return cases
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

// mapping returns the values (resolved) of a mapping's fields by name;
// unknown fields are errors, and so are what yamlpos rejects (merge keys,
// repeated keys, keys that are not strings).
func (p *parser) mapping(n *yaml.Node, what string, known ...string) (map[string]*yaml.Node, error) {
	n, err := p.resolve(n)
	if err != nil {
		return nil, err
	}
	if n.Kind != yaml.MappingNode {
		return nil, p.errf(n, "%s: want a mapping, got %s", what, kindName(n))
	}
	before := p.r.Count()
	out := map[string]*yaml.Node{}
	for _, e := range p.r.Entries(n) {
		if !contains(known, e.K.Value) {
			return nil, p.errf(e.K, "unknown field %q in %s (known: %s)", e.K.Value, what, strings.Join(known, ", "))
		}
		out[e.K.Value] = e.V
	}
	if p.r.Count() > before {
		return nil, errReported
	}
	return out, nil
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
	n, err := p.resolve(n)
	if err != nil {
		return "", err
	}
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
	n, err := p.resolve(n)
	if err != nil {
		return Case{}, err
	}
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
	n, err := p.resolve(n)
	if err != nil {
		return Record{}, err
	}
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
		if v.Kind == yaml.ScalarNode && v.Tag != "!!null" {
			text := v.Value
			r.text = &text
		}
	}
	if h := fields["headers"]; h != nil {
		if h.Kind != yaml.MappingNode {
			return Record{}, p.errf(h, "%s: headers: want a mapping of names to values, got %s", what, kindName(h))
		}
		before := p.r.Count()
		r.Headers = map[string]string{}
		for _, e := range p.r.Entries(h) {
			val, err := p.str(e.V, fmt.Sprintf("%s: header %s", what, e.K.Value))
			if err != nil {
				return Record{}, err
			}
			r.Headers[e.K.Value] = val
		}
		if p.r.Count() > before {
			return Record{}, errReported
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
		if t.Kind != yaml.SequenceNode {
			return Expect{}, p.errf(t, "%s: tables: want a list of {table, key, value}, got %s", what, kindName(t))
		}
		for i, tn := range t.Content {
			tw := fmt.Sprintf("%s: tables[%d]", what, i)
			tn, err := p.resolve(tn)
			if err != nil {
				return Expect{}, err
			}
			tf, err := p.mapping(tn, tw, "table", "key", "value")
			if err != nil {
				return Expect{}, err
			}
			tv := TableValue{Pos: p.pos(tn)}
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
		if err := r.Decode(&count); err != nil || count < 0 {
			return Expect{}, p.errf(r, "%s: rejected: want a number of records (0 or more), got %s", what, kindName(r))
		}
		e.Rejected = &count
	}
	return e, nil
}

// value turns a YAML node into a generic value: map[string]any, []any,
// string, int64, float64, bool or nil.
func (p *parser) value(n *yaml.Node) (any, error) {
	n, err := p.resolve(n)
	if err != nil {
		return nil, err
	}
	switch n.Kind {
	case yaml.MappingNode:
		before := p.r.Count()
		m := map[string]any{}
		for _, e := range p.r.Entries(n) {
			val, err := p.value(e.V)
			if err != nil {
				return nil, err
			}
			m[e.K.Value] = val
		}
		if p.r.Count() > before {
			return nil, errReported
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
	return nil, p.errf(n, "empty value")
}
