package topology_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weftstream/weft/topology"
)

func pass(string, any) (bool, error) { return true, nil }

// describeShop is a small topology with every kind of group: a source
// group (filter, join with a table, branch, to, a groupBy writing a
// repartition topic), a count reading the source directly, and an
// aggregate reading its repartition topic whose table is suppressed to a
// topic.
func describeShop(t *testing.T) *topology.Compiled {
	t.Helper()
	b := topology.New("shop")
	orders := b.Stream("orders", topology.JSON{})
	valid := orders.Filter("valid", pass)
	valid.GroupByKey().Count("per-customer")
	totals := valid.GroupBy("by-segment", func(_ string, v any) (string, error) { return "segment", nil }).
		Aggregate("segment-totals", func() any { return int64(0) },
			func(_ string, v, agg any) (any, error) { return agg, nil }, topology.JSON{})
	crm := b.Table("crm-table", topology.JSON{})
	sizes := valid.Join("with-customer", crm, func(_ string, v, _ any) (any, error) { return v, nil }).
		Branch("size", pass, pass)
	sizes[0].To("big-orders", topology.JSON{})
	sizes[1].To("small-orders", topology.JSON{})
	totals.Suppress("totals-every-10s", 10*time.Second).To("segment-totals", topology.JSON{})
	c := mustCompile(t, b)
	return c
}

// awkward has names that are not valid identifiers in Mermaid or DOT:
// quotes, spaces, backslashes, a Mermaid keyword, names that sanitize to
// the same id.
func awkward(t *testing.T) *topology.Compiled {
	t.Helper()
	b := topology.New(`we"ird app`)
	in := b.Stream(`in "put" #1`, topology.JSON{})
	f := in.Filter("end", pass)
	f.Filter("a-b", pass).To(`out\put <x>`, topology.JSON{})
	f.Filter("a_b", pass).To("graph", topology.JSON{})
	f.SelectKey("subgraph", func(string, any) (string, error) { return "k", nil }).GroupByKey().Count("click")
	c := mustCompile(t, b)
	return c
}

func describe(t *testing.T, c *topology.Compiled, format string) string {
	t.Helper()
	var buf bytes.Buffer
	if err := topology.Describe(&buf, c, format); err != nil {
		t.Fatalf("Describe %s: %v", format, err)
	}
	return buf.String()
}

func TestDescribeGolden(t *testing.T) {
	c := describeShop(t)
	for format, ext := range map[string]string{"text": "txt", "mermaid": "mmd", "dot": "dot"} {
		t.Run(format, func(t *testing.T) {
			want, err := os.ReadFile(filepath.Join("testdata", "describe", "shop."+ext))
			if err != nil {
				t.Fatal(err)
			}
			got := describe(t, c, format)
			if got != string(want) {
				t.Errorf("Describe %s differs from testdata/describe/shop.%s:\n%s", format, ext, lineDiff(string(want), got))
			}
			// Deterministic: the same again.
			if again := describe(t, c, format); again != got {
				t.Errorf("Describe %s is not deterministic", format)
			}
		})
	}
}

// lineDiff shows the first differing lines.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return "line " + strconv.Itoa(i+1) + ":\n  want: " + wl + "\n  got:  " + gl + "\n--- got in full:\n" + got
		}
	}
	return ""
}

func TestDescribeUnknownFormat(t *testing.T) {
	err := topology.Describe(&bytes.Buffer{}, describeShop(t), "svg")
	if err == nil {
		t.Fatal("Describe accepted format svg")
	}
	for _, want := range []string{`"svg"`, "text", "mermaid", "dot"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

// TestDescribeMatchesCompile checks the text against what Compile built:
// every group's input is the topic of its source, and its sinks are its
// outputs.
func TestDescribeMatchesCompile(t *testing.T) {
	for name, c := range map[string]*topology.Compiled{"shop": describeShop(t), "awkward": awkward(t)} {
		t.Run(name, func(t *testing.T) {
			text := describe(t, c, "text")
			subs := strings.Split(strings.SplitN(text, "\n\nTopics:\n", 2)[0], "  Sub-topology: ")[1:]
			if len(subs) != len(c.Groups) {
				t.Fatalf("%d sub-topologies for %d groups:\n%s", len(subs), len(c.Groups), text)
			}
			source := regexp.MustCompile(`(?m)^    Source: .* \(topics: \[(.*)\]\)$`)
			sink := regexp.MustCompile(`(?m)^    Sink: .* \(topic: (.*)\)$`)
			for i, g := range c.Groups {
				sub := subs[i]
				if !strings.HasPrefix(sub, strconv.Itoa(i)+" (group "+string(g.Name)+")\n") {
					t.Errorf("sub-topology %d is not group %s:\n%s", i, g.Name, sub)
				}
				srcs := source.FindAllStringSubmatch(sub, -1)
				if len(srcs) != 1 || srcs[0][1] != strings.Join(g.Inputs, ",") {
					t.Errorf("group %s reads %v, described sources %v", g.Name, g.Inputs, srcs)
				}
				var sinks []string
				for _, m := range sink.FindAllStringSubmatch(sub, -1) {
					sinks = append(sinks, m[1])
				}
				slices.Sort(sinks)
				sinks = slices.Compact(sinks)
				if !slices.Equal(sinks, g.Outputs) {
					t.Errorf("group %s writes %v, described sinks %v", g.Name, g.Outputs, sinks)
				}
				if g.Table != "" && !strings.Contains(sub, "(stores: ["+g.Table+"])") {
					t.Errorf("group %s: no processor with store %s:\n%s", g.Name, g.Table, sub)
				}
			}
		})
	}
}

var (
	mermaidNode  = regexp.MustCompile(`^([A-Za-z0-9_]+)(\(\[|\[\(|\[)"([^"]*)"(\]\)|\)\]|\])$`)
	mermaidSub   = regexp.MustCompile(`^subgraph ([A-Za-z0-9_]+)\["([^"]*)"\]$`)
	mermaidEdge  = regexp.MustCompile(`^([A-Za-z0-9_]+) (-->|-\.->|<-\.->) ([A-Za-z0-9_]+)$`)
	mermaidShape = map[string]string{"([": "])", "[(": ")]", "[": "]"}
)

// checkMermaid checks the structure of a flowchart: a header, balanced
// subgraph/end, every line a node, a subgraph or an edge, ids defined
// once, and every edge between defined ids.
func checkMermaid(t *testing.T, src string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(src, "\n"), "\n")
	if lines[0] != "flowchart LR" {
		t.Fatalf("first line %q", lines[0])
	}
	defined := map[string]bool{}
	define := func(id string) {
		if defined[id] {
			t.Errorf("id %s defined twice", id)
		}
		if id == "end" || id == "subgraph" || id == "graph" {
			t.Errorf("id %s is a Mermaid keyword", id)
		}
		defined[id] = true
	}
	var edges [][2]string
	depth := 0
	for _, l := range lines[1:] {
		l = strings.TrimSpace(l)
		var m []string
		switch {
		case l == "end":
			depth--
			if depth < 0 {
				t.Fatalf("end without subgraph")
			}
		case mermaidSub.MatchString(l):
			m = mermaidSub.FindStringSubmatch(l)
			define(m[1])
			depth++
		case mermaidNode.MatchString(l):
			m = mermaidNode.FindStringSubmatch(l)
			if mermaidShape[m[2]] != m[4] {
				t.Errorf("unbalanced shape in %q", l)
			}
			define(m[1])
		case mermaidEdge.MatchString(l):
			m = mermaidEdge.FindStringSubmatch(l)
			edges = append(edges, [2]string{m[1], m[3]})
		default:
			t.Errorf("line %q is not a node, subgraph, end or edge", l)
		}
	}
	if depth != 0 {
		t.Errorf("%d subgraphs not ended", depth)
	}
	if len(edges) == 0 {
		t.Error("no edges")
	}
	for _, e := range edges {
		for _, id := range e {
			if !defined[id] {
				t.Errorf("edge %s -> %s: %s is not defined", e[0], e[1], id)
			}
		}
	}
}

func TestDescribeMermaidStructure(t *testing.T) {
	for name, c := range map[string]*topology.Compiled{"shop": describeShop(t), "awkward": awkward(t)} {
		t.Run(name, func(t *testing.T) { checkMermaid(t, describe(t, c, "mermaid")) })
	}
	// The awkward names are kept in labels, escaped.
	out := describe(t, awkward(t), "mermaid")
	for _, want := range []string{`"in #quot;put#quot; #35;1"`, `"out\put #lt;x#gt;"`, `g0_a_b["a-b (filter)"]`, `g0_a_b_2["a_b (filter)"]`, `g0_end["end (filter)"]`} {
		if !strings.Contains(out, want) {
			t.Errorf("mermaid output lacks %s:\n%s", want, out)
		}
	}
}

// TestDescribeDotValid renders the DOT output with Graphviz. It needs the
// dot binary (apt-get install graphviz) and is skipped without it.
func TestDescribeDotValid(t *testing.T) {
	dot, err := exec.LookPath("dot")
	if err != nil {
		t.Skip("Graphviz 'dot' is not on PATH: DOT output not validated (apt-get install graphviz)")
	}
	for name, c := range map[string]*topology.Compiled{"shop": describeShop(t), "awkward": awkward(t)} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, dot, "-Tsvg")
			cmd.Stdin = strings.NewReader(describe(t, c, "dot"))
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			svg, err := cmd.Output()
			if err != nil || stderr.Len() > 0 {
				t.Fatalf("dot -Tsvg: %v\n%s", err, stderr.String())
			}
			if !bytes.Contains(svg, []byte("<svg")) {
				t.Fatalf("dot produced no SVG:\n%s", svg)
			}
			// Every group is a cluster.
			if n := bytes.Count(svg, []byte(`class="cluster"`)); n != len(c.Groups) {
				t.Errorf("%d clusters for %d groups", n, len(c.Groups))
			}
		})
	}
}
