package topotest_test

import (
	"strings"
	"testing"

	"github.com/weftstream/weft/topotest"
)

// Test files follow the YAML rules of topology files (internal/yamlpos):
// merge keys are rejected, like repeated keys, where a mapping is read
// (the file's fields and the values of records alike).
func TestCasesRejectMergeKeys(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"tests:\n  - name: a\n    input:\n      - {topic: t, value: {<<: {x: 1}, y: 2}}",
			`x.yaml:4:28: merge keys (<<) are not supported`},
		{"tests:\n  - name: a\n    input:\n      - &r {topic: t}\n      - {<<: *r, key: k}",
			`x.yaml:5:10: merge keys (<<) are not supported`},
		{"tests:\n  - name: a\n    name: b", `x.yaml:3:5: key "name" appears twice (first at line 2)`},
	} {
		_, err := topotest.ParseCases([]byte(tc.yaml), "x.yaml")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.yaml, err, tc.want)
		}
	}
}

// laughs is a record value that expands through aliases to 10^7 values
// ("billion laughs"): the reader stops at the bound of 2^20.
const laughs = `tests:
  - name: laughs
    input:
      - topic: t
        value:
          a: &a [x, x, x, x, x, x, x, x, x, x]
          b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
          c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
          d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
          e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
          f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
          g: [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]
`

func TestCasesBoundAliasExpansion(t *testing.T) {
	_, err := topotest.ParseCases([]byte(laughs), "x.yaml")
	if err == nil {
		t.Fatal("a file of 10^7 values through aliases was read")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "x.yaml:") ||
		!strings.HasSuffix(lines[0], ": the file expands to more than 1048576 values (through aliases)") {
		t.Errorf("error:\n%v\nwant one line: the file expands to more than 1048576 values", err)
	}
}

// Every case's first mistake is reported, not only the file's first.
func TestCasesReportEveryCase(t *testing.T) {
	_, err := topotest.ParseCases([]byte("tests:\n  - name: a\n    inputs: []\n  - input: []\n"), "x.yaml")
	want := `x.yaml:3:5: unknown field "inputs" in test case (known: name, input, expect)` + "\n" +
		`x.yaml:4:5: test case without name`
	if err == nil || err.Error() != want {
		t.Errorf("error:\n%v\nwant:\n%s", err, want)
	}
}
