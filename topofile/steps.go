package topofile

import (
	"fmt"
	"strings"
	"time"

	"github.com/lovoo/goka"
	"github.com/weftstream/weft/internal/yamlpos"
	"github.com/weftstream/weft/topology"
	"gopkg.in/yaml.v3"
)

// stepKind is one kind of pipeline step: its name in files, how its value
// is read (parse: the keys of its mapping, its expressions), how it is
// built with the DSL (build), and what it means for the order of steps and
// for the pipeline it is in. Every rule about a kind is in its row of
// stepKinds; the loader asks the row, never the name.
type stepKind struct {
	name string
	// keys are the keys of the step's mapping (nil: its value is not a
	// mapping, or an empty one).
	keys []string
	// parse reads the value of step s of pipeline p.
	parse func(l *loader, b *build, p *pipeSpec, s *stepSpec)
	// build applies the step to the pipeline being built (nil for the
	// steps that start a table: pipeline, which buildPipe builds).
	build func(c *chain, st *stepSpec)

	// terminal: nothing may follow it in its pipeline.
	terminal bool
	// makesTable: the pipeline ends in a table named like it, read with
	// from: table:<pipeline> (its node is named after the pipeline).
	makesTable bool
	// output: it writes a topic (the pipeline is read as the records
	// written).
	output bool
	// branches: it splits the pipeline into named branches.
	branches bool
	// grouping: it groups the records by key; a window or a group
	// aggregation must follow.
	grouping bool
	// windowing: it windows a grouping; a group aggregation must follow.
	windowing bool
	// groupAggregation: it aggregates a grouping (or a windowed grouping).
	groupAggregation bool
	// readsTable: it reads the table a table: pipeline reads, as the
	// first step of that pipeline.
	readsTable bool
	// coalesces: it coalesces the table's updates for the to step that
	// must follow it (the pipeline is no stream to read).
	coalesces bool
	// joins: it reads a table (table: key), checked by resolveJoins.
	joins bool
	// unnamed: the DSL gives it no node of its own to name.
	unnamed bool
}

// does reports whether a step of kind k gives the topology something to
// do: an output or a table.
func (k *stepKind) does() bool { return k.output || k.makesTable }

// stepKinds are the steps of topology files, in the order errors list them.
var stepKinds = []*stepKind{
	{name: "filter", parse: parseRecordExpr(wantBool), build: func(c *chain, st *stepSpec) {
		c.s = c.s.Filter(c.name(st), st.expr.Predicate())
	}},
	{name: "map_values", parse: parseRecordExpr(wantAny), build: func(c *chain, st *stepSpec) {
		c.s = c.s.MapValues(c.name(st), st.expr.ValueMapper())
	}},
	{name: "select_key", parse: parseRecordExpr(wantString), build: func(c *chain, st *stepSpec) {
		c.s = c.s.SelectKey(c.name(st), st.expr.KeySelector())
	}},
	{name: "map", keys: []string{"key", "value"}, parse: parseMap, build: func(c *chain, st *stepSpec) {
		c.s = c.s.Map(c.name(st), keyValueMapper(st.expr, st.expr2))
	}},
	{name: "flat_map", parse: parseRecordExpr(wantList), build: func(c *chain, st *stepSpec) {
		c.s = c.s.FlatMap(c.name(st), st.expr.FlatMapper())
	}},
	{name: "join", keys: []string{"table", "value"}, joins: true, parse: parseJoin, build: func(c *chain, st *stepSpec) {
		c.s = c.s.Join(c.name(st), c.l.joinedTable(c.tb, c.b, st), st.expr.ValueJoiner())
	}},
	{name: "branch", terminal: true, branches: true, parse: func(l *loader, b *build, p *pipeSpec, s *stepSpec) {
		l.branches(b, p, s)
	}, build: func(c *chain, st *stepSpec) {
		preds := make([]topology.Predicate, len(c.p.branches))
		for i, br := range c.p.branches {
			preds[i] = br.when.Predicate()
		}
		for i, out := range c.s.Branch(c.name(st), preds...) {
			c.p.branches[i].end = out
		}
	}},
	{name: "to", keys: []string{"topic", "codec"}, terminal: true, output: true, unnamed: true, parse: parseTo, build: func(c *chain, st *stepSpec) {
		c.s.To(st.topic, st.codec)
	}},
	{name: "group_by_key", grouping: true, unnamed: true, parse: parseNoKeys, build: func(c *chain, _ *stepSpec) {
		c.g = c.s.GroupByKey()
	}},
	{name: "group_by", grouping: true, parse: parseRecordExpr(wantString), build: func(c *chain, st *stepSpec) {
		c.g = c.s.GroupBy(c.name(st), st.expr.KeySelector())
	}},
	{name: "window", keys: []string{"size", "advance", "grace"}, windowing: true, parse: parseWindow, build: func(c *chain, st *stepSpec) {
		c.g = c.g.WindowedBy(c.name(st), st.windows)
	}},
	{name: "count", terminal: true, makesTable: true, groupAggregation: true, parse: parseNoKeys, build: func(c *chain, _ *stepSpec) {
		c.p.table = c.g.Count(c.p.name)
	}},
	{name: "reduce", keys: []string{"expr", "codec"}, terminal: true, makesTable: true, groupAggregation: true, parse: parseReduce, build: func(c *chain, st *stepSpec) {
		c.p.table = c.g.Reduce(c.p.name, st.expr.Reducer(), st.codec)
	}},
	{name: "aggregate", keys: []string{"initial", "add", "codec"}, terminal: true, makesTable: true, groupAggregation: true, parse: parseAggregate, build: func(c *chain, st *stepSpec) {
		c.p.table = c.g.Aggregate(c.p.name, initializer(st.initial), st.expr.Aggregator(), st.codec)
	}},
	{name: "latest", keys: []string{"codec"}, terminal: true, makesTable: true, parse: parseLatest, build: func(c *chain, st *stepSpec) {
		c.p.table = c.s.Latest(c.p.name, st.codec)
	}},
	{name: "suppress", keys: []string{"every", "until"}, readsTable: true, coalesces: true, parse: parseSuppress},
	{name: "join_table", keys: []string{"table", "value", "codec"}, terminal: true, makesTable: true, readsTable: true, joins: true, parse: parseJoinTable},
}

// stepKindNames are the names of stepKinds, for errors.
func stepKindNames() []string {
	names := make([]string, len(stepKinds))
	for i, k := range stepKinds {
		names[i] = k.name
	}
	return names
}

// stepKindOf returns the kind named name, or nil.
func stepKindOf(name string) *stepKind {
	for _, k := range stepKinds {
		if k.name == name {
			return k
		}
	}
	return nil
}

// chain is a pipeline being built with the DSL: the stream (or grouped
// stream) its steps so far make.
type chain struct {
	l  *loader
	tb *topology.Builder
	b  *build
	p  *pipeSpec
	s  *topology.Stream
	g  *topology.Grouped
}

// name is the node name of step st of the pipeline.
func (c *chain) name(st *stepSpec) string { return stepName(c.p.name, st) }

// step reads step i of pipeline p.
func (l *loader) step(b *build, p *pipeSpec, i int, n *yaml.Node) *stepSpec {
	if n.Kind != yaml.MappingNode {
		l.Errorf(n, "a step must be a mapping like {filter: \"...\"}, found %s", yamlpos.KindName(n))
		return nil
	}
	es := l.Entries(n)
	if len(es) == 0 {
		l.Errorf(n, "empty step")
		return nil
	}
	if len(es) > 1 {
		l.Errorf(es[1].K, "a step has one operation, found %s and %s (start a new step with -)", es[0].K.Value, es[1].K.Value)
	}
	s := &stepSpec{kind: es[0].K.Value, key: es[0].K, val: es[0].V, index: i}
	if s.def = stepKindOf(s.kind); s.def == nil {
		names := stepKindNames()
		if hint := didYouMean(s.kind, names); hint != "" {
			l.Errorf(s.key, "unknown step %q%s", s.kind, hint)
		} else {
			l.Errorf(s.key, "unknown step %q (steps: %s)", s.kind, strings.Join(names, ", "))
		}
		return nil
	}
	s.def.parse(l, b, p, s)
	return s
}

// parseRecordExpr reads a step whose value is one expression of the
// record, of result type want.
func parseRecordExpr(want celWant) func(l *loader, b *build, p *pipeSpec, s *stepSpec) {
	return func(l *loader, _ *build, _ *pipeSpec, s *stepSpec) {
		s.expr = l.cel(kv{K: s.key, V: s.val}, s.kind, varsRecord, want)
	}
}

// parseNoKeys reads a step that takes no settings ({} or nothing).
func parseNoKeys(l *loader, _ *build, _ *pipeSpec, s *stepSpec) {
	l.fields(s.val, s.key, s.kind, s.def.keys...)
}

func parseMap(l *loader, _ *build, _ *pipeSpec, s *stepSpec) {
	m, ok := l.fields(s.val, s.key, s.kind, s.def.keys...)
	if !ok {
		return
	}
	if f, ok := l.require(m, "key", s.key, "map"); ok {
		s.expr = l.cel(f, "map key", varsRecord, wantString)
	}
	if f, ok := l.require(m, "value", s.key, "map"); ok {
		s.expr2 = l.cel(f, "map value", varsRecord, wantAny)
	}
}

func parseJoin(l *loader, _ *build, _ *pipeSpec, s *stepSpec) {
	m, ok := l.fields(s.val, s.key, s.kind, s.def.keys...)
	if !ok {
		return
	}
	if f, ok := l.require(m, "table", s.key, "join"); ok {
		if t, ok := l.str(f, "join table"); ok {
			s.table, s.tableNode = t, f.V // checked by resolveJoins
		}
	}
	if f, ok := l.require(m, "value", s.key, "join"); ok {
		s.expr = l.cel(f, "join value", varsJoin, wantAny)
	}
}

func parseJoinTable(l *loader, _ *build, _ *pipeSpec, s *stepSpec) {
	m, ok := l.fields(s.val, s.key, s.kind, s.def.keys...)
	if !ok {
		return
	}
	if f, ok := l.require(m, "table", s.key, "join_table"); ok {
		if t, ok := l.str(f, "join_table table"); ok {
			s.table, s.tableNode = t, f.V // checked by resolveJoins
		}
	}
	if f, ok := l.require(m, "value", s.key, "join_table"); ok {
		s.expr = l.cel(f, "join_table value", varsJoin, wantAny)
	}
	s.codec, s.codecName = l.codec(m)
}

func parseTo(l *loader, b *build, p *pipeSpec, s *stepSpec) {
	m, ok := l.fields(s.val, s.key, s.kind, s.def.keys...)
	if !ok {
		return
	}
	if f, ok := l.require(m, "topic", s.key, "to"); ok {
		if t, ok := l.str(f, "topic"); ok && l.checkTopic(f.V, t) {
			s.topic = t
			if prev, dup := b.sinks[t]; dup {
				l.Errorf(f.V, "topic %q is already written by the to step at line %d: a topology writes a topic from one to step", t, prev.Line)
			} else {
				b.sinks[t] = f.V
				b.nodeName(l, "to-"+t, "the to step", f.V)
			}
		}
	}
	s.codec, s.codecName = l.codec(m)
	if s.topic != "" {
		b.f.Outputs = append(b.f.Outputs, Source{Name: p.name, Topic: s.topic, Codec: s.codecName})
	}
}

func parseLatest(l *loader, _ *build, _ *pipeSpec, s *stepSpec) {
	if m, ok := l.fields(s.val, s.key, s.kind, s.def.keys...); ok {
		s.codec, s.codecName = l.codec(m)
	}
}

func parseReduce(l *loader, _ *build, _ *pipeSpec, s *stepSpec) {
	m, ok := l.fields(s.val, s.key, s.kind, s.def.keys...)
	if !ok {
		return
	}
	if f, ok := l.require(m, "expr", s.key, "reduce"); ok {
		s.expr = l.cel(f, "reduce expr", varsReduce, wantAny)
	}
	s.codec, s.codecName = l.codec(m)
}

func parseAggregate(l *loader, _ *build, _ *pipeSpec, s *stepSpec) {
	m, ok := l.fields(s.val, s.key, s.kind, s.def.keys...)
	if !ok {
		return
	}
	if f, ok := l.require(m, "initial", s.key, "aggregate"); ok {
		if x := l.cel(f, "aggregate initial", varsNone, wantAny); x != nil {
			v, err := x.constant()
			if err != nil {
				l.Errorf(f.V, "aggregate initial: %v", err)
			}
			s.initial = v
		}
	}
	if f, ok := l.require(m, "add", s.key, "aggregate"); ok {
		s.expr = l.cel(f, "aggregate add", varsAggregate, wantAny)
	}
	s.codec, s.codecName = l.codec(m)
}

func parseWindow(l *loader, _ *build, _ *pipeSpec, s *stepSpec) {
	m, ok := l.fields(s.val, s.key, s.kind, s.def.keys...)
	if !ok {
		return
	}
	if f, ok := l.require(m, "size", s.key, "window"); ok {
		s.windows.Size = l.duration(f, "size", true)
	}
	s.windows.Advance = s.windows.Size
	if f, ok := m["advance"]; ok {
		s.windows.Advance = l.duration(f, "advance", true)
		switch w := s.windows; {
		case w.Size <= 0 || w.Advance <= 0:
		case w.Advance > w.Size:
			l.Errorf(f.V, "advance: windows cannot advance (%s) by more than their size (%s): records between them would be in no window", w.Advance, w.Size)
		case w.Size%w.Advance != 0:
			l.Errorf(f.V, "advance: the window size (%s) must be a multiple of advance (%s)", w.Size, w.Advance)
		}
	}
	if f, ok := m["grace"]; ok {
		s.windows.Grace = l.duration(f, "grace", false)
	}
}

func parseSuppress(l *loader, _ *build, _ *pipeSpec, s *stepSpec) {
	m, ok := l.fields(s.val, s.key, s.kind, s.def.keys...)
	if !ok {
		return
	}
	every, hasEvery := m["every"]
	until, hasUntil := m["until"]
	switch {
	case hasEvery && hasUntil:
		l.Errorf(until.K, "suppress takes every or until, not both")
	case hasEvery:
		s.every = l.duration(every, "every", true)
	case hasUntil:
		if v, ok := l.str(until, "until"); ok {
			if v == "window_close" {
				s.untilWin = true
			} else {
				l.Errorf(until.V, "suppress until: only window_close is supported, not %q", v)
			}
		}
	default:
		l.Errorf(s.key, "suppress needs every (a coalescing interval) or until: window_close")
	}
}

// order checks the order of the steps of p.
func (l *loader) order(p *pipeSpec) {
	for i, s := range p.steps {
		var prev *stepSpec
		if i > 0 {
			prev = p.steps[i-1]
		}
		k := s.def
		switch {
		case prev != nil && prev.def.terminal:
			what := prev.kind + " ends a pipeline"
			if prev.def.makesTable {
				what = fmt.Sprintf("%s makes pipeline %s a table: read its updates in another pipeline with from: table:%s", prev.kind, p.name, p.name)
			}
			l.Errorf(s.key, "step %s after %s (line %d): %s", s.kind, prev.kind, prev.key.Line, what)
			return
		case prev != nil && prev.def.grouping && !k.windowing && !k.groupAggregation:
			l.Errorf(s.key, "%s must be followed by count, reduce or aggregate, not %s", prev.kind, s.kind)
			return
		case prev != nil && prev.def.windowing && !k.groupAggregation:
			l.Errorf(s.key, "%s must be followed by count, reduce or aggregate, not %s", prev.kind, s.kind)
			return
		case k.windowing && (prev == nil || !prev.def.grouping):
			l.Errorf(s.key, "%s needs a group_by_key or group_by step before it", s.kind)
		case k.groupAggregation && (prev == nil || !prev.def.grouping && !prev.def.windowing):
			l.Errorf(s.key, "%s needs a group_by_key or group_by step before it", s.kind)
		case k.readsTable && !k.coalesces && (!p.fromTable || i != 0):
			l.Errorf(s.key, "%s joins the table a pipeline reads with another table: use it as the only step of a pipeline with from: table:<pipeline>", s.kind)
		case k.coalesces:
			if !p.fromTable {
				l.Errorf(s.key, "%s reads the updates of a table: use it as the first step of a pipeline with from: table:<pipeline>", s.kind)
			} else if i != 0 {
				l.Errorf(s.key, "%s must be the first step of its pipeline", s.kind)
			}
			if i+1 >= len(p.steps) || !p.steps[i+1].def.output {
				l.Errorf(s.key, "%s must be followed by a to step", s.kind)
			}
		}
	}
	if n := len(p.steps); n > 0 && (p.steps[n-1].def.grouping || p.steps[n-1].def.windowing) {
		s := p.steps[n-1]
		l.Errorf(s.key, "%s must be followed by count, reduce or aggregate", s.kind)
	}
}

// outOf is what a pipeline whose last step is s makes.
func outOf(s *stepSpec) outKind {
	switch {
	case s.def.makesTable:
		return outTable
	case s.def.output:
		return outSink
	case s.def.branches:
		return outBranch
	}
	return outStream
}

// nameNodes registers the node names pipeline p's steps will have.
func (l *loader) nameNodes(b *build, p *pipeSpec) {
	for _, s := range p.steps {
		switch {
		case s.def.makesTable:
			b.nodeName(l, p.name, "the table of pipeline "+p.name, p.nameNode)
		case s.def.branches:
			for j := range p.branches {
				b.nodeName(l, fmt.Sprintf("%s-%d", stepName(p.name, s), j), "branch of pipeline "+p.name, s.key)
			}
		case s.def.unnamed:
		default:
			b.nodeName(l, stepName(p.name, s), "step "+s.kind+" of pipeline "+p.name, s.key)
		}
	}
}

func stepName(pipeline string, s *stepSpec) string {
	return fmt.Sprintf("%s.%d.%s", pipeline, s.index, s.kind)
}

// stepSpec is a step being read, then built.
type stepSpec struct {
	kind      string
	def       *stepKind // its row of stepKinds
	key, val  *yaml.Node
	index     int
	expr      *celExpr // the expression (map: the key; aggregate: add)
	expr2     *celExpr // map: the value
	initial   any
	table     string
	tableNode *yaml.Node
	joinPipe  *pipeSpec // join: the table pipeline of this topology it reads
	topic     string
	codec     goka.Codec
	codecName string
	every     time.Duration
	untilWin  bool // suppress until window_close
	windows   topology.Windows
}
