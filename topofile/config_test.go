package topofile_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/tester"
	"github.com/weftstream/weft/kafkaclient"
	"github.com/weftstream/weft/processors"
	"github.com/weftstream/weft/topofile"
	"github.com/weftstream/weft/topology"
)

const topologies = "../testdata/topologies"

func TestLoadShop(t *testing.T) {
	f, err := topofile.LoadFile(filepath.Join(topologies, "shop.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if f.App != "shop" || f.OnError != topofile.OnErrorDeadLetter || len(f.Brokers) != 0 {
		t.Errorf("settings: app %q, on_error %q, brokers %v", f.App, f.OnError, f.Brokers)
	}
	if f.SampleRatio == nil || *f.SampleRatio != 0.5 {
		t.Errorf("sample ratio %v, want 0.5", f.SampleRatio)
	}
	wantStreams := []topofile.Source{{Name: "orders", Topic: "orders", Codec: "json"}, {Name: "clicks", Topic: "clicks", Codec: "string"}}
	if !reflect.DeepEqual(f.Streams, wantStreams) {
		t.Errorf("streams %+v", f.Streams)
	}
	if len(f.Tables) != 1 || f.Tables[0] != (topofile.Source{Name: "crm", Topic: "crm-table", Codec: "json"}) {
		t.Errorf("tables %+v", f.Tables)
	}
	var names, tables []string
	kinds := map[string]bool{}
	for _, p := range f.Pipelines {
		names = append(names, p.Name)
		if p.Table {
			tables = append(tables, p.Name)
		}
		for _, s := range p.Steps {
			kinds[s] = true
		}
	}
	if len(f.Pipelines) != 14 {
		t.Errorf("pipelines %v", names)
	}
	if got := strings.Join(tables, " "); got != "per-customer segment-totals daily-totals largest-small-order latest-order customer-profile words" {
		t.Errorf("table pipelines %s", got)
	}
	for _, k := range []string{"filter", "map_values", "select_key", "map", "flat_map", "join", "branch", "to",
		"group_by_key", "group_by", "window", "count", "reduce", "aggregate", "latest", "suppress", "join_table"} {
		if !kinds[k] {
			t.Errorf("shop.yaml has no %s step", k)
		}
	}
	var outs []string
	for _, o := range f.Outputs {
		outs = append(outs, o.Name+">"+o.Topic)
	}
	if got := strings.Join(outs, " "); got != "enriched>enriched-orders big-amounts>big-amounts segment-totals-out>segment-totals daily-totals-final>daily-totals-final customer-counts>customer-counts" {
		t.Errorf("outputs %s", got)
	}
	c, err := topology.Compile(f.Topology)
	if err != nil {
		t.Fatal(err)
	}
	groups := map[goka.Group]string{}
	for _, g := range c.Groups {
		groups[g.Name] = strings.Join(g.Inputs, ",")
	}
	want := map[goka.Group]string{
		"shop-orders":                        "orders",
		"shop-clicks":                        "clicks",
		"shop-per-customer":                  "orders",
		"shop-latest-order":                  "orders",
		"shop-segment-totals":                "shop-segment-totals-repartition",
		"shop-daily-totals":                  "shop-daily-totals-repartition",
		"shop-largest-small-order":           "shop-largest-small-order-repartition",
		"shop-words":                         "shop-words-repartition",
		"shop-daily-totals-final.0.suppress": "shop-daily-totals-final.0.suppress-repartition",
		"shop-customer-profile-sides":        "shop-latest-order-table,shop-per-customer-table",
		"shop-customer-profile":              "shop-customer-profile-repartition",
	}
	if !reflect.DeepEqual(groups, want) {
		t.Errorf("groups:\n%s", c)
	}
}

// TestShopRuns runs every group of shop.yaml on goka's tester and checks
// tables and outputs computed by hand. goka's tester cannot run a
// coalescer (it produces through its own Kafka producer, and the commits it
// defers block the tester), so the suppress step is left out: its pipeline
// then writes every update of the segment totals.
func TestShopRuns(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(topologies, "shop.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	const suppress = "      - suppress: {every: 10s}\n"
	if !strings.Contains(string(data), suppress) {
		t.Fatalf("shop.yaml has no %q", suppress)
	}
	f, err := topofile.Load("shop.yaml", []byte(strings.Replace(string(data), suppress, "", 1)))
	if err != nil {
		t.Fatal(err)
	}
	c, err := topology.Compile(f.Topology)
	if err != nil {
		t.Fatal(err)
	}
	tt := runOnTester(t, c)
	tt.SetTableValue("crm-table", "c1", &processors.Stored{Value: map[string]any{"name": "Alice"}})
	queues := map[string]*tester.QueueTracker{}
	for _, topic := range []string{"enriched-orders", "big-amounts", "customer-counts", "segment-totals", "daily-totals-final"} {
		queues[topic] = tt.NewQueueTracker(topic)
	}

	day := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	for _, o := range []struct {
		at         time.Duration
		key, value string
	}{
		{10 * time.Hour, "c1", `{"customer": "c1", "segment": "retail", "amount": 50}`},
		{11 * time.Hour, "c1", `{"customer": "c1", "segment": "retail", "amount": 150}`},
		{12 * time.Hour, "c2", `{"customer": "c2", "segment": "retail", "amount": 20}`},
		{33 * time.Hour, "c2", `{"customer": "c2", "segment": "b2b", "amount": 500}`},    // the next day
		{34 * time.Hour, "c3", `{"customer": "c3", "segment": "b2b", "amount": -5}`},     // filtered out
		{35 * time.Hour, "c3", `{"customer": "c3", "segment": "b2b", "amount": "lots"}`}, // rejected: string > int
		{36 * time.Hour, "c5", `{"customer": "c5", "segment": "retail"}`},                // rejected: no amount
	} {
		tt.Consume("orders", o.key, []byte(o.value), tester.WithTime(day.Add(o.at)))
	}
	tt.Consume("clicks", "u1", []byte("buy shoes  buy"))
	tt.Consume("clicks", "u2", []byte("shoes"))

	value := func(table, key string) string {
		v := tt.TableValue(goka.Table(table), key)
		if v == nil {
			return "<nil>"
		}
		data, err := json.Marshal(v.(*processors.Stored).Value)
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	for _, c := range []struct{ table, key, want string }{
		{"shop-per-customer-table", "c1", "2"},
		{"shop-per-customer-table", "c2", "2"},
		{"shop-per-customer-table", "c3", "<nil>"},
		{"shop-per-customer-table", "c5", "<nil>"},
		{"shop-segment-totals-table", "retail", "220"},
		{"shop-segment-totals-table", "b2b", "500"},
		{"shop-largest-small-order-table", "retail", `{"amount":50,"customer":"c1","segment":"retail"}`},
		{"shop-largest-small-order-table", "b2b", "<nil>"},
		{"shop-latest-order-table", "c1", `{"amount":150,"customer":"c1","segment":"retail"}`},
		{"shop-latest-order-table", "c2", `{"amount":500,"customer":"c2","segment":"b2b"}`},
		{"shop-daily-totals-table", "c1@2026-05-01T00:00:00Z", "200"},
		{"shop-daily-totals-table", "c2@2026-05-01T00:00:00Z", "20"},
		{"shop-daily-totals-table", "c2@2026-05-02T00:00:00Z", "500"},
		{"shop-daily-totals-table", "c1", "<nil>"},
		{"shop-words-table", "buy", "2"},
		{"shop-words-table", "shoes", "2"},
		{"shop-words-table", "", "<nil>"},
	} {
		if got := value(c.table, c.key); got != c.want {
			t.Errorf("%s[%s] = %s, want %s", c.table, c.key, got, c.want)
		}
	}
	drain := func(topic string) string {
		var out []string
		for {
			k, v, ok := queues[topic].Next()
			if !ok {
				break
			}
			out = append(out, fmt.Sprintf("%s=%s", k, v))
		}
		return strings.Join(out, " ")
	}
	for topic, want := range map[string]string{
		"enriched-orders": `c1={"name":"Alice","order":{"amount":50,"customer":"c1","segment":"retail"}} ` +
			`c1={"name":"Alice","order":{"amount":150,"customer":"c1","segment":"retail"}} ` +
			`c2={"name":"unknown","order":{"amount":20,"customer":"c2","segment":"retail"}} ` +
			`c2={"name":"unknown","order":{"amount":500,"customer":"c2","segment":"b2b"}}`,
		"big-amounts":     "c1/big=150 c2/big=500",
		"segment-totals":  "retail=50 retail=200 retail=220 b2b=500",
		"customer-counts": `c1={"customer":"c1","orders":1} c1={"customer":"c1","orders":2} c2={"customer":"c2","orders":1} c2={"customer":"c2","orders":2}`,
		// c2's order on May 2nd closes May 1st (at 00:10); May 2nd stays open.
		"daily-totals-final": "c1@2026-05-01T00:00:00Z=200 c2@2026-05-01T00:00:00Z=20",
	} {
		if got := drain(topic); got != want {
			t.Errorf("%s:\n got %s\nwant %s", topic, got, want)
		}
	}
	// Each group that reads orders itself rejects the two bad orders.
	for _, g := range c.Groups {
		want := int64(0)
		switch g.Name {
		case "shop-orders", "shop-per-customer", "shop-latest-order":
			want = 2
		}
		if got := g.Runtime.Tally().Rejected(); got != want {
			t.Errorf("group %s rejected %d, want %d (%v)", g.Name, got, want, g.Runtime.Tally().RejectedByReason())
		}
	}
}

// readExpected reads an .errors file: one "file:line:col: message" per
// line; a line ending in "..." matches a message starting with the rest.
func readExpected(t *testing.T, path string) []string {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, line)
		}
	}
	return out
}

func TestInvalidFiles(t *testing.T) {
	for _, name := range []string{"WEFT_TEST_UNSET_BROKERS", "WEFT_TEST_UNSET_PASSWORD"} {
		t.Setenv(name, "")
		os.Unsetenv(name)
	}
	files, err := filepath.Glob(filepath.Join(topologies, "invalid", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no invalid files: %v", err)
	}
	for _, path := range files {
		base := filepath.Base(path)
		t.Run(strings.TrimSuffix(base, ".yaml"), func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			want := readExpected(t, strings.TrimSuffix(path, ".yaml")+".errors")
			_, err = topofile.Load(base, data)
			var ces topofile.ConfigErrors
			if !errors.As(err, &ces) {
				t.Fatalf("Load: %v, want ConfigErrors", err)
			}
			got := strings.Split(ces.Error(), "\n")
			ok := len(got) == len(want)
			for i := 0; ok && i < len(got); i++ {
				if p, prefix := strings.CutSuffix(want[i], "..."); prefix {
					ok = strings.HasPrefix(got[i], p)
				} else {
					ok = got[i] == want[i]
				}
			}
			if !ok {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

func TestEnvironment(t *testing.T) {
	t.Setenv("WEFT_TEST_BROKERS", "k1:9092, k2:9092")
	t.Setenv("WEFT_TEST_PASSWORD", "s3cret")
	src := `app: envs
brokers: ["${WEFT_TEST_BROKERS}", "k3:9092"]
sasl: {mechanism: scram-sha-512, user: weft, password: "${WEFT_TEST_PASSWORD}$$x"}
on_error: stop
streams:
  in: {topic: in, codec: string}
pipelines:
  - {name: out, from: in, steps: [{to: {topic: out, codec: string}}]}
`
	f, err := topofile.Load("env.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(f.Brokers, " "); got != "k1:9092 k2:9092 k3:9092" {
		t.Errorf("brokers %q", got)
	}
	if f.SASL != (kafkaclient.SASL{Mechanism: "SCRAM-SHA-512", User: "weft", Password: "s3cret$x"}) {
		t.Errorf("sasl %+v", f.SASL)
	}
	if s := fmt.Sprintf("%v %+v %#v %s", f.SASL, f, f.SASL, f.SASL); strings.Contains(s, "s3cret") {
		t.Errorf("the password shows: %s", s)
	}
	if f.OnError != topofile.OnErrorStop || f.SampleRatio != nil {
		t.Errorf("on_error %q, sample ratio %v", f.OnError, f.SampleRatio)
	}
}

// eval loads a one-pipeline topology that maps values with expr and
// returns the mapper's result for value.
func mapValues(t *testing.T, expr string) topology.ValueMapper {
	t.Helper()
	src := fmt.Sprintf("app: t\nstreams: {in: {topic: in}}\npipelines:\n  - {name: p, from: in, steps: [{map_values: %q}, {to: {topic: out}}]}\n", expr)
	f, err := topofile.Load("t.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range f.Topology.Nodes {
		if n.Kind == topology.KindMapValues {
			return func(k string, v any) (any, error) { return topofile.RunValueMapper(n, k, v) }
		}
	}
	t.Fatal("no map_values node")
	return nil
}

func TestCELValues(t *testing.T) {
	order := func() any {
		v, err := topology.JSON{}.Decode([]byte(`{"customer": "c1", "amount": 150, "price": 2.5, "tags": ["a", "b"], "note": null}`))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, c := range []struct {
		expr string
		want string // JSON of the result, or "error: substring"
	}{
		{"value", `{"amount":150,"customer":"c1","note":null,"price":2.5,"tags":["a","b"]}`},
		{"value.amount * 2", "300"},
		{"value.price * 2.0", "5"},
		{"value.amount > 100 && value.price < 3.0", "true"},
		{"value.note", "null"},
		{"{'k': key, 'n': [1, 2.5, 'x', null, {'deep': value.tags}], 'u': 7u}", `{"k":"c1","n":[1,2.5,"x",null,{"deep":["a","b"]}],"u":7}`},
		{"value.?missing.orValue(0)", "0"},
		{"has(value.missing) ? 1 : 2", "2"},
		{"value.customer.upperAscii()", `"C1"`},
		{"value.amount > 1.5", "true"},
		{"value.missing", "error: no such key: missing"},
		{"value.customer + 1", "error: no such overload"},
		{"{1: 2}", "error: map key 1 is a int, not a string"},
	} {
		fn := mapValues(t, c.expr)
		got, err := fn("c1", order())
		var s string
		if err != nil {
			s = "error: " + err.Error()
		} else {
			data, jerr := json.Marshal(got)
			if jerr != nil {
				t.Fatalf("%s: %v", c.expr, jerr)
			}
			s = string(data)
		}
		if p, ok := strings.CutPrefix(c.want, "error: "); ok {
			if !strings.HasPrefix(s, "error: ") || !strings.Contains(s, p) {
				t.Errorf("%s = %s, want an error with %q", c.expr, s, p)
			}
		} else if s != c.want {
			t.Errorf("%s = %s, want %s", c.expr, s, c.want)
		}
	}
}

func TestLoadDoesNotDoNothing(t *testing.T) {
	src := "app: t\nstreams: {in: {topic: in}}\npipelines:\n  - {name: p, from: in, steps: [{filter: 'true'}]}\n"
	_, err := topofile.Load("t.yaml", []byte(src))
	if err == nil || err.Error() != "t.yaml:3:1: the topology does nothing: no pipeline has a to step or an aggregation" {
		t.Errorf("err = %v", err)
	}
}

// checkLoad loads data and checks the result is either a topology that
// compiles or positioned errors.
func checkLoad(t *testing.T, data []byte) {
	f, err := topofile.Load("fuzz.yaml", data)
	if err != nil {
		var ces topofile.ConfigErrors
		if !errors.As(err, &ces) || len(ces) == 0 {
			t.Fatalf("Load error %v (%T) is not ConfigErrors", err, err)
		}
		for _, e := range ces {
			if e.Line < 1 || e.Col < 1 || e.File != "fuzz.yaml" || e.Msg == "" || strings.Contains(e.Msg, "internal error") {
				t.Fatalf("bad error %q for input %q", e.Error(), data)
			}
		}
		return
	}
	if f.Topology == nil {
		t.Fatalf("no topology and no error for %q", data)
	}
	if _, err := topology.Compile(f.Topology); err != nil {
		t.Fatalf("loaded topology does not compile: %v\n%s", err, data)
	}
}

func FuzzLoad(f *testing.F) {
	paths, _ := filepath.Glob(filepath.Join(topologies, "*.yaml"))
	more, _ := filepath.Glob(filepath.Join(topologies, "invalid", "*.yaml"))
	for _, p := range append(paths, more...) {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	for _, s := range []string{
		"", "app: x", "- a\n- b", "app: &a [*a]\npipelines: *a",
		"app: t\nstreams: {in: {topic: in}}\npipelines:\n  - {name: p, from: in, steps: [{flat_map: \"[{'key': key, 'value': value}]\"}, {to: {topic: o}}]}\n",
		"app: t\nstreams: {in: {topic: in}}\npipelines:\n  - {name: p, from: p, steps: [{to: {topic: o}}]}\n",
		"app: t\nstreams: {in: {topic: in}}\npipelines:\n  - {name: p, from: in, steps: [{filter: \"value.a >\\n 1 +\"}]}\n",
		"app: x\n---\napp: y\n", "{<<: {a: 1}}", "app: [\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkLoad(t, data) })
}

func BenchmarkCELFilter(b *testing.B) {
	src := "app: t\nstreams: {in: {topic: in}}\npipelines:\n  - {name: p, from: in, steps: [{filter: \"value.amount > 100 && value.segment == 'retail'\"}, {to: {topic: out}}]}\n"
	f, err := topofile.Load("t.yaml", []byte(src))
	if err != nil {
		b.Fatal(err)
	}
	var filter *topology.Node
	for _, n := range f.Topology.Nodes {
		if n.Kind == topology.KindFilter {
			filter = n
		}
	}
	v, _ := topology.JSON{}.Decode([]byte(`{"customer": "c1", "segment": "retail", "amount": 150}`))
	b.ReportAllocs()
	for b.Loop() {
		ok, err := topofile.RunPredicate(filter, "c1", v)
		if err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
}

// TestSpecExample loads the example of docs/topology-format.md.
func TestSpecExample(t *testing.T) {
	doc, err := os.ReadFile("../docs/topology-format.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "```yaml\n")
	example, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("no yaml example in docs/topology-format.md")
	}
	f, err := topofile.Load("topology-format.md", []byte(example))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := topology.Compile(f.Topology); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(example, "\n  - name: "); len(f.Pipelines) != n || f.App != "shop" {
		t.Errorf("app %s, %d pipelines", f.App, len(f.Pipelines))
	}
}

// TestJoinTopologyTable: a join may read a table of the same topology.
func TestJoinTopologyTable(t *testing.T) {
	src := `app: t
streams: {orders: {topic: orders}}
pipelines:
  - name: counts
    from: orders
    steps: [{group_by_key: {}}, {count: {}}]
  - name: enriched
    from: orders
    steps:
      - join: {table: counts, value: "{'order': value, 'orders': other}"}
      - to: {topic: enriched}
`
	f, err := topofile.Load("t.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	var join *topology.Node
	for _, n := range f.Topology.Nodes {
		if n.Kind == topology.KindJoin {
			join = n
		}
	}
	if join == nil || join.Other == nil || join.Other.Name != "counts" || join.Other.Kind != topology.KindCount {
		t.Fatalf("join node %+v", join)
	}
	if _, err := topology.Compile(f.Topology); err != nil {
		t.Fatal(err)
	}

	cyclic := `app: t
streams: {orders: {topic: orders}}
pipelines:
  - name: a
    from: orders
    steps:
      - join: {table: b, value: "other"}
      - group_by_key: {}
      - count: {}
  - name: b
    from: table:a
    steps:
      - join: {table: b, value: "other"}
      - latest: {}
`
	_, err = topofile.Load("c.yaml", []byte(cyclic))
	want := `c.yaml:11:11: from: pipelines depend on each other in a cycle: b -> a -> b (each reads or joins the next)
c.yaml:13:23: join: pipeline b joins its own table`
	if err == nil || err.Error() != want {
		t.Errorf("errors:\n%v\nwant:\n%s", err, want)
	}
}
