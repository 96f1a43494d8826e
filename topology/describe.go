package topology

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/weftstream/weft/processors"
)

// DescribeFormats are the formats Describe writes, in the order they are
// listed in errors and help texts.
var DescribeFormats = []string{"text", "mermaid", "dot", "json"}

// Describe writes the compiled topology c to w in format:
//
//   - "text": like Kafka Streams' Topology.describe(): one sub-topology per
//     goka group with its nodes in order ("Source:", "Processor:", "Sink:",
//     "--> children", "<-- parents"), then the topics the topology reads and
//     writes (inputs, outputs, repartition and table topics, dead-letter
//     topics) and its state stores with their changelog topics;
//   - "mermaid": a Mermaid flowchart, one subgraph per group;
//   - "dot": a Graphviz digraph, one cluster per group;
//   - "json": the Description (see DescribeJSON), indented.
//
// A group lists the nodes it runs: a stateless node that several groups
// run (e.g. a filter before a count that reads its source directly, and
// before a sink) appears in each of them. A write to a repartition topic
// appears as a sink named "to-<topic>" and the read of it as a source named
// "source-<topic>". The output is deterministic.
func Describe(w io.Writer, c *Compiled, format string) error {
	if !slices.Contains(DescribeFormats, format) {
		return fmt.Errorf("unknown describe format %q (valid: %s)", format, strings.Join(DescribeFormats, ", "))
	}
	if c == nil || c.Topology == nil {
		return errors.New("describe: no compiled topology")
	}
	d, err := describe(c)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	switch format {
	case "text":
		d.text(bw)
	case "mermaid":
		d.mermaid(bw)
	case "dot":
		d.dot(bw)
	case "json":
		enc := json.NewEncoder(bw)
		enc.SetIndent("", "  ")
		if err := enc.Encode(d.json()); err != nil {
			return fmt.Errorf("describe: %w", err)
		}
	}
	return bw.Flush()
}

// description is the model the formats render.
type description struct {
	app    string
	groups []*descGroup
	topics []*descTopic // sorted by name
	stores []*descStore // sorted by name
}

type descGroup struct {
	index int
	name  string
	nodes []*descNode // pre-order, as the group runs them
	store string      // table topic of the group ("" when stateless)
}

type descRole int

const (
	roleSource descRole = iota
	roleProcessor
	roleSink
)

type descNode struct {
	name     string
	kind     string // shown in diagrams: source, sink, filter, count, ...
	role     descRole
	topic    string   // a source's or sink's topic
	stores   []string // stores a processor uses (own table or lookups)
	own      string   // the table of a stateful node
	lookups  []string // stores a join reads
	parents  []*descNode
	children []*descNode
}

type descTopic struct {
	name             string
	roles            map[string]bool
	writers, readers map[string]bool
}

type descStore struct {
	name             string
	owner            *Node // the stateful node that writes it (nil: external)
	writers, readers map[string]bool
}

// topic roles, in the order they are listed.
var topicRoles = []string{"input", "output", "repartition", "table", "loopback", "dead letter"}

type describer struct {
	t      *Topology
	topics map[string]*descTopic
	stores map[string]*descStore
}

func describe(c *Compiled) (*description, error) {
	d := &describer{t: c.Topology, topics: map[string]*descTopic{}, stores: map[string]*descStore{}}
	out := &description{app: c.Topology.App}
	for i, g := range c.Groups {
		dg, err := d.group(i, g)
		if err != nil {
			return nil, err
		}
		out.groups = append(out.groups, dg)
	}
	for _, name := range sortedKeys(d.topics) {
		out.topics = append(out.topics, d.topics[name])
	}
	for _, name := range sortedKeys(d.stores) {
		out.stores = append(out.stores, d.stores[name])
	}
	return out, nil
}

func (d *describer) topic(name, role string) *descTopic {
	t := d.topics[name]
	if t == nil {
		t = &descTopic{name: name, roles: map[string]bool{}, writers: map[string]bool{}, readers: map[string]bool{}}
		d.topics[name] = t
	}
	t.roles[role] = true
	return t
}

func (d *describer) store(name string) *descStore {
	s := d.stores[name]
	if s == nil {
		s = &descStore{name: name, writers: map[string]bool{}, readers: map[string]bool{}}
		d.stores[name] = s
	}
	return s
}

// lookupTopic is the table topic a join reads.
func (d *describer) lookupTopic(other *Node) string {
	switch {
	case other == nil:
		return ""
	case other.Topic != "":
		return other.Topic
	case other.Stateful():
		return d.t.TableTopic(other)
	}
	return ""
}

// group walks the nodes group g runs, the way Compile compiles them.
func (d *describer) group(i int, g *Group) (*descGroup, error) {
	root := g.Root
	if root == nil {
		return nil, fmt.Errorf("describe: group %s has no root node", g.Name)
	}
	gname := string(g.Name)
	dg := &descGroup{index: i, name: gname}
	switch {
	case root.Kind == KindSource:
		d.topic(root.Topic, "input").readers[gname] = true
		src := dg.add(nil, &descNode{name: root.Name, kind: "source", role: roleSource, topic: root.Topic})
		d.children(dg, src, root)
	case !root.Stateful():
		return nil, fmt.Errorf("describe: group %s starts at %s %q", g.Name, root.Kind, root.Name)
	case repartitioned(root):
		topic := d.t.RepartitionTopic(root)
		d.topic(topic, "repartition").readers[gname] = true
		src := dg.add(nil, &descNode{name: "source-" + topic, kind: "source", role: roleSource, topic: topic})
		d.processor(dg, src, root)
	default:
		up, _ := upstream(root)
		d.topic(up.Topic, "input").readers[gname] = true
		var path []*Node
		for p := root.Parent; p != up; p = p.Parent {
			path = append([]*Node{p}, path...)
		}
		parent := dg.add(nil, &descNode{name: up.Name, kind: "source", role: roleSource, topic: up.Topic})
		for _, n := range path {
			parent = d.processorOnly(dg, parent, n)
		}
		d.processor(dg, parent, root)
	}
	if root.Kind == KindSuppress {
		// Window closes go through the group's loopback topic.
		loop := d.topic(g.Graph.LoopStream().Topic(), "loopback")
		loop.writers[gname], loop.readers[gname] = true, true
	}
	d.topic(string(processors.DeadLetterTopic(g.Name)), "dead letter").writers[gname] = true
	return dg, nil
}

func (dg *descGroup) add(parent, n *descNode) *descNode {
	if parent != nil {
		n.parents = append(n.parents, parent)
		parent.children = append(parent.children, n)
	}
	dg.nodes = append(dg.nodes, n)
	return n
}

// children adds the children of n that group dg runs below parent.
func (d *describer) children(dg *descGroup, parent *descNode, n *Node) {
	for _, ch := range n.Children {
		switch {
		case ch.Stateful():
			if !repartitioned(ch) {
				continue // its own group reads the source itself
			}
			topic := d.t.RepartitionTopic(ch)
			d.topic(topic, "repartition").writers[dg.name] = true
			dg.add(parent, &descNode{name: "to-" + topic, kind: "sink", role: roleSink, topic: topic})
		case ch.Kind == KindSink:
			d.topic(ch.Topic, "output").writers[dg.name] = true
			dg.add(parent, &descNode{name: ch.Name, kind: "sink", role: roleSink, topic: ch.Topic})
		default:
			d.processor(dg, parent, ch)
		}
	}
}

// processor adds n and what follows it in the group.
func (d *describer) processor(dg *descGroup, parent *descNode, n *Node) {
	d.children(dg, d.processorOnly(dg, parent, n), n)
}

// processorOnly adds the processor node of n.
func (d *describer) processorOnly(dg *descGroup, parent *descNode, n *Node) *descNode {
	dn := &descNode{name: n.Name, kind: string(n.Kind), role: roleProcessor}
	if n.Stateful() {
		table := d.t.TableTopic(n)
		dn.own = table
		dn.stores = append(dn.stores, table)
		dg.store = table
		d.topic(table, "table").writers[dg.name] = true
		s := d.store(table)
		s.owner = n
		s.writers[dg.name] = true
	}
	if n.Kind == KindJoin {
		if table := d.lookupTopic(n.Other); table != "" {
			dn.lookups = append(dn.lookups, table)
			dn.stores = append(dn.stores, table)
			d.topic(table, "table").readers[dg.name] = true
			d.store(table).readers[dg.name] = true
		}
	}
	return dg.add(parent, dn)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func names(nodes []*descNode) string {
	s := make([]string, len(nodes))
	for i, n := range nodes {
		s[i] = n.name
	}
	return strings.Join(s, ", ")
}

// usage formats "written by a, b; read by c" (the parts that are not empty).
func usage(writers, readers map[string]bool) []string {
	var parts []string
	if len(writers) > 0 {
		parts = append(parts, "written by "+strings.Join(sortedKeys(writers), ", "))
	}
	if len(readers) > 0 {
		parts = append(parts, "read by "+strings.Join(sortedKeys(readers), ", "))
	}
	return parts
}

func (d *description) text(w io.Writer) {
	fmt.Fprintln(w, "Topologies:")
	for i, g := range d.groups {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "  Sub-topology: %d (group %s)\n", g.index, g.name)
		for _, n := range g.nodes {
			switch n.role {
			case roleSource:
				fmt.Fprintf(w, "    Source: %s (topics: [%s])\n", n.name, n.topic)
			case roleProcessor:
				fmt.Fprintf(w, "    Processor: %s (stores: [%s])\n", n.name, strings.Join(n.stores, ", "))
			case roleSink:
				fmt.Fprintf(w, "    Sink: %s (topic: %s)\n", n.name, n.topic)
			}
			if n.role != roleSink {
				children := "none"
				if len(n.children) > 0 {
					children = names(n.children)
				}
				fmt.Fprintf(w, "      --> %s\n", children)
			}
			if len(n.parents) > 0 {
				fmt.Fprintf(w, "      <-- %s\n", names(n.parents))
			}
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Topics:")
	if len(d.topics) == 0 {
		fmt.Fprintln(w, "  none")
	}
	for _, t := range d.topics {
		var roles []string
		for _, r := range topicRoles {
			if t.roles[r] {
				roles = append(roles, r)
			}
		}
		parts := append([]string{strings.Join(roles, ", ")}, usage(t.writers, t.readers)...)
		fmt.Fprintf(w, "  %s (%s)\n", t.name, strings.Join(parts, "; "))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "State stores:")
	if len(d.stores) == 0 {
		fmt.Fprintln(w, "  none")
	}
	for _, s := range d.stores {
		what := "external table"
		if s.owner != nil {
			what = fmt.Sprintf("%s %s", s.owner.Kind, s.owner.Name)
		}
		parts := append([]string{what}, usage(s.writers, s.readers)...)
		parts = append(parts, "changelog: "+s.name)
		fmt.Fprintf(w, "  %s (%s)\n", s.name, strings.Join(parts, "; "))
	}
}

// diagramTopics are the topics diagrams draw: the ones sources read and
// sinks write (tables are drawn as stores; dead-letter topics are left
// out).
func (d *description) diagramTopics() []string {
	set := map[string]bool{}
	for _, g := range d.groups {
		for _, n := range g.nodes {
			if n.role != roleProcessor {
				set[n.topic] = true
			}
		}
	}
	return sortedKeys(set)
}

// externalStores are the stores no group of the topology writes.
func (d *description) externalStores() []string {
	var out []string
	for _, s := range d.stores {
		if s.owner == nil {
			out = append(out, s.name)
		}
	}
	return out
}

// diagramEdge is an edge of a diagram: a plain data flow, a lookup (a
// store read by a join) or a table (a stateful node and its store).
type diagramEdge struct {
	from, to string
	kind     int
}

const (
	edgeFlow = iota
	edgeLookup
	edgeTable
)

// edges lists the edges of a diagram, node ids given by id.
func (d *description) edges(topicID, storeID func(string) string, nodeID func(g *descGroup, i int) string) []diagramEdge {
	var out []diagramEdge
	for _, g := range d.groups {
		index := map[*descNode]int{}
		for i, n := range g.nodes {
			index[n] = i
		}
		for i, n := range g.nodes {
			id := nodeID(g, i)
			if n.role == roleSource {
				out = append(out, diagramEdge{topicID(n.topic), id, edgeFlow})
			}
			for _, s := range n.lookups {
				out = append(out, diagramEdge{storeID(s), id, edgeLookup})
			}
			if n.own != "" {
				out = append(out, diagramEdge{id, storeID(n.own), edgeTable})
			}
			for _, ch := range n.children {
				out = append(out, diagramEdge{id, nodeID(g, index[ch]), edgeFlow})
			}
			if n.role == roleSink {
				out = append(out, diagramEdge{id, topicID(n.topic), edgeFlow})
			}
		}
	}
	return out
}

func (n *descNode) label() string { return n.name + " (" + n.kind + ")" }

func groupLabel(g *descGroup) string { return fmt.Sprintf("Sub-topology %d: %s", g.index, g.name) }

// mermaidIDs hands out Mermaid ids: letters, digits and '_' only, unique.
type mermaidIDs struct {
	byKey map[string]string
	used  map[string]bool
}

func (m *mermaidIDs) id(key, base string) string {
	if id, ok := m.byKey[key]; ok {
		return id
	}
	var b strings.Builder
	for _, r := range base {
		if r < 128 && (r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	id := b.String()
	for n := 2; m.used[id]; n++ {
		id = b.String() + "_" + strconv.Itoa(n)
	}
	m.used[id] = true
	m.byKey[key] = id
	return id
}

// mermaidLabel quotes s as a Mermaid label, with entity codes for the
// characters a quoted label cannot hold.
func mermaidLabel(s string) string {
	r := strings.NewReplacer("#", "#35;", `"`, "#quot;", "<", "#lt;", ">", "#gt;", "\n", " ", "\r", " ", "\t", " ")
	return `"` + r.Replace(s) + `"`
}

func (d *description) mermaid(w io.Writer) {
	ids := &mermaidIDs{byKey: map[string]string{}, used: map[string]bool{}}
	topicID := func(t string) string { return ids.id("topic\x00"+t, "t_"+t) }
	storeID := func(s string) string { return ids.id("store\x00"+s, "s_"+s) }
	groupID := func(g *descGroup) string {
		return ids.id(fmt.Sprintf("group\x00%d", g.index), fmt.Sprintf("g%d", g.index))
	}
	nodeID := func(g *descGroup, i int) string {
		return ids.id(fmt.Sprintf("node\x00%d\x00%d", g.index, i), fmt.Sprintf("g%d_%s", g.index, g.nodes[i].name))
	}

	fmt.Fprintln(w, "flowchart LR")
	for _, t := range d.diagramTopics() {
		fmt.Fprintf(w, "  %s([%s])\n", topicID(t), mermaidLabel(t))
	}
	for _, s := range d.externalStores() {
		fmt.Fprintf(w, "  %s[(%s)]\n", storeID(s), mermaidLabel(s))
	}
	for _, g := range d.groups {
		fmt.Fprintf(w, "  subgraph %s[%s]\n", groupID(g), mermaidLabel(groupLabel(g)))
		for i, n := range g.nodes {
			fmt.Fprintf(w, "    %s[%s]\n", nodeID(g, i), mermaidLabel(n.label()))
		}
		if g.store != "" {
			fmt.Fprintf(w, "    %s[(%s)]\n", storeID(g.store), mermaidLabel(g.store))
		}
		fmt.Fprintln(w, "  end")
	}
	for _, e := range d.edges(topicID, storeID, nodeID) {
		arrow := "-->"
		switch e.kind {
		case edgeLookup:
			arrow = "-.->"
		case edgeTable:
			arrow = "<-.->"
		}
		fmt.Fprintf(w, "  %s %s %s\n", e.from, arrow, e.to)
	}
}

// dotQuote quotes s as a DOT string.
func dotQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", " ", "\r", " ")
	return `"` + r.Replace(s) + `"`
}

func (d *description) dot(w io.Writer) {
	topicID := func(t string) string { return dotQuote("topic/" + t) }
	storeID := func(s string) string { return dotQuote("store/" + s) }
	nodeID := func(g *descGroup, i int) string { return dotQuote(fmt.Sprintf("g%d/%s", g.index, g.nodes[i].name)) }
	store := func(s string) string { return fmt.Sprintf("%s [label=%s, shape=cylinder];", storeID(s), dotQuote(s)) }

	fmt.Fprintf(w, "digraph %s {\n", dotQuote(d.app))
	fmt.Fprintln(w, "  rankdir=LR;")
	for _, t := range d.diagramTopics() {
		fmt.Fprintf(w, "  %s [label=%s, shape=box, style=\"rounded,filled\", fillcolor=\"lightyellow\"];\n", topicID(t), dotQuote(t))
	}
	for _, s := range d.externalStores() {
		fmt.Fprintf(w, "  %s\n", store(s))
	}
	for _, g := range d.groups {
		fmt.Fprintf(w, "  subgraph %s {\n", dotQuote(fmt.Sprintf("cluster_%d", g.index)))
		fmt.Fprintf(w, "    label=%s;\n", dotQuote(groupLabel(g)))
		for i, n := range g.nodes {
			fmt.Fprintf(w, "    %s [label=%s, shape=box];\n", nodeID(g, i), dotQuote(n.label()))
		}
		if g.store != "" {
			fmt.Fprintf(w, "    %s\n", store(g.store))
		}
		fmt.Fprintln(w, "  }")
	}
	for _, e := range d.edges(topicID, storeID, nodeID) {
		attrs := ""
		switch e.kind {
		case edgeLookup:
			attrs = " [style=dashed]"
		case edgeTable:
			attrs = " [style=dashed, dir=both]"
		}
		fmt.Fprintf(w, "  %s -> %s%s;\n", e.from, e.to, attrs)
	}
	fmt.Fprintln(w, "}")
}

// Description is the JSON form of Describe (format "json"): the groups
// with their nodes, the topics, the state stores, and the diagram the
// other formats draw as nodes and edges.
type Description struct {
	App     string             `json:"app"`
	Groups  []DescribedGroup   `json:"groups"`
	Topics  []DescribedTopic   `json:"topics"`
	Stores  []DescribedStore   `json:"stores"`
	Diagram DescriptionDiagram `json:"diagram"`
}

// DescribedGroup is a sub-topology: one goka group.
type DescribedGroup struct {
	Index int             `json:"index"`
	Name  string          `json:"name"`
	Table string          `json:"table,omitempty"` // the group's table topic, if stateful
	Nodes []DescribedNode `json:"nodes"`
}

// DescribedNode is a node of a group, in the order the group runs them.
type DescribedNode struct {
	ID       string   `json:"id"` // as in Diagram
	Name     string   `json:"name"`
	Kind     string   `json:"kind"` // source, sink, filter, count, ...
	Role     string   `json:"role"` // source, processor or sink
	Topic    string   `json:"topic,omitempty"`
	Stores   []string `json:"stores,omitempty"`
	Table    string   `json:"table,omitempty"` // the table a stateful node writes
	Lookups  []string `json:"lookups,omitempty"`
	Children []string `json:"children,omitempty"` // ids
	Parents  []string `json:"parents,omitempty"`  // ids
}

// DescribedTopic is a topic the topology reads or writes.
type DescribedTopic struct {
	Name    string   `json:"name"`
	Roles   []string `json:"roles"`
	Writers []string `json:"writers,omitempty"` // groups
	Readers []string `json:"readers,omitempty"`
}

// DescribedStore is a state store and its changelog topic.
type DescribedStore struct {
	Name      string   `json:"name"`
	Owner     string   `json:"owner,omitempty"` // "<kind> <node>" that writes it; empty: an external table
	Writers   []string `json:"writers,omitempty"`
	Readers   []string `json:"readers,omitempty"`
	Changelog string   `json:"changelog"`
}

// DescriptionDiagram is the graph the diagrams draw: topics, stores and
// group nodes, and the edges between them.
type DescriptionDiagram struct {
	Nodes []DiagramNode `json:"nodes"`
	Edges []DiagramEdge `json:"edges"`
}

// DiagramNode is a node of the diagram.
type DiagramNode struct {
	ID    string `json:"id"`
	Label string `json:"label"`
	Type  string `json:"type"`            // topic, store or node
	Group *int   `json:"group,omitempty"` // index of the group of a node (and of a group's own store)
}

// DiagramEdge is an edge of the diagram: kind flow (data), lookup (a
// store a join reads) or table (a stateful node and its store).
type DiagramEdge struct {
	From string `json:"from"`
	To   string `json:"to"`
	Kind string `json:"kind"`
}

// DescribeJSON returns the description of the compiled topology c (what
// Describe writes as "json").
func DescribeJSON(c *Compiled) (*Description, error) {
	if c == nil || c.Topology == nil {
		return nil, errors.New("describe: no compiled topology")
	}
	d, err := describe(c)
	if err != nil {
		return nil, err
	}
	return d.json(), nil
}

func (d *description) json() *Description {
	topicID := func(t string) string { return "topic/" + t }
	storeID := func(s string) string { return "store/" + s }
	nodeID := func(g *descGroup, i int) string { return fmt.Sprintf("g%d/%s", g.index, g.nodes[i].name) }
	out := &Description{App: d.app, Groups: []DescribedGroup{}, Topics: []DescribedTopic{}, Stores: []DescribedStore{},
		Diagram: DescriptionDiagram{Nodes: []DiagramNode{}, Edges: []DiagramEdge{}}}
	roles := [...]string{roleSource: "source", roleProcessor: "processor", roleSink: "sink"}
	for _, g := range d.groups {
		index := map[*descNode]int{}
		for i, n := range g.nodes {
			index[n] = i
		}
		ids := func(ns []*descNode) []string {
			var out []string
			for _, n := range ns {
				out = append(out, nodeID(g, index[n]))
			}
			return out
		}
		dg := DescribedGroup{Index: g.index, Name: g.name, Table: g.store}
		for i, n := range g.nodes {
			dg.Nodes = append(dg.Nodes, DescribedNode{ID: nodeID(g, i), Name: n.name, Kind: n.kind, Role: roles[n.role],
				Topic: n.topic, Stores: n.stores, Table: n.own, Lookups: n.lookups, Children: ids(n.children), Parents: ids(n.parents)})
			gi := g.index
			out.Diagram.Nodes = append(out.Diagram.Nodes, DiagramNode{ID: nodeID(g, i), Label: n.label(), Type: "node", Group: &gi})
		}
		if g.store != "" {
			gi := g.index
			out.Diagram.Nodes = append(out.Diagram.Nodes, DiagramNode{ID: storeID(g.store), Label: g.store, Type: "store", Group: &gi})
		}
		out.Groups = append(out.Groups, dg)
	}
	for _, t := range d.diagramTopics() {
		out.Diagram.Nodes = append(out.Diagram.Nodes, DiagramNode{ID: topicID(t), Label: t, Type: "topic"})
	}
	for _, s := range d.externalStores() {
		out.Diagram.Nodes = append(out.Diagram.Nodes, DiagramNode{ID: storeID(s), Label: s, Type: "store"})
	}
	kinds := [...]string{edgeFlow: "flow", edgeLookup: "lookup", edgeTable: "table"}
	for _, e := range d.edges(topicID, storeID, nodeID) {
		out.Diagram.Edges = append(out.Diagram.Edges, DiagramEdge{From: e.from, To: e.to, Kind: kinds[e.kind]})
	}
	for _, t := range d.topics {
		dt := DescribedTopic{Name: t.name, Writers: sortedKeys(t.writers), Readers: sortedKeys(t.readers), Roles: []string{}}
		for _, r := range topicRoles {
			if t.roles[r] {
				dt.Roles = append(dt.Roles, r)
			}
		}
		out.Topics = append(out.Topics, dt)
	}
	for _, s := range d.stores {
		ds := DescribedStore{Name: s.name, Writers: sortedKeys(s.writers), Readers: sortedKeys(s.readers), Changelog: s.name}
		if s.owner != nil {
			ds.Owner = fmt.Sprintf("%s %s", s.owner.Kind, s.owner.Name)
		}
		out.Stores = append(out.Stores, ds)
	}
	return out
}
