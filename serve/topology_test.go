package serve_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/weftstream/weft/serve"
	"github.com/weftstream/weft/topology"
)

// GET /topology answers the running topology's description: for a
// filter and a count of one stream, one group with its three nodes, the
// four edges topic → source → filter → count ↔ table, and the store.
func TestTopologyDescribesTheRunningTopology(t *testing.T) {
	b := topology.New("shop")
	b.Stream("orders", topology.JSON{}).Filter("valid", func(string, any) (bool, error) { return true, nil }).
		GroupByKey().Count("per-customer")
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	c, err := topology.Compile(top)
	if err != nil {
		t.Fatal(err)
	}
	s, err := serve.New(nil, serve.WithTopology(c))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/topology")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var d topology.Description
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /topology: %d, %v", resp.StatusCode, err)
	}
	if d.App != "shop" || len(d.Groups) != 1 || d.Groups[0].Name != "shop-per-customer" || d.Groups[0].Table != "shop-per-customer-table" {
		t.Fatalf("groups %+v", d.Groups)
	}
	var kinds []string
	for _, n := range d.Groups[0].Nodes {
		kinds = append(kinds, n.Role+":"+n.Kind+":"+n.Name)
	}
	if want := []string{"source:source:source-orders", "processor:filter:valid", "processor:count:per-customer"}; !slices.Equal(kinds, want) {
		t.Errorf("nodes %v, want %v", kinds, want)
	}
	want := []topology.DiagramEdge{
		{From: "topic/orders", To: "g0/source-orders", Kind: "flow"},
		{From: "g0/source-orders", To: "g0/valid", Kind: "flow"},
		{From: "g0/valid", To: "g0/per-customer", Kind: "flow"},
		{From: "g0/per-customer", To: "store/shop-per-customer-table", Kind: "table"},
	}
	if !slices.Equal(d.Diagram.Edges, want) {
		t.Errorf("edges %+v, want %+v", d.Diagram.Edges, want)
	}
	if len(d.Stores) != 1 || d.Stores[0].Owner != "count per-customer" || d.Stores[0].Changelog != "shop-per-customer-table" {
		t.Errorf("stores %+v", d.Stores)
	}
	ids := map[string]bool{}
	for _, n := range d.Diagram.Nodes {
		ids[n.ID] = true
	}
	for _, e := range d.Diagram.Edges {
		if !ids[e.From] || !ids[e.To] {
			t.Errorf("edge %+v ends at a node the diagram does not list", e)
		}
	}

	// Without a topology: 404 as a problem.
	s, _ = serve.New(nil)
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/topology", nil))
	if rec.Code != 404 || rec.Header().Get("Content-Type") != "application/problem+json" {
		t.Fatalf("no topology: %d %s", rec.Code, rec.Header().Get("Content-Type"))
	}
}
