package topofile

import "github.com/weftstream/weft/topology"

// Test hooks: run the functions of nodes built from topology files.

func RunPredicate(n *topology.Node, k string, v any) (bool, error)  { return n.Predicate()(k, v) }
func RunValueMapper(n *topology.Node, k string, v any) (any, error) { return n.ValueMapper()(k, v) }
