package topofile

import (
	"fmt"
	"slices"
	"strings"

	"github.com/weftstream/weft/topology"
)

// CheckPartitions checks that the topics each group of c reads together
// are co-partitioned: goka, like Kafka Streams, needs the same number of
// partitions on the inputs of a group, the tables it joins and its own
// table, and a table join in particular needs both tables keyed alike with
// the same partition count.
//
// partitions returns the partition count of a topic that exists (false:
// it does not). A missing input is counted with create partitions (weft
// creates it with that many); a missing group table is created by goka to
// match its inputs. The errors are ConfigErrors at the step of the file
// that made the group (a join_table, an aggregation, a suppress, a
// stream).
func (f *File) CheckPartitions(c *topology.Compiled, partitions func(topic string) (int, bool), create int) error {
	var errs ConfigErrors
	for _, g := range c.Groups {
		type topicCount struct {
			topic string
			n     int
		}
		var counts []topicCount
		for _, e := range append(g.Graph.InputStreams(), g.Graph.JointTables()...) {
			n, ok := partitions(e.Topic())
			if !ok {
				n = create
			}
			counts = append(counts, topicCount{e.Topic(), n})
		}
		if t := g.Graph.GroupTable(); t != nil {
			if n, ok := partitions(t.Topic()); ok {
				counts = append(counts, topicCount{t.Topic(), n})
			}
		}
		if len(counts) < 2 || !slices.ContainsFunc(counts, func(tc topicCount) bool { return tc.n != counts[0].n }) {
			continue
		}
		parts := make([]string, len(counts))
		for i, tc := range counts {
			parts[i] = fmt.Sprintf("%s (%d partitions)", tc.topic, tc.n)
		}
		e := &ConfigError{File: f.Name, Line: 1, Col: 1}
		if at := f.at[g.Root]; at != nil {
			e.Line, e.Col = at.Line, at.Column
		}
		if g.Root.Kind == topology.KindJoinSides {
			e.Msg = fmt.Sprintf("join_table: the tables are not co-partitioned: %s; a table join needs both tables keyed alike "+
				"with the same number of partitions (recreate one, or copy it into a table of this file with a latest pipeline)",
				strings.Join(parts, ", "))
		} else {
			e.Msg = fmt.Sprintf("group %s reads topics that are not co-partitioned: %s; the inputs and the table of a group "+
				"need the same number of partitions", g.Name, strings.Join(parts, ", "))
		}
		errs = append(errs, e)
	}
	if len(errs) == 0 {
		return nil
	}
	errs.Sort()
	return errs
}
