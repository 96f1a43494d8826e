package topofile_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/weftstream/weft/processors"
	"github.com/weftstream/weft/topofile"
	"github.com/weftstream/weft/topology"
)

const joinTableYAML = `app: bank
streams:
  customers: {topic: customers}
  payments: {topic: payments}
pipelines:
  - name: customer
    from: customers
    steps:
      - latest: {codec: json}
  - name: payments-per-customer
    from: payments
    steps:
      - group_by_key: {}
      - count: {}
  - name: customer-payments
    from: table:customer
    steps:
      - join_table: {table: payments-per-customer, value: "{'name': value.name, 'payments': other}"}
`

func TestJoinTableStep(t *testing.T) {
	f, err := topofile.Load("join.yaml", []byte(joinTableYAML))
	if err != nil {
		t.Fatal(err)
	}
	c, err := topology.Compile(f.Topology)
	if err != nil {
		t.Fatal(err)
	}
	tt := runOnTester(t, c)
	tt.Consume("customers", "c1", []byte(`{"name":"Alice"}`))
	tt.Consume("payments", "c1", []byte(`{}`))
	tt.Consume("payments", "c1", []byte(`{}`))
	v := tt.TableValue("bank-customer-payments-table", "c1")
	if v == nil {
		t.Fatal("no joined value for c1")
	}
	got, _ := json.Marshal(v.(*processors.Stored).Value)
	if string(got) != `{"name":"Alice","payments":2}` {
		t.Fatalf("joined c1 = %s", got)
	}
}

func TestJoinTableStepErrors(t *testing.T) {
	bad := strings.Replace(joinTableYAML, "from: table:customer\n", "from: customers\n", 1)
	_, err := topofile.Load("join.yaml", []byte(bad))
	if err == nil || !strings.Contains(err.Error(), "join.yaml:18:9: join_table joins the table a pipeline reads") {
		t.Fatalf("join_table on a stream: %v", err)
	}
	bad = strings.Replace(joinTableYAML, "table: payments-per-customer", "table: payments-per-customr", 1)
	_, err = topofile.Load("join.yaml", []byte(bad))
	if err == nil || !strings.Contains(err.Error(), `unknown table "payments-per-customr", did you mean "payments-per-customer"?`) {
		t.Fatalf("unknown table: %v", err)
	}
}
