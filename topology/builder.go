package topology

import (
	"errors"
	"fmt"
	"time"

	"github.com/lovoo/goka"
	"github.com/weftstream/weft/processors"
)

// KeyValue is a record produced by FlatMap (processors.KeyValue: the
// flat-map step of package processors runs it).
type KeyValue = processors.KeyValue

// Predicate decides whether a record passes.
type Predicate func(key string, value any) (bool, error)

// ValueMapper computes a new value.
type ValueMapper func(key string, value any) (any, error)

// KeyValueMapper computes a new key and value.
type KeyValueMapper func(key string, value any) (string, any, error)

// KeySelector computes a new key.
type KeySelector func(key string, value any) (string, error)

// FlatMapper computes any number of records from one.
type FlatMapper func(key string, value any) ([]KeyValue, error)

// Initializer returns the initial aggregate of a key.
type Initializer func() any

// Aggregator folds a value into the aggregate of its key.
type Aggregator func(key string, value any, aggregate any) (any, error)

// Reducer combines the current value of a key with a new one.
type Reducer func(key string, current, value any) (any, error)

// TableJoiner combines the values of a key in two tables.
type TableJoiner func(key string, left, right any) (any, error)

// TimestampExtractor returns the event time of a record of a stream.
type TimestampExtractor func(key string, value any) (time.Time, error)

// ValueJoiner combines a record's value with the value it joins (nil when
// the table has none).
type ValueJoiner func(key string, value, other any) (any, error)

// Kind names the operation of a node.
type Kind string

// Node kinds.
const (
	KindSource    Kind = "source"
	KindTable     Kind = "table"
	KindFilter    Kind = "filter"
	KindMapValues Kind = "mapValues"
	KindMap       Kind = "map"
	KindSelectKey Kind = "selectKey"
	KindFlatMap   Kind = "flatMap"
	KindBranch    Kind = "branch"
	KindJoin      Kind = "join"
	KindGroup     Kind = "groupBy"
	KindWindow    Kind = "window"
	KindCount     Kind = "count"
	KindReduce    Kind = "reduce"
	KindAggregate Kind = "aggregate"
	KindLatest    Kind = "latest"
	KindJoinSides Kind = "tableJoin"
	KindToStream  Kind = "toStream"
	KindSuppress  Kind = "suppress"
	KindSink      Kind = "to"
)

// Node is one operation of a topology. Its fields describe it (for
// Describe, validation and compilation); build nodes with the Builder DSL.
type Node struct {
	ID       int
	Name     string
	Kind     Kind
	Parent   *Node
	Children []*Node

	// Topic is the topic of a source, table or sink; Codec its value codec.
	Topic string
	Codec goka.Codec

	// KeyChanged is true when the node (or an ancestor since the last
	// repartition) may have changed the record key.
	KeyChanged bool

	// Other is the table a join reads.
	Other *Node

	// SuppressEvery is the interval of a suppress node.
	SuppressEvery time.Duration

	// Windows are the time windows of a window node.
	Windows Windows

	// UntilWindowClose is true for a suppress node that emits each window's
	// final value once the window closes.
	UntilWindowClose bool

	// Timestamp, on a source, extracts the event time of its records (nil:
	// the Kafka record timestamp).
	Timestamp TimestampExtractor

	// SampleRatio, on a source, is the trace sample ratio of its records
	// (nil: the topology's sampler).
	SampleRatio *float64

	pred   Predicate
	values ValueMapper
	kv     KeyValueMapper
	key    KeySelector
	flat   FlatMapper
	tjoin  TableJoiner
	init   Initializer
	agg    Aggregator
	reduce Reducer
	joiner ValueJoiner
}

// Stateful reports whether the node keeps a table.
func (n *Node) Stateful() bool {
	switch n.Kind {
	case KindCount, KindReduce, KindAggregate, KindLatest, KindJoinSides:
		return true
	case KindSuppress:
		return n.UntilWindowClose // its buffer is a table
	}
	return false
}

// Predicate is the predicate a filter or branch node keeps records by
// (nil for other kinds), for tools and tests that run one node.
func (n *Node) Predicate() Predicate { return n.pred }

// ValueMapper is the function a mapValues node replaces values with (nil
// for other kinds), for tools and tests that run one node.
func (n *Node) ValueMapper() ValueMapper { return n.values }

// Aggregator is the adder of an aggregate node (nil for other kinds), for
// tools and tests that run one node.
func (n *Node) Aggregator() Aggregator { return n.agg }

// Builder collects the nodes of a topology. Its methods never fail: errors
// (a nil function, a duplicate name) are collected and returned by Build.
type Builder struct {
	app   string
	nodes []*Node
	names map[string]*Node
	errs  []error
}

// New returns a Builder for the application app, which prefixes the names
// of the consumer groups and internal topics the topology creates.
func New(app string) *Builder {
	return &Builder{app: app, names: map[string]*Node{}}
}

func (b *Builder) add(n *Node, parent *Node) *Node {
	n.ID = len(b.nodes)
	if n.Name == "" {
		n.Name = fmt.Sprintf("%s-%d", n.Kind, n.ID)
	}
	if prev, ok := b.names[n.Name]; ok {
		b.errs = append(b.errs, fmt.Errorf("node name %q is used twice (%s and %s)", n.Name, prev.Kind, n.Kind))
	}
	b.names[n.Name] = n
	if parent != nil {
		n.Parent = parent
		n.KeyChanged = n.KeyChanged || parent.KeyChanged
		parent.Children = append(parent.Children, n)
	}
	b.nodes = append(b.nodes, n)
	return n
}

func (b *Builder) need(ok bool, format string, args ...any) {
	if !ok {
		b.errs = append(b.errs, fmt.Errorf(format, args...))
	}
}

// SourceOption configures a stream read by Builder.Stream.
type SourceOption func(*Node)

// WithTimestampExtractor makes fn the event time of the stream's records,
// like a Kafka Streams TimestampExtractor: windows and stream time use it
// instead of the record timestamps, and it travels on with the records (in
// the weft.event.time header). A record whose time fn cannot extract goes
// to the dead-letter topic.
func WithTimestampExtractor(fn TimestampExtractor) SourceOption {
	return func(n *Node) { n.Timestamp = fn }
}

// WithTraceSampleRatio samples the traces of the stream's records at
// ratio (0 to 1) instead of with the topology's sampler: the group that
// reads the stream starts a trace for a record that arrives without a
// sampled traceparent with that probability (parent-based, so records that
// carry a traceparent follow its decision, and the groups downstream follow
// the stream's). It applies when the topology is compiled with
// WithSampledProviders (weft run does).
func WithTraceSampleRatio(ratio float64) SourceOption {
	return func(n *Node) { n.SampleRatio = &ratio }
}

// Stream reads a stream of records from topic, values decoded with codec.
// Event time is the records' Kafka timestamp unless an option says
// otherwise.
func (b *Builder) Stream(topic string, codec goka.Codec, opts ...SourceOption) *Stream {
	b.need(topic != "", "stream without a topic")
	b.need(codec != nil, "stream %s without a codec", topic)
	n := &Node{Kind: KindSource, Name: "source-" + topic, Topic: topic, Codec: codec}
	for _, o := range opts {
		o(n)
	}
	b.need(n.SampleRatio == nil || *n.SampleRatio >= 0 && *n.SampleRatio <= 1,
		"stream %s: sample ratio must be from 0 to 1", topic)
	return &Stream{b: b, n: b.add(n, nil)}
}

// Table reads a table from its table topic (written by another weft
// processor, values in envelopes around codec) for joins and lookups.
func (b *Builder) Table(topic string, codec goka.Codec) *Table {
	b.need(topic != "", "table without a topic")
	b.need(codec != nil, "table %s without a codec", topic)
	return &Table{b: b, n: b.add(&Node{Kind: KindTable, Name: "table-" + topic, Topic: topic, Codec: codec}, nil)}
}

// Stream is a record stream.
type Stream struct {
	b *Builder
	n *Node
}

// Node returns the stream's node.
func (s *Stream) Node() *Node { return s.n }

func (s *Stream) then(n *Node) *Stream { return &Stream{b: s.b, n: s.b.add(n, s.n)} }

// Filter keeps the records for which pred holds.
func (s *Stream) Filter(name string, pred Predicate) *Stream {
	s.b.need(pred != nil, "filter %q without a predicate", name)
	return s.then(&Node{Kind: KindFilter, Name: name, pred: pred})
}

// MapValues replaces each value.
func (s *Stream) MapValues(name string, fn ValueMapper) *Stream {
	s.b.need(fn != nil, "mapValues %q without a function", name)
	return s.then(&Node{Kind: KindMapValues, Name: name, values: fn})
}

// Map replaces each key and value.
func (s *Stream) Map(name string, fn KeyValueMapper) *Stream {
	s.b.need(fn != nil, "map %q without a function", name)
	return s.then(&Node{Kind: KindMap, Name: name, kv: fn, KeyChanged: true})
}

// SelectKey replaces each key.
func (s *Stream) SelectKey(name string, fn KeySelector) *Stream {
	s.b.need(fn != nil, "selectKey %q without a function", name)
	return s.then(&Node{Kind: KindSelectKey, Name: name, key: fn, KeyChanged: true})
}

// FlatMap turns each record into any number of records.
func (s *Stream) FlatMap(name string, fn FlatMapper) *Stream {
	s.b.need(fn != nil, "flatMap %q without a function", name)
	return s.then(&Node{Kind: KindFlatMap, Name: name, flat: fn, KeyChanged: true})
}

// Branch splits the stream: a record goes to the first branch whose
// predicate holds, or nowhere.
func (s *Stream) Branch(name string, preds ...Predicate) []*Stream {
	s.b.need(len(preds) > 0, "branch %q without predicates", name)
	out := make([]*Stream, len(preds))
	for i, p := range preds {
		s.b.need(p != nil, "branch %q: predicate %d is nil", name, i)
		out[i] = s.then(&Node{Kind: KindBranch, Name: fmt.Sprintf("%s-%d", name, i), pred: firstMatch(preds, i)})
	}
	return out
}

// firstMatch holds for a record when predicate i is the first of preds
// that holds.
func firstMatch(preds []Predicate, i int) Predicate {
	return func(k string, v any) (bool, error) {
		for j := 0; j <= i; j++ {
			if preds[j] == nil {
				return false, nil
			}
			ok, err := preds[j](k, v)
			if err != nil || ok {
				return ok && j == i, err
			}
		}
		return false, nil
	}
}

// Join enriches each record with the value of its key in table (a lookup;
// the table need not be co-partitioned).
func (s *Stream) Join(name string, table *Table, joiner ValueJoiner) *Stream {
	s.b.need(table != nil, "join %q without a table", name)
	s.b.need(joiner != nil, "join %q without a joiner", name)
	n := &Node{Kind: KindJoin, Name: name, joiner: joiner}
	if table != nil {
		n.Other = table.n
	}
	return s.then(n)
}

// To writes the stream to topic with codec.
func (s *Stream) To(topic string, codec goka.Codec) {
	s.b.need(topic != "", "to without a topic")
	s.b.need(codec != nil, "to %s without a codec", topic)
	s.then(&Node{Kind: KindSink, Name: "to-" + topic, Topic: topic, Codec: codec})
}

// GroupByKey groups the records by their key (repartitioning first if an
// earlier operation changed the key).
func (s *Stream) GroupByKey() *Grouped {
	return &Grouped{s: s}
}

// GroupBy groups the records by a new key, through a repartition topic.
func (s *Stream) GroupBy(name string, fn KeySelector) *Grouped {
	return &Grouped{s: s.SelectKey(name, fn)}
}

// Latest keeps the latest value of each key (an upsert table), named name.
func (s *Stream) Latest(name string, codec goka.Codec) *Table {
	return s.GroupByKey().aggregate(&Node{Kind: KindLatest, Name: name, Codec: codec})
}

// Grouped is a stream grouped by key, ready to be aggregated.
type Grouped struct{ s *Stream }

func (g *Grouped) aggregate(n *Node) *Table {
	g.s.b.need(n.Codec != nil, "%s %q without a codec for its table", n.Kind, n.Name)
	return &Table{b: g.s.b, n: g.s.b.add(n, g.s.n)}
}

// Count counts the records of each key in the table name.
func (g *Grouped) Count(name string) *Table {
	return g.aggregate(&Node{Kind: KindCount, Name: name, Codec: new(int64Codec)})
}

// Reduce combines the values of each key with fn in the table name.
func (g *Grouped) Reduce(name string, fn Reducer, codec goka.Codec) *Table {
	g.s.b.need(fn != nil, "reduce %q without a reducer", name)
	return g.aggregate(&Node{Kind: KindReduce, Name: name, Codec: codec, reduce: fn})
}

// Aggregate folds the values of each key, starting from init, with add, in
// the table name.
func (g *Grouped) Aggregate(name string, init Initializer, add Aggregator, codec goka.Codec) *Table {
	g.s.b.need(init != nil, "aggregate %q without an initializer", name)
	g.s.b.need(add != nil, "aggregate %q without an adder", name)
	return g.aggregate(&Node{Kind: KindAggregate, Name: name, Codec: codec, init: init, agg: add})
}

// Windows are event-time windows: [start, start+Size) for every start that
// is a multiple of Advance (Advance == Size: tumbling windows; smaller:
// hopping, overlapping windows). A window closes Grace after its end, by
// the stream time of the aggregation's partition that holds it (kept in
// the table: it survives restarts); a record for a closed window is late:
// the aggregation sends it to its dead-letter topic, once per closed
// window, and applies it to the windows still open.
type Windows struct {
	Size, Advance, Grace time.Duration
}

// Tumbling returns non-overlapping windows of size.
func Tumbling(size, grace time.Duration) Windows {
	return Windows{Size: size, Advance: size, Grace: grace}
}

// Hopping returns windows of size starting every advance.
func Hopping(size, advance, grace time.Duration) Windows {
	return Windows{Size: size, Advance: advance, Grace: grace}
}

// WindowKey is the table key of key's window starting at start:
// key@start in RFC 3339, UTC, with the fraction of a second when start has
// one (time.RFC3339Nano), so that sub-second windows get keys of their own
// and whole-second starts keep the form they always had
// ("k@2026-03-01T10:00:00Z", "k@2026-03-01T10:00:00.5Z").
func WindowKey(key string, start time.Time) string { return processors.WindowKey(key, start) }

// WindowedBy aggregates the group per event-time window: the table keys
// are WindowKey(key, windowStart). Records reach the aggregation through a
// repartition topic keyed by window.
func (g *Grouped) WindowedBy(name string, w Windows) *Grouped {
	g.s.b.need(w.Size > 0 && w.Advance > 0, "window %q: size and advance must be positive (size %s, advance %s)", name, w.Size, w.Advance)
	g.s.b.need(w.Advance <= w.Size, "window %q: windows cannot advance (%s) by more than their size (%s)", name, w.Advance, w.Size)
	g.s.b.need(w.Advance <= 0 || w.Advance > w.Size || w.Size%w.Advance == 0,
		"window %q: the size (%s) must be a multiple of advance (%s)", name, w.Size, w.Advance)
	g.s.b.need(w.Grace >= 0, "window %q: negative grace %s", name, w.Grace)
	return &Grouped{s: g.s.then(&Node{Kind: KindWindow, Name: name, Windows: w, KeyChanged: true})}
}

// Table is a table: a value per key.
type Table struct {
	b *Builder
	n *Node
}

// Join joins the table with a co-partitioned table (both keyed alike, with
// the same partition count) into the table name: whenever either side of
// a key changes and both sides have a value, joiner computes the key's
// joined value (an inner join; nil from the joiner deletes it). Deleting
// either side deletes the key's joined value. The join keeps both sides
// in an internal table name-sides and reaches the result table through
// the internal topic <app>-<name>-repartition.
func (t *Table) Join(name string, other *Table, joiner TableJoiner, codec goka.Codec) *Table {
	t.b.need(other != nil, "table join %q without a table", name)
	t.b.need(joiner != nil, "table join %q without a joiner", name)
	sides := &Node{Kind: KindJoinSides, Name: name + "-sides", Codec: JSON{}, tjoin: joiner}
	if other != nil {
		sides.Other = other.n
	}
	t.b.add(sides, t.n)
	return (&Grouped{s: &Stream{b: t.b, n: sides}}).aggregate(&Node{Kind: KindLatest, Name: name, Codec: codec})
}

// Node returns the table's node.
func (t *Table) Node() *Node { return t.n }

// ToStream is the stream of the table's updates.
func (t *Table) ToStream() *Stream {
	return &Stream{b: t.b, n: t.b.add(&Node{Kind: KindToStream, Name: t.n.Name + "-updates"}, t.n)}
}

// Suppress coalesces the table's updates: every interval it emits the
// latest value of each changed key, in a flush span linked to every
// contributing span.
func (t *Table) Suppress(name string, every time.Duration) *Stream {
	t.b.need(every > 0, "suppress %q needs a positive interval", name)
	return &Stream{b: t.b, n: t.b.add(&Node{Kind: KindSuppress, Name: name, SuppressEvery: every}, t.n)}
}

// SuppressUntilWindowClose emits the final value of each window of a
// windowed table, once, when the window closes (stream time passes its end
// plus grace, by the stream time at which the aggregation applied the
// updates: processors.HeaderStreamTime), like Kafka Streams'
// Suppressed.untilWindowCloses; the value emitted is the window's final
// value in the windowed table. The
// record goes out in a span "flush <name>" linked to every update of the
// window. Until then the values wait in the internal table
// <app>-<name>-table (restored after a crash like any table), fed through
// <app>-<name>-repartition; nothing holds consumer offsets back. Windows
// close only as records arrive. Follow it with exactly one To.
func (t *Table) SuppressUntilWindowClose(name string) *Stream {
	n := &Node{Kind: KindSuppress, Name: name, UntilWindowClose: true}
	w := windowOf(t.n)
	t.b.need(w != nil, "suppress %q until window close needs a windowed table (%s is not windowed)", name, t.n.Name)
	if w != nil {
		n.Windows = w.Windows
	}
	if t.n.Codec != nil {
		n.Codec = processors.WindowStateCodec(t.n.Codec)
	}
	return &Stream{b: t.b, n: t.b.add(n, t.n)}
}

// windowOf returns the window node that keys table n by window (the
// aggregation right after WindowedBy), or nil.
func windowOf(n *Node) *Node {
	if n != nil && n.Stateful() && n.Parent != nil && n.Parent.Kind == KindWindow {
		return n.Parent
	}
	return nil
}

// Topology is a built topology.
type Topology struct {
	App   string
	Nodes []*Node
}

// Build checks the topology and returns it.
func (b *Builder) Build() (*Topology, error) {
	if b.app == "" {
		b.errs = append(b.errs, errors.New("topology without an application name"))
	}
	for _, n := range b.nodes {
		if n.Kind == KindTable {
			for _, ch := range n.Children {
				if ch.Kind != KindJoinSides {
					b.errs = append(b.errs, fmt.Errorf("table %s is read-only here: use it in a join", n.Topic))
					break
				}
			}
		}
		if (n.Kind == KindSuppress || n.Kind == KindToStream) && n.Parent != nil && !n.Parent.Stateful() {
			b.errs = append(b.errs, fmt.Errorf("%s %q must follow a table", n.Kind, n.Name))
		}
	}
	if len(b.errs) > 0 {
		return nil, errors.Join(b.errs...)
	}
	return &Topology{App: b.app, Nodes: b.nodes}, nil
}
