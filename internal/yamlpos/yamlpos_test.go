package yamlpos_test

import (
	"strings"
	"testing"

	"github.com/weftstream/weft/internal/yamlpos"
	"gopkg.in/yaml.v3"
)

// entries reads the root mapping of src and returns its keys and the
// errors, one per line.
func entries(t *testing.T, src string) (keys []string, errs string) {
	t.Helper()
	r := yamlpos.NewReader("f.yaml", []byte(src))
	if root := r.Document("a file", "empty"); root != nil {
		for _, e := range r.Entries(root) {
			keys = append(keys, e.K.Value)
		}
	}
	if es := r.Errors(); es != nil {
		errs = es.Error()
	}
	return keys, errs
}

func TestRules(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		keys      []string
		errs      string
	}{
		{"plain", "a: 1\nb: 2\n", []string{"a", "b"}, ""},
		{"merge key", "x: &x {a: 1}\n<<: *x\nb: 2\n", []string{"x", "b"}, "f.yaml:2:1: merge keys (<<) are not supported"},
		{"repeated key", "a: 1\nb: 2\na: 3\n", []string{"a", "b"}, `f.yaml:3:1: key "a" appears twice (first at line 1)`},
		{"key not a string", "[a]: 1\nb: 2\n", []string{"b"}, "f.yaml:1:1: keys must be strings, found a list"},
		{"two documents", "a: 1\n---\nb: 2\n", []string{"a"}, "f.yaml:2:1: a file holds one YAML document"},
		{"empty", "", nil, "f.yaml:1:1: empty"},
		{"syntax", "a: [1\n", nil, "f.yaml:2:1: YAML: did not find expected ',' or ']'"},
		{"errors sorted", "b: 1\n<<: {}\nb: 2\n<<: {}\n", []string{"b"},
			"f.yaml:2:1: merge keys (<<) are not supported\n" + `f.yaml:3:1: key "b" appears twice (first at line 1)` + "\nf.yaml:4:1: merge keys (<<) are not supported"},
	} {
		keys, errs := entries(t, tc.src)
		if strings.Join(keys, ",") != strings.Join(tc.keys, ",") || errs != tc.errs {
			t.Errorf("%s: keys %v, errors:\n%s\nwant keys %v, errors:\n%s", tc.name, keys, errs, tc.keys, tc.errs)
		}
	}
}

// count walks n (resolving every node) and returns the values it saw,
// stopping when the reader does.
func count(r *yamlpos.Reader, n *yaml.Node) int {
	if n = r.Resolve(n); n == nil {
		return 0
	}
	c := 1
	for _, ch := range n.Content {
		if r.TooBig() {
			break
		}
		c += count(r, ch)
	}
	return c
}

// Resolve stops a file that expands to more than MaxValues values (here
// 10^7 through aliases: "billion laughs"), and reports it once; later
// errors are dropped.
func TestAliasBound(t *testing.T) {
	src := "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	prev := "a"
	for _, name := range []string{"b", "c", "d", "e", "f", "g"} {
		src += name + ": &" + name + " [" + strings.Repeat("*"+prev+", ", 9) + "*" + prev + "]\n"
		prev = name
	}
	r := yamlpos.NewReader("f.yaml", []byte(src))
	visits := count(r, r.Document("a file", "empty"))
	if !r.TooBig() || visits > yamlpos.MaxValues {
		t.Fatalf("too big %v after %d values", r.TooBig(), visits)
	}
	r.ErrorAt(1, 1, "dropped")
	es := r.Errors()
	if len(es) != 1 || es[0].Msg != "the file expands to more than 1048576 values (through aliases)" {
		t.Errorf("errors: %v", es)
	}
}
