package topology

// Test hooks: run the functions of nodes built from topology files.

func RunPredicate(n *Node, k string, v any) (bool, error)  { return n.pred(k, v) }
func RunValueMapper(n *Node, k string, v any) (any, error) { return n.values(k, v) }
