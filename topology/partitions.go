package topology

import (
	"slices"
)

// CoPartitionTopics lists the topics whose partition counts decide whether
// the groups of c are co-partitioned (what topofile.File.CheckPartitions
// asks about), sorted.
func (c *Compiled) CoPartitionTopics() []string {
	seen := map[string]bool{}
	for _, g := range c.Groups {
		for _, e := range append(g.Graph.InputStreams(), g.Graph.JointTables()...) {
			seen[e.Topic()] = true
		}
		if t := g.Graph.GroupTable(); t != nil {
			seen[t.Topic()] = true
		}
	}
	out := make([]string, 0, len(seen))
	for t := range seen {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}
