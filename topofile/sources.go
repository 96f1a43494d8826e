package topofile

import (
	"github.com/lovoo/goka"
	"github.com/weftstream/weft/internal/yamlpos"
	"github.com/weftstream/weft/topology"
	"gopkg.in/yaml.v3"
)

// The streams: and tables: sections: the topics a topology reads.

// sourceSpec is a declared stream or table.
type sourceSpec struct {
	name      string
	key       *yaml.Node
	topic     string
	codec     goka.Codec
	codecName string
	timestamp *celExpr         // streams: the event time (nil: record timestamps)
	ratio     *float64         // streams: the trace sample ratio (nil: the file's)
	stream    *topology.Stream // built on first use
	table     *topology.Table
}

// sources reads the streams or tables section.
func (l *loader) sources(e kv, what string) []*sourceSpec {
	if yamlpos.IsNull(e.V) {
		return nil
	}
	if e.V.Kind != yaml.MappingNode {
		l.Errorf(e.V, "%ss must be a mapping of names to {topic, codec}, found %s", what, yamlpos.KindName(e.V))
		return nil
	}
	var out []*sourceSpec
	for _, en := range l.Entries(e.V) {
		s := &sourceSpec{name: en.K.Value, key: en.K}
		desc := what + " " + s.name
		l.checkName(en.K, s.name, what+" name")
		m, ok := l.fields(en.V, en.K, desc, sourceKeys...)
		if ok {
			if t, ok := l.require(m, "topic", en.K, desc); ok {
				if topic, ok := l.str(t, "topic"); ok && l.checkTopic(t.V, topic) {
					s.topic = topic
				}
			}
			s.codec, s.codecName = l.codec(m)
			if e, ok := m["timestamp"]; ok {
				if what == "stream" {
					s.timestamp = l.cel(e, "timestamp", varsRecord, wantTime)
				} else {
					l.Errorf(e.K, "timestamp is for streams: a table's values keep the event time of their writers")
				}
			}
			if e, ok := m["sample_ratio"]; ok {
				if what == "stream" {
					s.ratio = l.ratio(e)
				} else {
					l.Errorf(e.K, "sample_ratio is for streams: traces start where records enter the topology")
				}
			}
		}
		out = append(out, s)
	}
	return out
}
