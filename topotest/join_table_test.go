package topotest_test

import (
	"context"
	"strings"
	"testing"

	"github.com/weftstream/weft/topofile"
	"github.com/weftstream/weft/topotest"
)

// A join_table with a table another application writes (crm-table) reads
// that table's topic as records, as weft run does: a test case's input for
// the table reaches the join (Group.Inputs names both topics; it used to
// be one "left,right" string that no input matched, so the join never saw
// the table).
func TestJoinTableWithExternalTable(t *testing.T) {
	f, err := topofile.LoadFile("../testdata/topologies/join-crm.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cases, err := topotest.ParseCases([]byte(`
tests:
  - name: joined once both sides exist
    input:
      - {topic: payments, key: c1, value: {amount: 5}}
      - {topic: crm-table, key: c1, value: {name: Alice}}
      - {topic: payments, key: c1, value: {amount: 7}}
      - {topic: crm-table, key: c2, value: {name: Bob}}
    expect:
      tables:
        - {table: counts, key: c1, value: 2}
        - {table: with-crm, key: c1, value: {n: 2, crm: {name: Alice}}}
        - {table: with-crm, key: c2, value: null}
      rejected: 0
`), "join.test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	results, err := topotest.Run(context.Background(), f.Topology, cases)
	if err != nil {
		t.Fatal(err)
	}
	if r := results[0]; !r.Passed {
		t.Errorf("case failed:\n%s", strings.Join(r.Failures, "\n"))
	}
}
