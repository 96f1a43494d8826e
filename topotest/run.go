package topotest

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/lovoo/goka/tester"
	wt "github.com/weftstream/weft/internal/tester"
	"github.com/weftstream/weft/processors"
	"github.com/weftstream/weft/topology"
)

// Result is the outcome of one test case.
type Result struct {
	Case   string
	Passed bool
	// Failures are readable descriptions of what differed, one per
	// failed expectation; a description may span several lines.
	Failures []string
}

// stopTimeout bounds how long a case waits for its processors to stop.
const stopTimeout = 10 * time.Second

// Run runs the test cases on t, each on a fresh in-memory tester with
// freshly compiled processors, and returns one Result per case. The error
// is for cases that cannot run at all (an input topic the topology does
// not read, an expected table it does not have, a topology that does not
// compile) or a cancelled ctx; failed expectations are in the results.
func Run(ctx context.Context, t *topology.Topology, cases []Case) ([]Result, error) {
	p, err := newPlan(t, cases)
	if err != nil {
		return nil, err
	}
	results := make([]Result, 0, len(cases))
	for i := range cases {
		if err := ctx.Err(); err != nil {
			return results, err
		}
		r, err := p.run(ctx, i)
		if err != nil {
			return results, fmt.Errorf("test case %q: %w", cases[i].Name, err)
		}
		results = append(results, r)
	}
	return results, nil
}

// plan is what Run knows about the topology and the cases before running
// them: the topics, and the inputs encoded.
type plan struct {
	top   *topology.Topology
	cases []Case

	sources  map[string]*topology.Node // stream topic -> source node
	tables   map[string]*topology.Node // table topic -> table node (joins)
	sinks    map[string]*topology.Node // output topic -> its first sink node
	stateful map[string]*topology.Node // table name -> aggregating node
	// consumed are the topics some group reads as its input (a stream, or
	// the table topics of a table join); lookups the tables some group
	// looks up (joins of a stream with a table). Feeding other topics has
	// no effect.
	consumed map[string]bool
	lookups  map[string]bool
	outputs  []string // output topics, sorted
	inputs   [][]input
}

// input is an input record, encoded.
type input struct {
	rec   *Record
	data  []byte // nil: a tombstone
	table bool   // a value for a joined table
	value any    // the decoded value of a table input
}

func newPlan(t *topology.Topology, cases []Case) (*plan, error) {
	if t == nil {
		return nil, errors.New("no topology")
	}
	compiled, err := topology.Compile(t)
	if err != nil {
		return nil, err
	}
	p := &plan{top: t, cases: cases,
		sources: map[string]*topology.Node{}, tables: map[string]*topology.Node{},
		sinks: map[string]*topology.Node{}, stateful: map[string]*topology.Node{},
		consumed: map[string]bool{}, lookups: map[string]bool{}}
	for _, n := range t.Nodes {
		switch {
		case n.Kind == topology.KindSource:
			p.sources[n.Topic] = n
		case n.Kind == topology.KindTable:
			p.tables[n.Topic] = n
		case n.Kind == topology.KindSink:
			if p.sinks[n.Topic] == nil {
				p.sinks[n.Topic] = n
				p.outputs = append(p.outputs, n.Topic)
			}
		case n.Stateful():
			p.stateful[n.Name] = n
		}
	}
	sort.Strings(p.outputs)
	for _, g := range compiled.Groups {
		for _, in := range g.Inputs {
			p.consumed[in] = true
		}
		for _, l := range g.Graph.LookupTables() {
			p.lookups[l.Topic()] = true
		}
	}

	var errs []error
	for ci := range cases {
		c := &cases[ci]
		var ins []input
		for ri := range c.Inputs {
			in, err := p.encodeInput(&c.Inputs[ri])
			if err != nil {
				errs = append(errs, at(c.Inputs[ri].Pos, fmt.Sprintf("test case %q: input[%d]: %v", c.Name, ri, err)))
				continue
			}
			ins = append(ins, in)
		}
		p.inputs = append(p.inputs, ins)
		for ri, r := range c.Expect.Outputs {
			if p.sinks[r.Topic] == nil {
				errs = append(errs, at(r.Pos, fmt.Sprintf("test case %q: outputs[%d]: topology %s writes no topic %q (outputs: %s)",
					c.Name, ri, t.App, r.Topic, list(p.outputs))))
			}
		}
		for ti, tv := range c.Expect.Tables {
			if p.stateful[tv.Table] == nil {
				errs = append(errs, at(tv.Pos, fmt.Sprintf("test case %q: tables[%d]: topology %s has no table %q (tables: %s)",
					c.Name, ti, t.App, tv.Table, list(keys(p.stateful)))))
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return p, nil
}

func at(pos, msg string) error {
	if pos == "" {
		return errors.New(msg)
	}
	return fmt.Errorf("%s: %s", pos, msg)
}

func list(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

func keys(m map[string]*topology.Node) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (p *plan) encodeInput(r *Record) (input, error) {
	in := input{rec: r}
	n := p.sources[r.Topic]
	if n == nil {
		n = p.tables[r.Topic]
		in.table = n != nil
	}
	if n == nil {
		return in, fmt.Errorf("topology %s reads no stream or table %q (streams: %s; tables: %s)",
			p.top.App, r.Topic, list(keys(p.sources)), list(keys(p.tables)))
	}
	if r.Value == nil {
		if in.table {
			return in, errors.New("a value for a table needs a value (null cannot be stored)")
		}
		return in, nil
	}
	data, err := encode(n.Codec, r)
	if err != nil {
		return in, fmt.Errorf("value for %s: %w", r.Topic, err)
	}
	in.data = data
	if in.table {
		if in.value, err = n.Codec.Decode(data); err != nil {
			return in, fmt.Errorf("value for %s: %w", r.Topic, err)
		}
	}
	return in, nil
}

// codecKind names the codecs weft knows; "" for others.
func codecKind(c goka.Codec) string {
	switch c.(type) {
	case topology.JSON, *topology.JSON:
		return "json"
	case *codec.String:
		return "string"
	case *codec.Bytes:
		return "bytes"
	case *codec.Int64:
		return "int64"
	}
	return ""
}

// textOf is the text of a scalar value, for string and bytes topics.
func textOf(text *string, v any) (string, bool) {
	if text != nil {
		return *text, true
	}
	switch x := v.(type) {
	case string:
		return x, true
	case []byte:
		return string(x), true
	case map[string]any, []any, nil:
		return "", false
	}
	return fmt.Sprint(v), true
}

// encode encodes the value of r with c the way its YAML reads.
func encode(c goka.Codec, r *Record) ([]byte, error) {
	switch codecKind(c) {
	case "json":
		return c.Encode(canon(r.Value))
	case "string":
		s, ok := textOf(r.text, r.Value)
		if !ok {
			return nil, fmt.Errorf("a string topic takes a scalar, got %s", render(canon(r.Value)))
		}
		return c.Encode(s)
	case "bytes":
		s, ok := textOf(r.text, r.Value)
		if !ok {
			return nil, fmt.Errorf("a bytes topic takes a scalar, got %s", render(canon(r.Value)))
		}
		return c.Encode([]byte(s))
	case "int64":
		i, ok := canon(r.Value).(int64)
		if !ok {
			return nil, fmt.Errorf("an int64 topic takes an integer, got %s", render(canon(r.Value)))
		}
		return c.Encode(i)
	}
	data, err := c.Encode(r.Value)
	if err != nil {
		return nil, fmt.Errorf("codec %T cannot encode %s: %w", c, render(canon(r.Value)), err)
	}
	return data, nil
}

// expected is the canonical form of an expected value on a topic or table
// with codec c: text on string and bytes topics.
func expected(c goka.Codec, text *string, v any) any {
	switch codecKind(c) {
	case "string", "bytes":
		if s, ok := textOf(text, v); ok && v != nil {
			return s
		}
	}
	return canon(v)
}

// output is a record a topology wrote.
type output struct {
	key     string
	data    []byte
	headers goka.Headers
}

func (p *plan) run(ctx context.Context, ci int) (Result, error) {
	c := &p.cases[ci]
	res := Result{Case: c.Name}
	// The outputs of the case. The coalescers of suppress nodes cannot
	// reach Kafka here, and goka's tester cannot wait for the deferred
	// commits of their inputs: they commit each input at once and hand
	// their flushes to got (flushed after the last input).
	var gotMu sync.Mutex
	got := map[string][]output{}
	sink := processors.CoalesceSinkFunc(func(_ context.Context, topic goka.Stream, key string, value []byte, h goka.Headers) error {
		gotMu.Lock()
		defer gotMu.Unlock()
		got[string(topic)] = append(got[string(topic)], output{key: key, data: value, headers: h})
		return nil
	})
	compiled, err := topology.Compile(p.top, topology.WithCoalesceOptions(processors.CoalesceTo(sink), processors.CommitOnAdd()))
	if err != nil {
		return res, err
	}
	tt := &wt.T{}
	gt := tester.New(tt)

	pctx, cancel := context.WithCancel(ctx)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		procErrs []string
	)
	stop := func() {
		cancel()
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(stopTimeout):
			mu.Lock()
			procErrs = append(procErrs, fmt.Sprintf("processors did not stop within %s", stopTimeout))
			mu.Unlock()
		}
	}
	defer stop()

	// Trackers first: they read from the end of their topics.
	trackers := map[string]*tester.QueueTracker{}
	for _, topic := range p.outputs {
		trackers[topic] = gt.NewQueueTracker(topic)
	}
	var dlqs []*tester.QueueTracker
	for _, g := range compiled.Groups {
		opts := append([]goka.ProcessorOption{goka.WithTester(gt), goka.WithLogger(wt.Quiet{})}, g.GokaOptions...)
		proc, err := goka.NewProcessor(nil, g.Graph, opts...)
		if err != nil {
			return res, fmt.Errorf("group %s: %w", g.Name, err)
		}
		dlqs = append(dlqs, gt.NewQueueTracker(string(processors.DeadLetterTopic(g.Name))))
		wg.Add(1)
		go func(name goka.Group) {
			defer wg.Done()
			if err := proc.Run(pctx); err != nil && !errors.Is(err, context.Canceled) {
				mu.Lock()
				procErrs = append(procErrs, fmt.Sprintf("processor %s stopped: %v", name, err))
				mu.Unlock()
			}
		}(g.Name)
	}

	fed := make(chan error, 1)
	go func() { fed <- wt.Guard(func() { p.feed(gt, p.inputs[ci]) }) }()
	select {
	case err := <-fed:
		if err != nil {
			res.Failures = append(res.Failures, "feeding the inputs failed: "+err.Error())
		}
	case <-ctx.Done():
		return res, ctx.Err()
	}

	// Outputs: what the trackers saw, then the coalescers' flush.
	gotMu.Lock()
	for topic, tr := range trackers {
		for {
			h, k, v, ok := tr.NextRawWithHeaders()
			if !ok {
				break
			}
			got[topic] = append(got[topic], output{key: k, data: v, headers: h})
		}
	}
	gotMu.Unlock()
	var flushFailures []string
	for _, g := range compiled.Groups {
		for _, co := range g.Coalescers {
			if err := co.Flush(); err != nil {
				flushFailures = append(flushFailures, "suppress flush: "+err.Error())
			}
		}
	}

	if c.Expect.Outputs != nil { // nil: not checked
		res.Failures = append(res.Failures, p.compareOutputs(c.Expect.Outputs, got)...)
	}
	res.Failures = append(res.Failures, flushFailures...)
	for _, tv := range c.Expect.Tables {
		res.Failures = append(res.Failures, p.compareTable(gt, tv)...)
	}
	if c.Expect.Rejected != nil {
		res.Failures = append(res.Failures, compareRejected(*c.Expect.Rejected, dlqs)...)
	}

	stop()
	mu.Lock()
	res.Failures = append(res.Failures, procErrs...)
	mu.Unlock()
	for _, e := range tt.Errors() {
		res.Failures = append(res.Failures, "tester: "+e)
	}
	res.Passed = len(res.Failures) == 0
	return res, nil
}

// feed sends the inputs of a case, in order; Consume returns when every
// processor has handled everything.
func (p *plan) feed(gt *tester.Tester, inputs []input) {
	for _, in := range inputs {
		topic := in.rec.Topic
		if in.table {
			// A joined table: stored for the lookups of stream joins,
			// and a record of its topic for the table joins that read it.
			if p.lookups[topic] {
				gt.SetTableValue(goka.Table(topic), in.rec.Key, &processors.Stored{Value: in.value})
			}
			if p.consumed[topic] {
				// The group reads the topic with the envelope codec.
				gt.Consume(topic, in.rec.Key, &processors.Stored{Value: in.value})
			}
			continue
		}
		if !p.consumed[topic] {
			continue // nothing reads it
		}
		var opts []tester.EmitOption
		if len(in.rec.Headers) > 0 {
			h := goka.Headers{}
			for k, v := range in.rec.Headers {
				h[k] = []byte(v)
			}
			opts = append(opts, tester.WithHeaders(h))
		}
		if !in.rec.Timestamp.IsZero() {
			opts = append(opts, tester.WithTime(in.rec.Timestamp))
		}
		var msg any
		if in.data != nil {
			msg = in.data
		}
		gt.Consume(in.rec.Topic, in.rec.Key, msg, opts...)
	}
}

// decodeOutput decodes an output value with the sink's codec, canonical.
func decodeOutput(c goka.Codec, data []byte) (any, error) {
	if data == nil {
		return nil, nil
	}
	v, err := c.Decode(data)
	if err != nil {
		return nil, err
	}
	return canon(v), nil
}

func (p *plan) compareOutputs(want []Record, got map[string][]output) []string {
	byTopic := map[string][]Record{}
	var topics []string
	for _, r := range want {
		if _, ok := byTopic[r.Topic]; !ok {
			topics = append(topics, r.Topic)
		}
		byTopic[r.Topic] = append(byTopic[r.Topic], r)
	}
	if len(want) == 0 { // outputs: [] expects nothing anywhere
		topics = p.outputs
	}
	var fails []string
	for _, topic := range topics {
		w, g := byTopic[topic], got[topic]
		cd := p.sinks[topic].Codec
		if len(w) != len(g) {
			fails = append(fails, fmt.Sprintf("output %s: got %d records, want %d", topic, len(g), len(w)))
		}
		for i := 0; i < max(len(w), len(g)); i++ {
			name := fmt.Sprintf("output %s[%d]", topic, i)
			if i >= len(g) {
				fails = append(fails, fmt.Sprintf("%s: missing: want key %q, value %s",
					name, w[i].Key, render(expected(cd, w[i].text, w[i].Value))))
				continue
			}
			gv, err := decodeOutput(cd, g[i].data)
			if err != nil {
				fails = append(fails, fmt.Sprintf("%s: cannot decode the value %q: %v", name, g[i].data, err))
				continue
			}
			if i >= len(w) {
				fails = append(fails, fmt.Sprintf("%s: unexpected: key %q, value %s", name, g[i].key, render(gv)))
				continue
			}
			if w[i].Key != g[i].key {
				fails = append(fails, fmt.Sprintf("%s: key differs: want %q, got %q", name, w[i].Key, g[i].key))
			}
			if wv := expected(cd, w[i].text, w[i].Value); !equal(wv, gv) {
				fails = append(fails, name+": value differs:\n"+strings.Join(valueDiff(wv, gv), "\n"))
			}
			hs := make([]string, 0, len(w[i].Headers))
			for h := range w[i].Headers {
				hs = append(hs, h)
			}
			sort.Strings(hs)
			for _, h := range hs {
				gh, ok := g[i].headers[h]
				switch {
				case !ok:
					fails = append(fails, fmt.Sprintf("%s: header %s: want %q, got none", name, h, w[i].Headers[h]))
				case string(gh) != w[i].Headers[h]:
					fails = append(fails, fmt.Sprintf("%s: header %s: want %q, got %q", name, h, w[i].Headers[h], gh))
				}
			}
		}
	}
	return fails
}

func (p *plan) compareTable(gt *tester.Tester, tv TableValue) []string {
	n := p.stateful[tv.Table]
	name := fmt.Sprintf("table %s[%s]", tv.Table, tv.Key)
	var raw any
	if err := wt.Guard(func() { raw = gt.TableValue(goka.Table(p.top.TableTopic(n)), tv.Key) }); err != nil {
		return []string{fmt.Sprintf("%s: cannot read the table: %v", name, err)}
	}
	var got any
	has := false
	if st, ok := raw.(*processors.Stored); ok && st != nil {
		got, has = canon(st.Value), true
	}
	want := expected(n.Codec, nil, tv.Value)
	switch {
	case tv.Value == nil && !has:
		return nil
	case tv.Value == nil:
		return []string{fmt.Sprintf("%s: want no value, got %s", name, render(got))}
	case !has:
		return []string{fmt.Sprintf("%s: no value, want %s", name, render(want))}
	case !equal(want, got):
		return []string{name + ": value differs:\n" + strings.Join(valueDiff(want, got), "\n")}
	}
	return nil
}

// compareRejected counts the rejected records: the distinct records
// (topic, partition, offset) in the dead-letter topics. A record that
// several groups read and reject (a filter that runs in each group fed by
// its topic) counts once.
func compareRejected(want int, dlqs []*tester.QueueTracker) []string {
	seen := map[string]bool{}
	var lines []string
	for _, tr := range dlqs {
		for {
			h, k, _, ok := tr.NextRawWithHeaders()
			if !ok {
				break
			}
			id := fmt.Sprintf("%s/%s@%s", h[processors.HeaderErrorTopic], h[processors.HeaderErrorPartition], h[processors.HeaderErrorOffset])
			if seen[id] {
				continue
			}
			seen[id] = true
			lines = append(lines, fmt.Sprintf("  %s@%s key %q: %s", h[processors.HeaderErrorTopic], h[processors.HeaderErrorOffset], k, h[processors.HeaderErrorMessage]))
		}
	}
	if len(lines) == want {
		return nil
	}
	msg := fmt.Sprintf("rejected: got %d records, want %d", len(lines), want)
	if len(lines) > 0 {
		msg += ":\n" + strings.Join(lines, "\n")
	}
	return []string{msg}
}
