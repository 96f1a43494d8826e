package topofile

import (
	"strings"

	"github.com/weftstream/weft/internal/yamlpos"
	"github.com/weftstream/weft/topology"
	"gopkg.in/yaml.v3"
)

// The pipelines: section: each pipeline's name, what it reads (from:,
// resolved to a stream, a pipeline, a branch or a table: pipeline), the
// tables its joins read, and the checks across pipelines (names used once,
// no cycles, something to do). Its steps are read by steps.go.

// outKind is what a pipeline makes, which decides how others may read it.
type outKind int

const (
	outStream outKind = iota // ends in a stateless step: readable with from
	outSink                  // ends in to: readable (the records written)
	outBranch                // ends in branch: read its branches
	outTable                 // ends in an aggregation: read with table:
)

// pipeSpec is a pipeline being read, then built.
type pipeSpec struct {
	name      string
	nameNode  *yaml.Node
	node      *yaml.Node
	from      string
	fromNode  *yaml.Node
	fromTable bool
	steps     []*stepSpec
	out       outKind
	reads     *pipeSpec // the pipeline read (nil: a stream)
	readsBr   *branchSpec
	readsSrc  *sourceSpec
	branches  []*branchSpec

	state        int // DFS colour for cycles
	updatesNamed bool

	// built
	built   bool
	end     *topology.Stream
	table   *topology.Table
	updates *topology.Stream
}

// branchSpec is a branch of a branch step.
type branchSpec struct {
	name     string
	nameNode *yaml.Node
	when     *celExpr
	owner    *pipeSpec
	index    int
	end      *topology.Stream
}

// target is what a name in `from` refers to.
type target struct {
	what   string // "stream", "pipeline" or "branch"
	node   *yaml.Node
	src    *sourceSpec
	pipe   *pipeSpec
	branch *branchSpec
}

// nodeName is a node name of the built topology, registered to report
// collisions (the Builder requires unique names) at a position.
type nodeName struct {
	what string
	node *yaml.Node
}

// build is what the loader knows of the file while it reads pipelines.
type build struct {
	f         *File
	streams   []*sourceSpec
	tables    []*sourceSpec
	pipes     []*pipeSpec
	names     map[string]*target
	tableByNm map[string]*sourceSpec
	nodeNames map[string]nodeName
	sinks     map[string]*yaml.Node
	pipesNode *yaml.Node
}

// nodeName registers a node name of the topology to be built.
func (b *build) nodeName(l *loader, name, what string, at *yaml.Node) {
	if prev, ok := b.nodeNames[name]; ok {
		l.Errorf(at, "%s would be named %q like %s (line %d): rename one of them", what, name, prev.what, prev.node.Line)
		return
	}
	b.nodeNames[name] = nodeName{what: what, node: at}
}

// pipelines reads the pipelines section and checks the references between
// pipelines.
func (l *loader) pipelines(b *build, e kv) {
	if yamlpos.IsNull(e.V) || e.V.Kind != yaml.SequenceNode {
		l.Errorf(yamlpos.OrAt(e.V, e.K), "pipelines must be a list, found %s", yamlpos.KindName(e.V))
		return
	}
	if len(e.V.Content) == 0 {
		l.Errorf(e.K, "pipelines is empty: the topology does nothing")
		return
	}
	for _, item := range e.V.Content {
		if item = l.Resolve(item); item == nil {
			return
		}
		if p := l.pipeline(b, item); p != nil {
			b.pipes = append(b.pipes, p)
		}
	}
	for _, p := range b.pipes {
		l.resolveFrom(b, p)
		l.resolveJoins(b, p)
		l.checkSuppress(p)
	}
	l.cycles(b)
	does := false
	for _, p := range b.pipes {
		for _, s := range p.steps {
			does = does || s.def.does()
		}
		info := Pipeline{Name: p.name, From: p.from, Table: p.out == outTable, Line: p.node.Line, Col: p.node.Column}
		for _, s := range p.steps {
			info.Steps = append(info.Steps, s.kind)
		}
		for _, br := range p.branches {
			info.Branches = append(info.Branches, br.name)
		}
		b.f.Pipelines = append(b.f.Pipelines, info)
	}
	if !does && !l.Failed() {
		l.Errorf(e.K, "the topology does nothing: no pipeline has a to step or an aggregation")
	}
}

// declare declares a name that `from` may read (pipelines and branches
// share the namespace of streams); it reports a name used twice.
func (l *loader) declare(b *build, name string, t *target) bool {
	if prev, ok := b.names[name]; ok {
		l.Errorf(t.node, "name %q is already used by %s %s (line %d)", name, prev.what, name, prev.node.Line)
		return false
	}
	b.names[name] = t
	return true
}

// pipeline reads one pipeline.
func (l *loader) pipeline(b *build, n *yaml.Node) *pipeSpec {
	p := &pipeSpec{node: n}
	what := "a pipeline"
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k, v := n.Content[i], n.Content[i+1]; k.Value == "name" && v.Kind == yaml.ScalarNode && v.Value != "" {
				what = "pipeline " + v.Value
				break
			}
		}
	}
	m, ok := l.fields(n, n, what, pipelineKeys...)
	if !ok {
		return nil
	}
	if e, ok := l.require(m, "name", n, what); ok {
		if s, ok := l.str(e, "name"); ok {
			p.nameNode = e.V
			if l.checkName(e.V, s, "pipeline name") && l.declare(b, s, &target{what: "pipeline", node: e.V, pipe: p}) {
				p.name = s
			}
		}
	}
	if e, ok := l.require(m, "from", n, what); ok {
		if s, ok := l.str(e, "from"); ok {
			p.from, p.fromNode = s, e.V
			if rest, ok := strings.CutPrefix(s, "table:"); ok {
				p.fromTable = true
				p.from = "table:" + strings.TrimSpace(rest)
			}
		}
	}
	e, ok := l.require(m, "steps", n, what)
	if !ok {
		return p
	}
	if yamlpos.IsNull(e.V) || e.V.Kind != yaml.SequenceNode {
		l.Errorf(yamlpos.OrAt(e.V, e.K), "steps of %s must be a list, found %s", what, yamlpos.KindName(e.V))
		return p
	}
	if len(e.V.Content) == 0 {
		l.Errorf(e.K, "%s has no steps", what)
		return p
	}
	complete := true
	for i, item := range e.V.Content {
		if item = l.Resolve(item); item == nil {
			return p
		}
		if s := l.step(b, p, i, item); s != nil {
			p.steps = append(p.steps, s)
		} else {
			complete = false
		}
	}
	if complete {
		l.order(p)
	}
	if len(p.steps) > 0 {
		p.out = outOf(p.steps[len(p.steps)-1])
	}
	if p.name != "" {
		l.nameNodes(b, p)
	}
	return p
}

// branches reads the branches of a branch step.
func (l *loader) branches(b *build, p *pipeSpec, s *stepSpec) {
	if yamlpos.IsNull(s.val) || s.val.Kind != yaml.SequenceNode {
		l.Errorf(yamlpos.OrAt(s.val, s.key), "branch must be a list of {name, when}, found %s", yamlpos.KindName(s.val))
		return
	}
	if len(s.val.Content) == 0 {
		l.Errorf(s.key, "branch has no branches")
		return
	}
	for i, item := range s.val.Content {
		if item = l.Resolve(item); item == nil {
			return
		}
		br := &branchSpec{owner: p, index: i}
		m, ok := l.fields(item, item, "a branch", "name", "when")
		if !ok {
			continue
		}
		what := "a branch"
		if e, ok := l.require(m, "name", item, what); ok {
			if n, ok := l.str(e, "branch name"); ok {
				br.nameNode = e.V
				what = "branch " + n
				if l.checkName(e.V, n, "branch name") && l.declare(b, n, &target{what: "branch", node: e.V, pipe: p, branch: br}) {
					br.name = n
				}
			}
		}
		if e, ok := l.require(m, "when", item, what); ok {
			br.when = l.cel(e, what+" when", varsRecord, wantBool)
		}
		p.branches = append(p.branches, br)
	}
}

// checkSuppress checks that a suppress until window_close reads a
// windowed table.
func (l *loader) checkSuppress(p *pipeSpec) {
	if len(p.steps) == 0 || !p.steps[0].untilWin || p.reads == nil || !p.fromTable {
		return
	}
	for _, s := range p.reads.steps {
		if s.def.windowing {
			return
		}
	}
	l.Errorf(p.steps[0].key, "suppress until window_close needs a windowed table: pipeline %s has no window step", p.reads.name)
}

// resolveFrom checks what pipeline p reads.
func (l *loader) resolveFrom(b *build, p *pipeSpec) {
	if p.fromNode == nil {
		return
	}
	at := p.fromNode
	if p.fromTable {
		name := strings.TrimPrefix(p.from, "table:")
		t := b.names[name]
		switch {
		case t == nil:
			var tables []string
			for _, q := range b.pipes {
				if q.out == outTable {
					tables = append(tables, q.name)
				}
			}
			if hint := didYouMean(name, tables); hint != "" {
				l.Errorf(at, "from: unknown pipeline %q%s", name, hint)
			} else if len(tables) > 0 {
				l.Errorf(at, "from: unknown pipeline %q (pipelines with a table: %s)", name, strings.Join(tables, ", "))
			} else {
				l.Errorf(at, "from: unknown pipeline %q (no pipeline ends in an aggregation)", name)
			}
		case t.what != "pipeline":
			l.Errorf(at, "from: %s is a %s, not a pipeline with a table: read it with from: %s", name, t.what, name)
		case t.pipe.out != outTable:
			l.Errorf(at, "from: pipeline %s does not end in an aggregation, so it has no table: read it with from: %s", name, name)
		default:
			p.reads = t.pipe
			if len(p.steps) == 0 || !p.steps[0].def.coalesces {
				l.registerUpdates(b, t.pipe, at)
			}
		}
		return
	}
	t := b.names[p.from]
	switch {
	case t == nil:
		if _, ok := b.tableByNm[p.from]; ok {
			l.Errorf(at, "from: %s is a table, which join steps read; a pipeline reads a stream, a pipeline or table:<pipeline>", p.from)
			return
		}
		var names []string
		for _, s := range b.streams {
			names = append(names, s.name)
		}
		for _, q := range b.pipes {
			if q.name != "" {
				names = append(names, q.name)
			}
			for _, br := range q.branches {
				if br.name != "" {
					names = append(names, br.name)
				}
			}
		}
		if hint := didYouMean(p.from, names); hint != "" {
			l.Errorf(at, "from: unknown stream or pipeline %q%s", p.from, hint)
		} else {
			l.Errorf(at, "from: unknown stream or pipeline %q", p.from)
		}
	case t.what == "stream":
		p.readsSrc = t.src
	case t.what == "branch":
		p.reads, p.readsBr = t.pipe, t.branch
	case t.pipe.out == outTable:
		l.Errorf(at, "from: pipeline %s is a table: read its updates with from: table:%s", p.from, p.from)
	case len(t.pipe.steps) > 0 && t.pipe.steps[0].def.coalesces:
		l.Errorf(at, "from: pipeline %s coalesces its records with suppress for its to step: read table:%s instead", p.from, strings.TrimPrefix(t.pipe.from, "table:"))
	case t.pipe.out == outBranch:
		names := make([]string, 0, len(t.pipe.branches))
		for _, br := range t.pipe.branches {
			names = append(names, br.name)
		}
		l.Errorf(at, "from: pipeline %s ends in a branch: read one of its branches (%s)", p.from, strings.Join(names, ", "))
	default:
		p.reads = t.pipe
	}
}

// resolveJoins checks the tables the join steps of p read: a table of
// tables:, or a pipeline of this topology that ends in an aggregation.
func (l *loader) resolveJoins(b *build, p *pipeSpec) {
	for _, s := range p.steps {
		if !s.def.joins || s.tableNode == nil {
			continue
		}
		t := s.table
		if _, ok := b.tableByNm[t]; ok {
			if q := b.names[t]; q != nil && q.what == "pipeline" && q.pipe.out == outTable {
				l.Errorf(s.tableNode, "join: %s is both a table of tables: and a pipeline with a table: rename one", t)
			}
			continue
		}
		if q := b.names[t]; q != nil && q.what == "pipeline" {
			if q.pipe.out == outTable {
				s.joinPipe = q.pipe
			} else {
				l.Errorf(s.tableNode, "join: pipeline %s does not end in an aggregation, so it has no table", t)
			}
			continue
		}
		names := make([]string, 0, len(b.tables))
		for _, t := range b.tables {
			names = append(names, t.name)
		}
		for _, q := range b.pipes {
			if q.out == outTable && q.name != "" {
				names = append(names, q.name)
			}
		}
		switch {
		case didYouMean(t, names) != "":
			l.Errorf(s.tableNode, "unknown table %q%s", t, didYouMean(t, names))
		case len(names) == 0:
			l.Errorf(s.tableNode, "unknown table %q: declare the tables joins read under tables:", t)
		default:
			l.Errorf(s.tableNode, "unknown table %q (tables: %s)", t, strings.Join(names, ", "))
		}
	}
}

// registerUpdates registers the node of the updates of q's table, read by
// a table: pipeline that does not start with suppress.
func (l *loader) registerUpdates(b *build, q *pipeSpec, at *yaml.Node) {
	if !q.updatesNamed {
		q.updatesNamed = true
		b.nodeName(l, q.name+"-updates", "the updates of table "+q.name, at)
	}
}

// cycles reports pipelines that read themselves, directly or not.
func (l *loader) cycles(b *build) {
	const (
		white = iota
		grey
		black
	)
	var path []*pipeSpec
	var via []bool // via[i]: path[i] joins path[i+1] (else reads it)
	var visit func(p *pipeSpec)
	// found reports the cycle closed by p's dependency on q (read, or
	// joined at join); p depends on q, which depends on the next pipeline
	// of the path, ..., which depends on p.
	found := func(p, q *pipeSpec, join *stepSpec) {
		k := len(path) - 1
		for k > 0 && path[k] != q {
			k--
		}
		chain := []string{p.name}
		for _, r := range path[k:] {
			chain = append(chain, r.name)
		}
		joined := join != nil
		for _, j := range via[k:] {
			joined = joined || j
		}
		at, what := p.fromNode, "from"
		if join != nil {
			at, what = join.tableNode, "join"
		}
		switch {
		case join != nil && q == p:
			l.Errorf(at, "join: pipeline %s joins its own table", p.name)
		case q == p:
			l.Errorf(at, "from: pipeline %s reads itself", p.name)
		case joined:
			l.Errorf(at, "%s: pipelines depend on each other in a cycle: %s (each reads or joins the next)", what, strings.Join(chain, " -> "))
		default:
			l.Errorf(at, "from: pipelines read each other in a cycle: %s (each reads the next)", strings.Join(chain, " -> "))
		}
	}
	visit = func(p *pipeSpec) {
		p.state = grey
		path = append(path, p)
		if q := p.reads; q != nil {
			switch q.state {
			case white:
				via = append(via, false)
				visit(q)
				via = via[:len(via)-1]
			case grey:
				found(p, q, nil)
				p.reads = nil // no further trouble
			}
		}
		for _, s := range p.steps {
			if q := s.joinPipe; q != nil {
				switch q.state {
				case white:
					via = append(via, true)
					visit(q)
					via = via[:len(via)-1]
				case grey:
					found(p, q, s)
					s.joinPipe = nil
				}
			}
		}
		path = path[:len(path)-1]
		p.state = black
	}
	for _, p := range b.pipes {
		if p.state == white {
			visit(p)
		}
	}
}
