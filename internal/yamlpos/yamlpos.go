// Package yamlpos reads YAML files whose every mistake must be reported
// at its position (file:line:col): weft's topology files (package
// topofile) and topology test files (package topotest). A Reader walks the
// yaml.v3 node tree of one document and collects the errors it finds, so
// that a file's mistakes are reported all at once (Errors, sorted by
// position).
//
// The rules are the same for every file weft reads:
//
//   - one document per file;
//   - mapping keys are strings and appear once per mapping;
//   - merge keys (<<) are not supported (they hide where a value comes
//     from, and the position of a merged value is not where it applies);
//   - aliases are followed, but a file expands to at most MaxValues values
//     through them (a file of nested aliases cannot take the reader's
//     memory or time: "billion laughs").
package yamlpos

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// MaxValues bounds the values (nodes) a file may expand to through
// aliases.
const MaxValues = 1 << 20

// Error is a mistake in a file, at a position (line and column 1-based;
// the column counts characters).
type Error struct {
	File      string
	Line, Col int
	Msg       string
}

// Error returns "file:line:col: msg".
func (e *Error) Error() string {
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Msg)
}

// Errors are the mistakes found in a file.
type Errors []*Error

// Error returns one "file:line:col: msg" line per error.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Sort sorts the errors by position (stable: errors at one position keep
// the order they were found in).
func (es Errors) Sort() {
	sort.SliceStable(es, func(i, j int) bool {
		if es[i].Line != es[j].Line {
			return es[i].Line < es[j].Line
		}
		return es[i].Col < es[j].Col
	})
}

// KV is an entry of a mapping: its key node and its (resolved) value
// node.
type KV struct{ K, V *yaml.Node }

// Reader reads one file and collects its errors.
type Reader struct {
	file   string
	data   []byte
	errs   Errors
	visits int
	tooBig bool
	lines  [][]rune
}

// NewReader returns a Reader of data, a file named file in errors.
func NewReader(file string, data []byte) *Reader { return &Reader{file: file, data: data} }

// File is the name of the file errors refer to.
func (r *Reader) File() string { return r.file }

// Failed reports whether an error has been found.
func (r *Reader) Failed() bool { return len(r.errs) > 0 }

// Count is the number of errors found so far.
func (r *Reader) Count() int { return len(r.errs) }

// Errors returns the errors found, sorted by position (nil: none).
func (r *Reader) Errors() Errors {
	if len(r.errs) == 0 {
		return nil
	}
	r.errs.Sort()
	return r.errs
}

// ErrorAt reports an error at line and column (at least 1:1). Once the
// file expanded to more than MaxValues values, further errors are dropped:
// what the reader sees of it then is incomplete.
func (r *Reader) ErrorAt(line, col int, format string, args ...any) {
	if r.tooBig {
		return
	}
	if line < 1 {
		line = 1
	}
	if col < 1 {
		col = 1
	}
	r.errs = append(r.errs, &Error{File: r.file, Line: line, Col: col, Msg: fmt.Sprintf(format, args...)})
}

// Errorf reports an error at node n (1:1 without a node).
func (r *Reader) Errorf(n *yaml.Node, format string, args ...any) {
	line, col := 1, 1
	if n != nil {
		line, col = n.Line, n.Column
	}
	r.ErrorAt(line, col, format, args...)
}

// Document parses the file's one document and returns its root node,
// resolved (nil when there is none or it is not valid YAML: the error is
// reported). empty is the error for a file without a document; a second
// document is reported as "<what> holds one YAML document".
func (r *Reader) Document(what, empty string) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(r.data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			r.ErrorAt(1, 1, "%s", empty)
		} else {
			r.syntaxError(err)
		}
		return nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		r.Errorf(&extra, "%s holds one YAML document", what)
	} else if !errors.Is(err, io.EOF) {
		r.syntaxError(err)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			r.ErrorAt(1, 1, "%s", empty)
			return nil
		}
		root = r.Resolve(root.Content[0])
	}
	return root
}

var yamlErrorRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxError reports a YAML syntax error at its line.
func (r *Reader) syntaxError(err error) {
	msg := err.Error()
	if m := yamlErrorRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		if strings.HasPrefix(m[2], "did not find expected") || strings.HasPrefix(m[2], "found duplicate %") ||
			m[2] == "found incompatible YAML document" || m[2] == "found undefined tag handle" {
			// yaml.v3 reports the 0-based line of parser (not scanner)
			// errors: the line where the construct that failed starts.
			line++
		}
		r.ErrorAt(line, 1, "YAML: %s", m[2])
		return
	}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		for _, e := range te.Errors {
			r.ErrorAt(1, 1, "YAML: %s", strings.TrimPrefix(e, "yaml: "))
		}
		return
	}
	r.ErrorAt(1, 1, "YAML: %s", strings.TrimPrefix(msg, "yaml: "))
}

// Resolve follows aliases and counts the values visited; it returns nil
// (and reports it, once) when the file expands to more than MaxValues
// values, and nil for an alias that does not resolve.
func (r *Reader) Resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode; i++ {
		if i > 100 || n.Alias == nil {
			r.Errorf(n, "alias %q does not resolve", n.Value)
			return nil
		}
		n = n.Alias
	}
	r.visits++
	if r.visits > MaxValues {
		if !r.tooBig {
			r.Errorf(n, "the file expands to more than %d values (through aliases)", MaxValues)
			r.tooBig = true
		}
		return nil
	}
	return n
}

// TooBig reports whether the file expanded to more than MaxValues values:
// walking it further is pointless.
func (r *Reader) TooBig() bool { return r.tooBig }

// Entries returns the entries of mapping n in order, values resolved,
// reporting keys that are not strings, merge keys and repeated keys (and
// leaving them out).
func (r *Reader) Entries(n *yaml.Node) []KV {
	var out []KV
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := r.Resolve(n.Content[i])
		if k == nil {
			return out
		}
		if k.Kind != yaml.ScalarNode {
			r.Errorf(k, "keys must be strings, found %s", KindName(k))
			continue
		}
		if k.Tag == "!!merge" {
			r.Errorf(k, "merge keys (<<) are not supported")
			continue
		}
		if prev, ok := seen[k.Value]; ok {
			r.Errorf(k, "key %q appears twice (first at line %d)", k.Value, prev.Line)
			continue
		}
		seen[k.Value] = k
		v := r.Resolve(n.Content[i+1])
		if v == nil && r.tooBig {
			return out
		}
		out = append(out, KV{K: k, V: v})
	}
	return out
}

// line returns line n (1-based) of the file as runes.
func (r *Reader) line(n int) []rune {
	if r.lines == nil {
		for _, s := range strings.Split(string(r.data), "\n") {
			r.lines = append(r.lines, []rune(strings.TrimSuffix(s, "\r")))
		}
	}
	if n < 1 || n > len(r.lines) {
		return nil
	}
	return r.lines[n-1]
}

// PosIn returns the file position of the character at offset off (runes,
// 0-based) of scalar n's value, when the value appears verbatim on one
// line of the file (a single-line plain or quoted scalar without escapes);
// otherwise n's position and exact false.
func (r *Reader) PosIn(n *yaml.Node, off int) (line, col int, exact bool) {
	if n == nil {
		return 1, 1, false
	}
	val := []rune(n.Value)
	if n.Kind != yaml.ScalarNode || strings.ContainsAny(n.Value, "\n\r") || off < 0 || off > len(val) {
		return n.Line, n.Column, false
	}
	src := r.line(n.Line)
	start := n.Column - 1
	if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 {
		start++
	}
	if start < 0 || start+len(val) > len(src) || string(src[start:start+len(val)]) != n.Value {
		return n.Line, n.Column, false
	}
	return n.Line, start + off + 1, true
}

// IsNull reports whether n is absent or a null.
func IsNull(n *yaml.Node) bool {
	return n == nil || n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// KindName describes the kind of a node for error messages ("a mapping",
// "a list", "a number", "a boolean", "a string", "nothing").
func KindName(n *yaml.Node) string {
	switch {
	case n == nil || IsNull(n):
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

// OrAt returns n unless it has no position (a null), then at.
func OrAt(n, at *yaml.Node) *yaml.Node {
	if n == nil || IsNull(n) && at != nil {
		return at
	}
	return n
}
