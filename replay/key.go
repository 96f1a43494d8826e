package replay

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/tester"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	wt "github.com/weftstream/weft/internal/tester"
	"github.com/weftstream/weft/processors"
	"github.com/weftstream/weft/topofile"
	"github.com/weftstream/weft/topology"
)

// KeySpec asks for the state of one key at a time, folded from the log
// (weft replay --key --until-time).
type KeySpec struct {
	File     *topofile.File
	Pipeline string // the table's pipeline; may be empty when the file has one table
	Key      string
	Until    time.Time
}

// KeyRecord is an input record of the key that the fold read.
type KeyRecord struct {
	Topic     string    `json:"topic"`
	Partition int32     `json:"partition"`
	Offset    int64     `json:"offset"`
	Time      time.Time `json:"time"`
}

// KeyState is the value a key had at a time, and what made it.
type KeyState struct {
	Table string    `json:"table"`
	Key   string    `json:"key"`
	Until time.Time `json:"until"`
	// Found is false when the key had no value then.
	Found bool `json:"found"`
	// Value is the value encoded with the table's codec (JSON for json
	// tables).
	Value []byte `json:"-"`
	// Records are the key's records up to Until, folded in log order.
	Records []KeyRecord `json:"records"`
	// Read is how many records of the partition were read to find them;
	// Partition is the only partition read.
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Read      int64  `json:"read"`
	// EventTime says whether Until was compared with the event time the
	// topology extracts (its timestamp expression) instead of the record
	// timestamp.
	EventTime bool `json:"event_time"`
}

// KeyAt folds the records of spec.Key up to spec.Until with the
// pipeline's own steps, on goka's in-memory tester, and returns the value
// the key's table had then. Only the key's partition of the pipeline's
// input topic is read, from its start to its current end. The pipeline
// must read its source topic with the key it keeps (no group_by or other
// re-keying before the table), and not look up other tables of the
// topology.
func KeyAt(ctx context.Context, opts []kgo.Opt, spec KeySpec) (*KeyState, error) {
	c, err := topology.Compile(spec.File.Topology)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", spec.File.Name, err)
	}
	pipeline := spec.Pipeline
	if pipeline == "" {
		tables := tablePipelines(spec.File)
		if len(tables) != 1 {
			return nil, fmt.Errorf("--pipeline: %s has %d tables (%s): name the one to read", spec.File.Name, len(tables), strings.Join(tables, ", "))
		}
		pipeline = tables[0]
	}
	sel, err := selectGroups(spec.File, c, []string{pipeline})
	if err != nil {
		return nil, err
	}
	name := pipelineGroup(c.Topology.App, pipeline)
	g := sel.byName[name]
	if len(sel.groups) != 1 || g.Table == "" || len(g.Inputs) != 1 || !sel.external[g.Inputs[0]] {
		return nil, fmt.Errorf("--key: pipeline %q does not read its table's key straight from a source topic (it re-keys, joins tables or reads another pipeline's table), so the records of a key are not in one partition of one topic", pipeline)
	}
	var src *topology.Node
	for _, n := range c.Topology.Nodes {
		if n.Kind == topology.KindSource && n.Topic == g.Inputs[0] {
			src = n
		}
	}
	if src == nil {
		return nil, fmt.Errorf("pipeline %q: no source reads %s", pipeline, g.Inputs[0])
	}

	st := &KeyState{Table: g.Table, Key: spec.Key, Until: spec.Until, Topic: g.Inputs[0], EventTime: src.Timestamp != nil}
	recs, err := readKey(ctx, opts, st)
	if err != nil {
		return nil, err
	}
	var keep []*kgo.Record
	for _, r := range recs {
		at := r.Timestamp
		if src.Timestamp != nil && r.Value != nil {
			v, err := src.Codec.Decode(r.Value)
			if err == nil {
				at, err = src.Timestamp(spec.Key, v)
			}
			if err != nil {
				continue // the live processor dead-letters it too
			}
		}
		if at.After(spec.Until) {
			continue
		}
		keep = append(keep, r)
		st.Records = append(st.Records, KeyRecord{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Time: at})
	}
	value, found, err := foldOnTester(ctx, g, keep)
	if err != nil {
		return nil, fmt.Errorf("fold the records of %q with pipeline %s: %w", spec.Key, pipeline, err)
	}
	st.Value, st.Found = value, found
	return st, nil
}

// readKey reads the key's partition of st.Topic from its start to its
// current end and returns the key's records.
func readKey(ctx context.Context, opts []kgo.Opt, st *KeyState) ([]*kgo.Record, error) {
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	details, err := adm.ListTopics(ctx, st.Topic)
	if err != nil {
		return nil, fmt.Errorf("list topic %s: %w", st.Topic, err)
	}
	d, ok := details[st.Topic]
	if !ok || d.Err != nil || len(d.Partitions) == 0 {
		return nil, fmt.Errorf("input topic %s does not exist", st.Topic)
	}
	st.Partition = KeyPartition(st.Key, int32(len(d.Partitions)))
	starts, err := adm.ListStartOffsets(ctx, st.Topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("list the start offsets of %s: %w", st.Topic, err)
	}
	ends, err := adm.ListEndOffsets(ctx, st.Topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("list the end offsets of %s: %w", st.Topic, err)
	}
	s, _ := starts.Lookup(st.Topic, st.Partition)
	e, _ := ends.Lookup(st.Topic, st.Partition)
	if e.Offset <= s.Offset {
		return nil, nil
	}
	cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{st.Topic: {st.Partition: kgo.NewOffset().At(s.Offset)}})
	var out []*kgo.Record
	for next := s.Offset; next < e.Offset; {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var ferr error
		fetches.EachError(func(_ string, _ int32, err error) { ferr = err })
		if ferr != nil {
			return nil, fmt.Errorf("read %s/%d: %w", st.Topic, st.Partition, ferr)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			if r.Offset >= e.Offset {
				next = e.Offset
				return
			}
			next = r.Offset + 1
			st.Read++
			if string(r.Key) == st.Key {
				out = append(out, r)
			}
		})
	}
	return out, nil
}

// KeyPartition is the partition goka's partitioner (sarama's hash
// partitioner with fnv-1a) puts key in among n.
func KeyPartition(key string, n int32) int32 {
	h := uint32(2166136261)
	for i := 0; i < len(key); i++ {
		h ^= uint32(key[i])
		h *= 16777619
	}
	p := int32(h) % n
	if p < 0 {
		p = -p
	}
	return p
}

// foldOnTester runs group g on goka's tester, feeds it recs in order and
// returns the table value of their key (encoded with the table codec).
func foldOnTester(ctx context.Context, g *topology.Group, recs []*kgo.Record) (value []byte, found bool, err error) {
	tt := &wt.T{}
	gt := tester.New(tt)
	proc, err := goka.NewProcessor(nil, g.Graph, append([]goka.ProcessorOption{goka.WithTester(gt), goka.WithLogger(wt.Quiet{})}, g.GokaOptions...)...)
	if err != nil {
		return nil, false, fmt.Errorf("group %s: %w", g.Name, err)
	}
	pctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- proc.Run(pctx) }()
	defer func() {
		cancel()
		if perr := <-done; perr != nil && !errors.Is(perr, context.Canceled) && err == nil {
			err = perr
		}
	}()
	var key string
	if err := wt.Guard(func() {
		for _, r := range recs {
			key = string(r.Key)
			h := goka.Headers{}
			for _, hd := range r.Headers {
				h[hd.Key] = hd.Value
			}
			var msg any
			if r.Value != nil {
				msg = r.Value
			}
			gt.Consume(r.Topic, key, msg, tester.WithHeaders(h), tester.WithTime(r.Timestamp))
		}
	}); err != nil {
		return nil, false, err
	}
	if len(recs) == 0 {
		return nil, false, nil
	}
	var raw any
	if err := wt.Guard(func() { raw = gt.TableValue(goka.GroupTable(g.Name), key) }); err != nil {
		return nil, false, err
	}
	if errs := tt.Errors(); len(errs) > 0 {
		return nil, false, errors.New(strings.Join(errs, "; "))
	}
	s, ok := raw.(*processors.Stored)
	if !ok || s == nil || s.Value == nil {
		return nil, false, nil
	}
	data, err := g.Graph.GroupTable().Codec().Encode(s)
	if err != nil {
		return nil, false, err
	}
	env, err := decodeUser(data)
	if err != nil {
		return nil, false, err
	}
	return env, true, nil
}
