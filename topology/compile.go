package topology

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/weftstream/weft/processors"
	"go.opentelemetry.io/otel/trace"
)

// Group is one goka group of a compiled topology. Run it with
// processors.NewProcessor(ctx, g.Graph, append(opts, g.Options()...)...),
// or on goka's tester with goka.NewProcessor(nil, g.Graph,
// append(g.GokaOptions, goka.WithTester(t))...).
type Group struct {
	Name    goka.Group
	Graph   *goka.GroupGraph
	Runtime *processors.Runtime
	// Coalescers are those of the group's suppress nodes, in the order
	// the nodes compiled.
	Coalescers []*processors.Coalescer
	// GokaOptions are the goka processor options the group needs (a table
	// join processes deletions: goka.WithNilHandling(goka.NilProcess)).
	GokaOptions []goka.ProcessorOption
	// Inputs are the topics the group consumes: one (a source, or a
	// repartition topic), or for a table join the table topics of its two
	// sides (left, right), read as records. Table is its table topic (""
	// for a stateless group); Outputs the topics it writes.
	Inputs  []string
	Table   string
	Outputs []string
	// Root is the node the group starts at: a source or a stateful node.
	Root *Node
}

// Options are the processors options that run the group as compiled: its
// runtime, its coalescers and its goka options.
func (g *Group) Options() []processors.Option {
	opts := []processors.Option{processors.WithRuntime(g.Runtime)}
	for _, c := range g.Coalescers {
		opts = append(opts, processors.WithCoalescer(c))
	}
	if len(g.GokaOptions) > 0 {
		opts = append(opts, processors.WithGokaOptions(g.GokaOptions...))
	}
	return opts
}

// Compiled is a topology compiled to goka groups.
type Compiled struct {
	Topology *Topology
	Groups   []*Group
}

// CompileOption configures Compile.
type CompileOption func(*compileConfig)

type compileConfig struct {
	runtimeOpts  []processors.Option
	coalesceOpts []processors.CoalesceOption
	sampled      func(ratio float64) trace.TracerProvider
}

// WithSampledProviders gives Compile the tracer provider of a stream with
// its own sample ratio (WithTraceSampleRatio): provider(ratio) should share
// the export pipeline of the topology's provider, with a parent-based ratio
// sampler (tracing.Providers.WithSampler does). Without it such ratios are
// not applied.
func WithSampledProviders(provider func(ratio float64) trace.TracerProvider) CompileOption {
	return func(c *compileConfig) { c.sampled = provider }
}

// WithProcessorOptions passes options to the runtimes (tracer provider,
// logger) and to the coalescers (Kafka settings) of the compiled groups.
func WithProcessorOptions(opts ...processors.Option) CompileOption {
	return func(c *compileConfig) { c.runtimeOpts = append(c.runtimeOpts, opts...) }
}

// WithCoalesceOptions passes options to the coalescers of the suppress
// nodes (after their flush interval), such as processors.CoalesceTo and
// processors.CommitOnAdd for goka's tester (weft test).
func WithCoalesceOptions(opts ...processors.CoalesceOption) CompileOption {
	return func(c *compileConfig) { c.coalesceOpts = append(c.coalesceOpts, opts...) }
}

// GroupName is the consumer group (and table prefix) of a stateful node or
// of a source's stateless group.
func (t *Topology) GroupName(n *Node) goka.Group {
	if n.Kind == KindSource {
		return goka.Group(t.App + "-" + n.Topic)
	}
	return goka.Group(t.App + "-" + n.Name)
}

// TableTopic is the table topic of a stateful node.
func (t *Topology) TableTopic(n *Node) string { return string(goka.GroupTable(t.GroupName(n))) }

// RepartitionTopic is the internal topic that feeds a stateful node whose
// records come from another group or with a changed key.
func (t *Topology) RepartitionTopic(n *Node) string { return t.App + "-" + n.Name + "-repartition" }

// upstream returns the source or stateful node above n and whether any
// node between them changes the key.
func upstream(n *Node) (root *Node, keyChanged bool) {
	for p := n.Parent; p != nil; p = p.Parent {
		if p.Kind == KindSource || p.Stateful() {
			return p, keyChanged
		}
		switch p.Kind {
		case KindMap, KindSelectKey, KindFlatMap, KindWindow:
			keyChanged = true
		}
	}
	return nil, keyChanged
}

// repartitioned reports whether stateful node s reads a repartition topic
// (its records come from another group or with a changed key) instead of
// its source topic.
func repartitioned(s *Node) bool {
	root, changed := upstream(s)
	return changed || root == nil || root.Kind != KindSource
}

// inputCodec is the codec of the records entering n through a
// repartition topic: the codec of the nearest source or table above it,
// unless a node in between computes new values (then JSON, which encodes
// any value; Go callers that need typed values after a repartition decode
// them from the generic JSON form).
func inputCodec(n *Node) goka.Codec {
	for p := n.Parent; p != nil; p = p.Parent {
		switch p.Kind {
		case KindMapValues, KindMap, KindFlatMap, KindJoin:
			return JSON{}
		}
		if p.Codec != nil && (p.Kind == KindSource || p.Stateful()) {
			return p.Codec
		}
	}
	return JSON{}
}

// Compile turns the topology into goka groups.
func Compile(t *Topology, opts ...CompileOption) (*Compiled, error) {
	cfg := &compileConfig{}
	for _, o := range opts {
		o(cfg)
	}
	c := &Compiled{Topology: t}
	for _, n := range t.Nodes {
		switch {
		case n.Stateful():
			g, err := c.compileGroup(cfg, n)
			if err != nil {
				return nil, err
			}
			c.Groups = append(c.Groups, g)
		case n.Kind == KindSource && hasStatelessWork(n):
			g, err := c.compileGroup(cfg, n)
			if err != nil {
				return nil, err
			}
			c.Groups = append(c.Groups, g)
		}
	}
	if len(c.Groups) == 0 {
		return nil, fmt.Errorf("topology %s does nothing: no table and no output", t.App)
	}
	return c, nil
}

// sourceSampleRatio is the sample ratio of the stream a group reads
// directly (nil: none, or the group reads an internal topic).
func sourceSampleRatio(root *Node) *float64 {
	if root.Kind == KindSource {
		return root.SampleRatio
	}
	if root.Stateful() && !repartitioned(root) {
		if src, _ := upstream(root); src != nil {
			return src.SampleRatio
		}
	}
	return nil
}

// hasStatelessWork reports whether records of source src reach a sink or a
// repartition topic without passing a stateful node.
func hasStatelessWork(src *Node) bool {
	var walk func(n *Node) bool
	walk = func(n *Node) bool {
		for _, ch := range n.Children {
			switch {
			case ch.Kind == KindSink:
				return true
			case ch.Stateful():
				if repartitioned(ch) {
					return true
				}
			case walk(ch):
				return true
			}
		}
		return false
	}
	return walk(src)
}

// groupBuilder collects the edges of one group while its callback is
// wired from the steps of package processors (ops*.go): compilation
// decides which node runs where and with what; the steps run the records.
type groupBuilder struct {
	t       *Topology
	cfg     *compileConfig
	rt      *processors.Runtime
	group   *Group
	outputs map[string]bool
	lookups map[string]goka.Codec
	co      []*processors.Coalescer // in the order the suppress nodes compiled
}

// op names node n for the rejections of its step.
func op(n *Node) processors.Op { return processors.Op{Kind: string(n.Kind), Name: n.Name} }

func (c *Compiled) compileGroup(cfg *compileConfig, root *Node) (*Group, error) {
	t := c.Topology
	ropts := cfg.runtimeOpts
	if ratio := sourceSampleRatio(root); ratio != nil && cfg.sampled != nil {
		ropts = append(slices.Clip(ropts), processors.WithTracerProvider(cfg.sampled(*ratio)))
	}
	gb := &groupBuilder{t: t, cfg: cfg, rt: processors.NewRuntime(ropts...),
		group:   &Group{Name: t.GroupName(root), Root: root},
		outputs: map[string]bool{}, lookups: map[string]goka.Codec{}}

	var (
		input   string
		inCodec goka.Codec
		step    processors.Step
		err     error
	)
	switch {
	case root.Kind == KindJoinSides:
		return c.compileTableJoin(gb, root)
	case root.Kind == KindSuppress:
		return c.compileWindowSuppress(gb, root)
	}
	if root.Kind == KindSource {
		input, inCodec = root.Topic, root.Codec
		step, err = gb.children(root)
		step = processors.EventTimeStep(root.Topic, root.Timestamp, step)
	} else {
		// A stateful node: it reads its source directly (running the
		// stateless nodes in between) or its repartition topic.
		if repartitioned(root) {
			input, inCodec = t.RepartitionTopic(root), inputCodec(root)
			step, err = gb.stateful(root)
		} else {
			src, _ := upstream(root)
			input, inCodec = src.Topic, src.Codec
			step, err = gb.pathTo(src, root)
			step = processors.EventTimeStep(src.Topic, src.Timestamp, step)
		}
	}
	if err != nil {
		return nil, err
	}
	gb.group.Inputs = []string{input}

	decode := func(b []byte) (any, error) { return inCodec.Decode(b) }
	var hopts []processors.HandleOption
	if acceptsNull(root) {
		// A null value deletes the key of a latest table read straight
		// from its source; everywhere else it is dead-lettered.
		hopts = append(hopts, processors.AcceptNull())
	}
	// Null values reach the callback (goka drops them by default), also on
	// goka's tester.
	gb.group.GokaOptions = append(gb.group.GokaOptions, goka.WithNilHandling(goka.NilProcess))
	handle := processors.Handle(gb.rt, decode, func(ctx goka.Context, v any) error {
		return step(ctx, ctx.Key(), v)
	}, hopts...)
	edges := []goka.Edge{goka.Input(goka.Stream(input), new(codec.Bytes), handle)}
	if root.Stateful() {
		edges = append(edges, processors.Persist(root.Codec))
		gb.group.Table = t.TableTopic(root)
	}
	for topic, cd := range gb.lookups {
		edges = append(edges, processors.Lookup(goka.Table(topic), cd))
	}
	return gb.finish(edges)
}

// acceptsNull reports whether the group rooted at root gives a null input
// value a meaning: a latest table that reads its source topic with no step
// in between (the table mirrors the topic, so a tombstone deletes the key,
// as in a Kafka Streams KTable).
func acceptsNull(root *Node) bool {
	return root.Kind == KindLatest && root.Parent != nil && root.Parent.Kind == KindSource
}

// finish adds the output edges, defines and validates the group graph.
func (gb *groupBuilder) finish(edges []goka.Edge) (*Group, error) {
	// Outputs carry bytes: the steps encode with the node's codec, so that
	// every group sees one codec (bytes) per topic.
	for topic := range gb.outputs {
		edges = append(edges, goka.Output(goka.Stream(topic), new(codec.Bytes)))
		gb.group.Outputs = append(gb.group.Outputs, topic)
	}
	slices.Sort(gb.group.Outputs)
	gb.group.Graph = processors.DefineGroup(gb.rt, gb.group.Name, edges...)
	if err := gb.group.Graph.Validate(); err != nil {
		return nil, fmt.Errorf("group %s: %w", gb.group.Name, err)
	}
	gb.group.Runtime = gb.rt
	gb.group.Coalescers = gb.co
	return gb.group, nil
}

// children returns the step that runs every child of n that belongs to
// this group (processors.Fanout: independent branches, each tallied under
// the name of its first node).
func (gb *groupBuilder) children(n *Node) (processors.Step, error) {
	var (
		steps []processors.Step
		names []string
	)
	for _, ch := range n.Children {
		s, err := gb.node(ch)
		if err != nil {
			return nil, err
		}
		if s != nil {
			steps, names = append(steps, s), append(names, ch.Name)
		}
	}
	return processors.Fanout(gb.rt, names, steps), nil
}

// pathTo returns the step that runs the stateless nodes from src down to
// stateful node target, then target itself.
func (gb *groupBuilder) pathTo(src, target *Node) (processors.Step, error) {
	var path []*Node
	for p := target.Parent; p != src; p = p.Parent {
		path = append([]*Node{p}, path...)
	}
	next, err := gb.stateful(target)
	if err != nil {
		return nil, err
	}
	for i := len(path) - 1; i >= 0; i-- {
		next, err = gb.stateless(path[i], next)
		if err != nil {
			return nil, err
		}
	}
	return next, nil
}

// node compiles ch as part of the group walking down from its parent.
func (gb *groupBuilder) node(ch *Node) (processors.Step, error) {
	switch {
	case ch.Kind == KindJoinSides:
		return nil, nil // its group reads both table topics itself
	case ch.Stateful():
		if !repartitioned(ch) {
			return nil, nil // its own group reads the source itself
		}
		// Feed its repartition topic with the current key and value.
		return gb.emit(ch, gb.t.RepartitionTopic(ch), inputCodec(ch)), nil
	case ch.Kind == KindSink:
		return gb.emit(ch, ch.Topic, ch.Codec), nil
	case ch.Kind == KindSuppress:
		return gb.suppress(ch)
	}
	next, err := gb.children(ch)
	if err != nil {
		return nil, err
	}
	return gb.stateless(ch, next)
}

// emit returns the step that writes records to topic, encoded with cd.
func (gb *groupBuilder) emit(n *Node, topic string, cd goka.Codec) processors.Step {
	gb.outputs[topic] = true
	return processors.EmitStep(op(n), topic, cd)
}

// stateless returns the step of a stateless node n followed by next.
func (gb *groupBuilder) stateless(n *Node, next processors.Step) (processors.Step, error) {
	switch n.Kind {
	case KindFilter, KindBranch:
		return processors.FilterStep(op(n), n.pred, next), nil
	case KindMapValues:
		return processors.MapValuesStep(op(n), n.values, next), nil
	case KindMap:
		return processors.MapStep(op(n), n.kv, next), nil
	case KindSelectKey:
		return processors.SelectKeyStep(op(n), n.key, next), nil
	case KindFlatMap:
		return processors.FlatMapStep(op(n), n.flat, next), nil
	case KindJoin:
		table := gb.t.tableTopicOf(n.Other)
		gb.lookups[table] = n.Other.Codec
		return processors.LookupJoinStep(op(n), goka.Table(table), n.joiner, next), nil
	case KindToStream:
		return next, nil
	case KindWindow:
		return processors.WindowStep(n.Windows.Size, n.Windows.Advance, next), nil
	}
	return nil, fmt.Errorf("node %q: %s cannot run here", n.Name, n.Kind)
}

// fold is the fold of the table of stateful node n.
func fold(n *Node) (processors.Fold, error) {
	switch n.Kind {
	case KindCount:
		return processors.CountFold, nil
	case KindLatest:
		return processors.LatestFold, nil
	case KindReduce:
		return processors.ReduceFold(n.reduce), nil
	case KindAggregate:
		return processors.AggregateFold(n.init, n.agg), nil
	}
	return nil, fmt.Errorf("node %q: %s keeps no table of its own", n.Name, n.Kind)
}

// stateful returns the step that updates the table of stateful node n and
// runs what follows the table in this group.
func (gb *groupBuilder) stateful(n *Node) (processors.Step, error) {
	next, err := gb.children(n)
	if err != nil {
		return nil, err
	}
	f, err := fold(n)
	if err != nil {
		return nil, err
	}
	w := windowOf(n)
	if w == nil {
		return processors.TableStep(op(n), f, nil, next), nil
	}
	// Windowed: the records come keyed by window; late ones are rejected
	// here, by the group that owns the windows, with the stream time of
	// the table (a clock the table's writes move on).
	clock := processors.NewStreamClock(gb.rt)
	apply := processors.TableStep(op(n), f, clock, next)
	return processors.WindowedStep(op(w), w.Windows.Size, w.Windows.Grace, clock, apply), nil
}

// suppress returns the step that hands a table's new values to a
// coalescer writing to the sink below the suppress node.
func (gb *groupBuilder) suppress(n *Node) (processors.Step, error) {
	if len(n.Children) != 1 || n.Children[0].Kind != KindSink {
		return nil, fmt.Errorf("suppress %q must be followed by exactly one to", n.Name)
	}
	sink := n.Children[0]
	copts := append([]processors.CoalesceOption{processors.FlushEvery(n.SuppressEvery)}, gb.cfg.coalesceOpts...)
	co := processors.NewCoalescer(gb.rt, n.Name, goka.Stream(sink.Topic), sink.Codec,
		copts, processors.EmitterOptions(gb.cfg.runtimeOpts)...)
	gb.co = append(gb.co, co)
	gb.group.Outputs = append(gb.group.Outputs, sink.Topic)
	return processors.CoalesceStep(co), nil
}

// String lists the groups, for logs and errors.
func (c *Compiled) String() string {
	var b strings.Builder
	for _, g := range c.Groups {
		fmt.Fprintf(&b, "%s: %s -> table %q, outputs %v\n", g.Name, strings.Join(g.Inputs, ","), g.Table, g.Outputs)
	}
	return b.String()
}

// tableTopicOf is the topic of a table: its own topic for a table read
// from Kafka, its table topic for a table of this topology.
func (t *Topology) tableTopicOf(n *Node) string {
	if n.Stateful() {
		return t.TableTopic(n)
	}
	return n.Topic
}

// compileTableJoin builds the group of a table-table join: it consumes the
// table topics of both sides (processors.TableJoinSide), keeps both values
// of each key in its own table and, when both exist, passes the joined
// value on to the result table (through its repartition topic).
func (c *Compiled) compileTableJoin(gb *groupBuilder, sides *Node) (*Group, error) {
	t := c.Topology
	left, right := sides.Parent, sides.Other
	next, err := gb.children(sides)
	if err != nil {
		return nil, err
	}
	leftTopic, rightTopic := t.tableTopicOf(left), t.tableTopicOf(right)
	if leftTopic == rightTopic {
		return nil, fmt.Errorf("table join %q: a table cannot join itself", sides.Name)
	}
	leftCB := processors.TableJoinSide(gb.rt, op(sides), processors.JoinLeft, sides.tjoin, next)
	rightCB := processors.TableJoinSide(gb.rt, op(sides), processors.JoinRight, sides.tjoin, next)
	gb.group.Inputs = []string{leftTopic, rightTopic}
	// The table topics are read with the codec their owners write them
	// with (envelopes around the user codec).
	edges := []goka.Edge{
		goka.Input(goka.Stream(leftTopic), processors.EnvelopeCodec(left.Codec), leftCB),
		goka.Input(goka.Stream(rightTopic), processors.EnvelopeCodec(right.Codec), rightCB),
		processors.Persist(sides.Codec),
	}
	gb.group.Table = t.TableTopic(sides)
	// Deleting a side arrives as a nil record, which goka drops unless
	// asked to process it.
	gb.group.GokaOptions = append(gb.group.GokaOptions, goka.WithNilHandling(goka.NilProcess))
	return gb.finish(edges)
}

// compileWindowSuppress builds the group of a suppress-until-window-close
// node: it reads the window updates of its table through its repartition
// topic and emits each window's final value to the sink below it when the
// window closes (processors.WindowSuppressor).
func (c *Compiled) compileWindowSuppress(gb *groupBuilder, n *Node) (*Group, error) {
	t := c.Topology
	if len(n.Children) != 1 || n.Children[0].Kind != KindSink {
		return nil, fmt.Errorf("suppress %q must be followed by exactly one to", n.Name)
	}
	sink := n.Children[0]
	w := n.Windows
	ws := processors.NewWindowSuppressor(gb.rt, n.Name, goka.Stream(sink.Topic), sink.Codec,
		processors.WindowCloseAt(w.Size, w.Grace), w.Size)
	input := t.RepartitionTopic(n)
	gb.group.Inputs = []string{input}
	gb.group.Table = t.TableTopic(n)
	gb.group.Outputs = append(gb.group.Outputs, sink.Topic)
	return gb.finish(ws.Edges(goka.Stream(input), inputCodec(n)))
}

// WindowStart returns the window start in a table key made by WindowKey
// (processors.WindowStart).
func WindowStart(key string) (time.Time, error) { return processors.WindowStart(key) }
