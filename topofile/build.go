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
			l.Errorf(b.pipesNode, "topology: %s", line)
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
		switch st := steps[0]; {
		case st.def.coalesces:
			if st.untilWin {
				s = q.table.SuppressUntilWindowClose(stepName(p.name, st))
			} else {
				s = q.table.Suppress(stepName(p.name, st), st.every)
			}
			b.f.at[s.Node()] = st.key
			steps = steps[1:]
		case st.def.readsTable: // join_table: the pipeline is the joined table
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
	c := &chain{l: l, tb: tb, b: b, p: p, s: s}
	for _, st := range steps {
		if st.def.build == nil {
			continue // a step that only starts a table: pipeline (order rejects it elsewhere)
		}
		st.def.build(c, st)
		if p.table != nil && b.f.at[p.table.Node()] == nil {
			b.f.at[p.table.Node()] = st.key
		}
	}
	p.end = c.s
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
