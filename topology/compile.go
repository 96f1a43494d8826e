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
	Name       goka.Group
	Graph      *goka.GroupGraph
	Runtime    *processors.Runtime
	Coalescers []*processors.Coalescer
	// GokaOptions are the goka processor options the group needs (a table
	// join processes deletions: goka.WithNilHandling(goka.NilProcess)).
	GokaOptions []goka.ProcessorOption
	// Input is the topic the group consumes (for a table join, both table
	// topics, comma-separated); Table its table topic ("" for
	// a stateless group); Outputs the topics it writes.
	Input   string
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
	runtimeOpts []processors.Option
	sampled     func(ratio float64) trace.TracerProvider
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
// compiled.
type groupBuilder struct {
	t       *Topology
	cfg     *compileConfig
	rt      *processors.Runtime
	group   *Group
	outputs map[string]bool
	lookups map[string]goka.Codec
	co      map[*Node]*processors.Coalescer
}

func (c *Compiled) compileGroup(cfg *compileConfig, root *Node) (*Group, error) {
	t := c.Topology
	ropts := cfg.runtimeOpts
	if ratio := sourceSampleRatio(root); ratio != nil && cfg.sampled != nil {
		ropts = append(slices.Clip(ropts), processors.WithTracerProvider(cfg.sampled(*ratio)))
	}
	gb := &groupBuilder{t: t, cfg: cfg, rt: processors.NewRuntime(ropts...),
		group:   &Group{Name: t.GroupName(root), Root: root},
		outputs: map[string]bool{}, lookups: map[string]goka.Codec{}, co: map[*Node]*processors.Coalescer{}}

	var (
		input   string
		inCodec goka.Codec
		step    step
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
		step = withEventTime(root, step)
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
			step = withEventTime(src, step)
		}
	}
	if err != nil {
		return nil, err
	}
	gb.group.Input = input

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
	for _, co := range gb.co {
		gb.group.Coalescers = append(gb.group.Coalescers, co)
	}
	return gb.group, nil
}

// step runs one node (and what follows it in the group) on a record.
type step func(ctx goka.Context, key string, value any) error

// children returns the step that runs every child of n that belongs to
// this group.
func (gb *groupBuilder) children(n *Node) (step, error) {
	var (
		steps    []step
		branches []*Node
	)
	for _, ch := range n.Children {
		s, err := gb.node(ch)
		if err != nil {
			return nil, err
		}
		if s != nil {
			steps, branches = append(steps, s), append(branches, ch)
		}
	}
	switch len(steps) {
	case 0:
		return func(goka.Context, string, any) error { return nil }, nil
	case 1:
		return steps[0], nil
	}
	// Branches are independent: a record rejected by one still reaches the
	// others; the first rejection is reported once, after all ran (the
	// record is dead-lettered once). Each branch, named after its first
	// node, counts what it did with the record (processors.Tally.Branch),
	// so that a branch's records add up even when a sibling rejected them.
	tallies := make([]*processors.BranchTally, len(branches))
	for i, br := range branches {
		tallies[i] = gb.rt.Tally().Branch(br.Name)
	}
	return func(ctx goka.Context, k string, v any) error {
		var rejected error
		for i, s := range steps {
			err := s(ctx, k, v)
			tallies[i].Count(ctx, err)
			if _, ok := processors.AsRejection(err); ok {
				if rejected == nil {
					rejected = err
				}
				continue
			}
			if err != nil {
				return err
			}
		}
		return rejected
	}, nil
}

// pathTo returns the step that runs the stateless nodes from src down to
// stateful node target, then target itself.
func (gb *groupBuilder) pathTo(src, target *Node) (step, error) {
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
func (gb *groupBuilder) node(ch *Node) (step, error) {
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
func (gb *groupBuilder) emit(n *Node, topic string, cd goka.Codec) step {
	gb.outputs[topic] = true
	return func(ctx goka.Context, k string, v any) error {
		data, err := cd.Encode(v)
		if err != nil {
			return processors.Reject(processors.ReasonEncode, "%s %q: encode for %s: %v", n.Kind, n.Name, topic, err)
		}
		ctx.Emit(goka.Stream(topic), k, data)
		return nil
	}
}

// stateless returns the step of a stateless node n followed by next.
func (gb *groupBuilder) stateless(n *Node, next step) (step, error) {
	fail := func(err error) error { return processors.Reject(string(n.Kind), "%s %q: %v", n.Kind, n.Name, err) }
	switch n.Kind {
	case KindFilter, KindBranch:
		return func(ctx goka.Context, k string, v any) error {
			ok, err := n.pred(k, v)
			if err != nil {
				return fail(err)
			}
			if !ok {
				return nil
			}
			return next(ctx, k, v)
		}, nil
	case KindMapValues:
		return func(ctx goka.Context, k string, v any) error {
			nv, err := n.values(k, v)
			if err != nil {
				return fail(err)
			}
			return next(ctx, k, nv)
		}, nil
	case KindMap:
		return func(ctx goka.Context, k string, v any) error {
			nk, nv, err := n.kv(k, v)
			if err != nil {
				return fail(err)
			}
			return next(ctx, nk, nv)
		}, nil
	case KindSelectKey:
		return func(ctx goka.Context, k string, v any) error {
			nk, err := n.key(k, v)
			if err != nil {
				return fail(err)
			}
			return next(ctx, nk, v)
		}, nil
	case KindFlatMap:
		return func(ctx goka.Context, k string, v any) error {
			kvs, err := n.flat(k, v)
			if err != nil {
				return fail(err)
			}
			for _, kv := range kvs {
				if err := next(ctx, kv.Key, kv.Value); err != nil {
					return err
				}
			}
			return nil
		}, nil
	case KindJoin:
		table := gb.t.tableTopicOf(n.Other)
		gb.lookups[table] = n.Other.Codec
		return func(ctx goka.Context, k string, v any) error {
			other := ctx.Lookup(goka.Table(table), k)
			nv, err := n.joiner(k, v, other)
			if err != nil {
				return fail(err)
			}
			return next(ctx, k, nv)
		}, nil
	case KindToStream:
		return next, nil
	case KindWindow:
		return windowStep(n, next), nil
	}
	return nil, fmt.Errorf("node %q: %s cannot run here", n.Name, n.Kind)
}

// stateful returns the step that updates the table of stateful node n and
// runs what follows the table in this group.
func (gb *groupBuilder) stateful(n *Node) (step, error) {
	next, err := gb.children(n)
	if err != nil {
		return nil, err
	}
	fail := func(err error) error { return processors.Reject(string(n.Kind), "%s %q: %v", n.Kind, n.Name, err) }
	var clock *processors.StreamClock // the stream time of a windowed table
	w := windowOf(n)
	if w != nil {
		clock = processors.NewStreamClock(gb.rt)
	}
	apply := func(ctx goka.Context, k string, v any) error {
		if k != ctx.Key() {
			return fail(fmt.Errorf("record key %q reached the table of key %q: the stream must be repartitioned", k, ctx.Key()))
		}
		cur := ctx.Value()
		var nv any
		switch n.Kind {
		case KindCount:
			count, _ := cur.(int64)
			nv = count + 1
		case KindLatest:
			nv = v
		case KindReduce:
			if cur == nil {
				nv = v
			} else {
				r, err := n.reduce(k, cur, v)
				if err != nil {
					return fail(err)
				}
				nv = r
			}
		case KindAggregate:
			if cur == nil {
				cur = n.init()
			}
			a, err := n.agg(k, v, cur)
			if err != nil {
				return fail(err)
			}
			nv = a
		}
		if nv == nil {
			ctx.Delete()
			return nil
		}
		ctx.SetValue(nv)
		if clock != nil {
			// Stream time is the newest event time in the table (the
			// clock restores it from there): it moves with the write.
			if err := clock.Advance(ctx, ctx.Timestamp()); err != nil {
				return err
			}
		}
		return next(ctx, k, nv)
	}
	if w != nil {
		// Windowed: the records come keyed by window; late ones are
		// rejected here, by the group that owns the windows.
		return windowed(w, clock, apply), nil
	}
	return apply, nil
}

// suppress returns the step that hands a table's new values to a
// coalescer writing to the sink below the suppress node.
func (gb *groupBuilder) suppress(n *Node) (step, error) {
	if len(n.Children) != 1 || n.Children[0].Kind != KindSink {
		return nil, fmt.Errorf("suppress %q must be followed by exactly one to", n.Name)
	}
	sink := n.Children[0]
	co := processors.NewCoalescer(gb.rt, n.Name, goka.Stream(sink.Topic), sink.Codec,
		[]processors.CoalesceOption{processors.FlushEvery(n.SuppressEvery)}, gb.cfg.runtimeOpts...)
	gb.co[n] = co
	gb.group.Outputs = append(gb.group.Outputs, sink.Topic)
	return func(ctx goka.Context, k string, v any) error {
		co.Add(ctx, k, v)
		return nil
	}, nil
}

// String lists the groups, for logs and errors.
func (c *Compiled) String() string {
	var b strings.Builder
	for _, g := range c.Groups {
		fmt.Fprintf(&b, "%s: %s -> table %q, outputs %v\n", g.Name, g.Input, g.Table, g.Outputs)
	}
	return b.String()
}

// eventTimeSetter is the part of processors.Context a timestamp extractor
// needs.
type eventTimeSetter interface{ SetEventTime(time.Time) }

// withEventTime runs source src's timestamp extractor (if it has one)
// before next: the extracted time becomes the record's event time.
func withEventTime(src *Node, next step) step {
	extract := src.Timestamp
	if extract == nil || next == nil {
		return next
	}
	return func(ctx goka.Context, k string, v any) error {
		ts, err := extract(k, v)
		if err != nil {
			return processors.Reject(processors.ReasonTimestamp, "stream %s: event time: %v", src.Topic, err)
		}
		setter, ok := ctx.(eventTimeSetter)
		if !ok {
			return fmt.Errorf("stream %s: the context %T cannot take an event time (run the group with processors.Handle)", src.Topic, ctx)
		}
		setter.SetEventTime(ts)
		return next(ctx, k, v)
	}
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
// table topics of both sides, keeps both values of each key in its own
// table and, when both exist, passes the joined value on to the result
// table (through its repartition topic).
func (c *Compiled) compileTableJoin(gb *groupBuilder, sides *Node) (*Group, error) {
	t := c.Topology
	left, right := sides.Parent, sides.Other
	next, err := gb.children(sides)
	if err != nil {
		return nil, err
	}
	fail := func(err error) error { return processors.Reject("tableJoin", "table join %q: %v", sides.Name, err) }
	side := func(name string, n *Node) (string, goka.ProcessCallback) {
		topic := t.tableTopicOf(n)
		return topic, processors.HandleDecoded(gb.rt, func(ctx goka.Context, s *processors.Stored) error {
			both, _ := ctx.Value().(map[string]any)
			wasJoined := both["left"] != nil && both["right"] != nil
			if s == nil || s.Value == nil {
				// A side was deleted: forget it, and retract the joined
				// value if there was one.
				if both[name] == nil {
					return nil
				}
				delete(both, name)
				if len(both) == 0 {
					ctx.Delete()
				} else {
					ctx.SetValue(both)
				}
				if wasJoined {
					return next(ctx, ctx.Key(), nil)
				}
				return nil
			}
			if both == nil {
				both = map[string]any{}
			}
			both[name] = s.Value
			ctx.SetValue(both)
			l, r := both["left"], both["right"]
			if l == nil || r == nil {
				return nil // an inner join: no result until both sides exist
			}
			joined, err := sides.tjoin(ctx.Key(), l, r)
			if err != nil {
				return fail(err)
			}
			return next(ctx, ctx.Key(), joined)
		})
	}
	leftTopic, leftCB := side("left", left)
	rightTopic, rightCB := side("right", right)
	if leftTopic == rightTopic {
		return nil, fmt.Errorf("table join %q: a table cannot join itself", sides.Name)
	}
	gb.group.Input = leftTopic + "," + rightTopic
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
	closeAt := func(key string) (time.Time, error) {
		start, err := WindowStart(key)
		if err != nil {
			return time.Time{}, err
		}
		return start.Add(w.Size + w.Grace), nil
	}
	ws := processors.NewWindowSuppressor(gb.rt, n.Name, goka.Stream(sink.Topic), sink.Codec, closeAt, w.Size)
	input := t.RepartitionTopic(n)
	gb.group.Input = input
	gb.group.Table = t.TableTopic(n)
	gb.group.Outputs = append(gb.group.Outputs, sink.Topic)
	return gb.finish(ws.Edges(goka.Stream(input), inputCodec(n)))
}

// WindowStart returns the window start in a table key made by WindowKey.
func WindowStart(key string) (time.Time, error) {
	i := strings.LastIndexByte(key, '@')
	if i < 0 {
		return time.Time{}, fmt.Errorf("key %q is not a window key (<key>@<window start>)", key)
	}
	start, err := time.Parse(time.RFC3339, key[i+1:])
	if err != nil {
		return time.Time{}, fmt.Errorf("key %q is not a window key: %v", key, err)
	}
	return start, nil
}
