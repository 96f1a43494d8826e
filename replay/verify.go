package replay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/weftstream/weft/statestore"
)

// maxExamples is how many keys Verify names per kind of difference.
const maxExamples = 5

// TableDiff compares a rebuilt table with the live one.
type TableDiff struct {
	Live    string `json:"live"`
	Rebuilt string `json:"rebuilt"`
	Equal   int    `json:"equal"`
	// Different keys have other values; MissingInRebuilt keys are only in
	// the live table, MissingInLive only in the rebuilt one.
	Different        int      `json:"different"`
	MissingInRebuilt int      `json:"missing_in_rebuilt"`
	MissingInLive    int      `json:"missing_in_live"`
	DifferentKeys    []string `json:"different_examples,omitempty"`
	RebuiltMissing   []string `json:"missing_in_rebuilt_examples,omitempty"`
	LiveMissing      []string `json:"missing_in_live_examples,omitempty"`
}

// Same reports whether the tables hold the same keys and values.
func (d TableDiff) Same() bool {
	return d.Different == 0 && d.MissingInRebuilt == 0 && d.MissingInLive == 0
}

// Verify compares every table the plan rebuilt with the live table of the
// same pipeline: both table topics read from start to end, the last value
// per key, the user values (without the envelopes' trace metadata)
// compared byte for byte.
func Verify(ctx context.Context, opts []kgo.Opt, p *Plan) ([]TableDiff, error) {
	var diffs []TableDiff
	for _, rebuilt := range p.Tables {
		live := p.App + strings.TrimPrefix(rebuilt, p.Into)
		a, err := ReadTable(ctx, opts, live)
		if errors.Is(err, kerr.UnknownTopicOrPartition) {
			return nil, fmt.Errorf("the live table %s does not exist, so there is nothing to compare %s with (has %s run?)", live, rebuilt, p.App)
		}
		if err != nil {
			return nil, err
		}
		b, err := ReadTable(ctx, opts, rebuilt)
		if err != nil {
			return nil, err
		}
		diffs = append(diffs, compareTables(live, rebuilt, a, b))
	}
	return diffs, nil
}

func compareTables(live, rebuilt string, a, b map[string][]byte) TableDiff {
	d := TableDiff{Live: live, Rebuilt: rebuilt}
	keys := make([]string, 0, len(a)+len(b))
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	add := func(list *[]string, k string) {
		if len(*list) < maxExamples {
			*list = append(*list, k)
		}
	}
	for _, k := range keys {
		va, inA := a[k]
		vb, inB := b[k]
		switch {
		case !inB:
			d.MissingInRebuilt++
			add(&d.RebuiltMissing, k)
		case !inA:
			d.MissingInLive++
			add(&d.LiveMissing, k)
		case bytes.Equal(va, vb):
			d.Equal++
		default:
			d.Different++
			add(&d.DifferentKeys, k)
		}
	}
	return d
}

// ReadTable reads a table topic from its start to its current end and
// returns the user value of every key (the last record per key; a
// tombstone deletes it). opts reach the cluster (kafkaclient's
// FranzOptions).
func ReadTable(ctx context.Context, opts []kgo.Opt, topic string) (map[string][]byte, error) {
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("read table %s: %w", topic, err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("read table %s: %w", topic, err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("read table %s: %w", topic, err)
	}
	want, limit := map[int32]int64{}, map[int32]int64{}
	consume := map[string]map[int32]kgo.Offset{topic: {}}
	ends.Each(func(l kadm.ListedOffset) {
		if s, _ := starts.Lookup(topic, l.Partition); l.Offset > s.Offset {
			want[l.Partition], limit[l.Partition] = l.Offset, l.Offset
			consume[topic][l.Partition] = kgo.NewOffset().At(s.Offset)
		}
	})
	values := map[string][]byte{}
	if len(want) == 0 {
		return values, nil
	}
	cl.AddConsumePartitions(consume)
	for len(want) > 0 {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("read table %s: %w", topic, err)
		}
		var ferr error
		fetches.EachError(func(_ string, _ int32, err error) { ferr = err })
		if ferr != nil {
			return nil, fmt.Errorf("read table %s: %w", topic, ferr)
		}
		var derr error
		fetches.EachRecord(func(r *kgo.Record) {
			if r.Offset+1 >= limit[r.Partition] {
				delete(want, r.Partition)
			}
			if r.Offset >= limit[r.Partition] {
				return
			}
			if r.Value == nil {
				delete(values, string(r.Key))
				return
			}
			env, err := statestore.DecodeEnvelope(r.Value)
			if err != nil {
				derr = fmt.Errorf("read table %s: %s/%d@%d: %w", topic, r.Topic, r.Partition, r.Offset, err)
				return
			}
			if env.Value == nil {
				delete(values, string(r.Key))
				return
			}
			values[string(r.Key)] = env.Value
		})
		if derr != nil {
			return nil, derr
		}
	}
	return values, nil
}

// decodeUser returns the user value of an encoded table value.
func decodeUser(data []byte) ([]byte, error) {
	env, err := statestore.DecodeEnvelope(data)
	if err != nil {
		return nil, err
	}
	return env.Value, nil
}
