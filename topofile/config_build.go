package topofile

import (
	"strings"

	"github.com/weftstream/weft/topology"
	"gopkg.in/yaml.v3"
)

// buildTopology turns the checked pipelines into a Topology with the
// Builder DSL, and compiles it once to make sure it runs.
func (l *loader) buildTopology(b *build) *File {
	f := b.f
	f.at = map[*topology.Node]*yaml.Node{}
	tb := topology.New(f.App)
	for _, p := range b.pipes {
		l.buildPipe(tb, b, p)
	}
	top, err := tb.Build()
	if err == nil {
		_, err = topology.Compile(top)
	}
	if err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			l.errf(b.pipesNode, "topology: %s", line)
		}
		return nil
	}
	f.Topology = top
	return f
}

// buildPipe builds pipeline p, after the pipeline it reads.
func (l *loader) buildPipe(tb *topology.Builder, b *build, p *pipeSpec) {
	if p.built {
		return
	}
	p.built = true
	steps := p.steps
	var s *topology.Stream
	switch {
	case p.readsSrc != nil:
		src := p.readsSrc
		if src.stream == nil {
			var opts []topology.SourceOption
			if src.timestamp != nil {
				opts = append(opts, topology.WithTimestampExtractor(src.timestamp.evalTime))
			}
			if src.ratio != nil {
				opts = append(opts, topology.WithTraceSampleRatio(*src.ratio))
			}
			src.stream = tb.Stream(src.topic, src.codec, opts...)
			b.f.at[src.stream.Node()] = src.key
		}
		s = src.stream
	case p.reads != nil && p.fromTable:
		q := p.reads
		l.buildPipe(tb, b, q)
		switch steps[0].kind {
		case "suppress":
			if steps[0].untilWin {
				s = q.table.SuppressUntilWindowClose(stepName(p.name, steps[0]))
			} else {
				s = q.table.Suppress(stepName(p.name, steps[0]), steps[0].every)
			}
			b.f.at[s.Node()] = steps[0].key
			steps = steps[1:]
		case "join_table":
			st := steps[0]
			p.table = q.table.Join(p.name, l.joinedTable(tb, b, st), topology.TableJoiner(st.expr.ValueJoiner()), st.codec)
			b.f.at[p.table.Node()], b.f.at[p.table.Node().Parent] = st.key, st.key
			p.end = nil
			return
		default:
			if q.updates == nil {
				q.updates = q.table.ToStream()
			}
			s = q.updates
		}
	case p.readsBr != nil:
		l.buildPipe(tb, b, p.reads)
		s = p.readsBr.end
	case p.reads != nil:
		l.buildPipe(tb, b, p.reads)
		s = p.reads.end
	}
	var g *topology.Grouped
	for _, st := range steps {
		name := stepName(p.name, st)
		switch st.kind {
		case "filter":
			s = s.Filter(name, st.expr.Predicate())
		case "map_values":
			s = s.MapValues(name, st.expr.ValueMapper())
		case "select_key":
			s = s.SelectKey(name, st.expr.KeySelector())
		case "map":
			s = s.Map(name, keyValueMapper(st.expr, st.expr2))
		case "flat_map":
			s = s.FlatMap(name, st.expr.FlatMapper())
		case "join":
			s = s.Join(name, l.joinedTable(tb, b, st), st.expr.ValueJoiner())
		case "branch":
			preds := make([]topology.Predicate, len(p.branches))
			for i, br := range p.branches {
				preds[i] = br.when.Predicate()
			}
			for i, out := range s.Branch(name, preds...) {
				p.branches[i].end = out
			}
		case "to":
			s.To(st.topic, st.codec)
		case "group_by_key":
			g = s.GroupByKey()
		case "group_by":
			g = s.GroupBy(name, st.expr.KeySelector())
		case "window":
			g = g.WindowedBy(name, st.windows)
		case "count":
			p.table = g.Count(p.name)
		case "reduce":
			p.table = g.Reduce(p.name, st.expr.Reducer(), st.codec)
		case "aggregate":
			p.table = g.Aggregate(p.name, initializer(st.initial), st.expr.Aggregator(), st.codec)
		case "latest":
			p.table = s.Latest(p.name, st.codec)
		}
		if p.table != nil && b.f.at[p.table.Node()] == nil {
			b.f.at[p.table.Node()] = st.key
		}
	}
	p.end = s
}

// joinedTable returns the table a join or join_table step reads: a table
// pipeline of this file (built first) or a table of tables:.
func (l *loader) joinedTable(tb *topology.Builder, b *build, st *stepSpec) *topology.Table {
	if q := st.joinPipe; q != nil {
		l.buildPipe(tb, b, q)
		return q.table
	}
	t := b.tableByNm[st.table]
	if t.table == nil {
		t.table = tb.Table(t.topic, t.codec)
	}
	return t.table
}
