package main

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// changelog is a table topic read from its start to its end.
type changelog struct {
	latest  map[string][]byte // the newest value of each key (tombstones delete)
	records int64
	bytes   int64 // key + value + header bytes of all records
}

// readChangelog reads topic from its start offsets to the end offsets it
// has now, with a franz-go consumer.
func readChangelog(ctx context.Context, brokers []string, topic string) (changelog, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return changelog{}, err
	}
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		cl.Close()
		return changelog{}, fmt.Errorf("end offsets of %s: %w", topic, err)
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	cl.Close()
	if err != nil {
		return changelog{}, fmt.Errorf("start offsets of %s: %w", topic, err)
	}
	if err := ends.Error(); err != nil {
		return changelog{}, fmt.Errorf("end offsets of %s: %w", topic, err)
	}
	if len(ends) == 0 {
		return changelog{}, fmt.Errorf("topic %s does not exist", topic)
	}
	want := map[int32]int64{} // partition -> end offset still to reach
	parts := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		start := int64(0)
		if s, ok := starts.Lookup(o.Topic, o.Partition); ok {
			start = s.Offset
		}
		if o.Offset > start {
			want[o.Partition] = o.Offset
			parts[o.Partition] = kgo.NewOffset().At(start)
		}
	})
	out := changelog{latest: map[string][]byte{}}
	if len(want) == 0 {
		return out, nil
	}
	cl, err = kgo.NewClient(kgo.SeedBrokers(brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}))
	if err != nil {
		return changelog{}, err
	}
	defer cl.Close()
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return out, fmt.Errorf("read %s: %w", topic, err)
		}
		if errs := fs.Errors(); len(errs) > 0 {
			return out, fmt.Errorf("read %s[%d]: %w", errs[0].Topic, errs[0].Partition, errs[0].Err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			out.records++
			out.bytes += int64(len(r.Key) + len(r.Value))
			for _, h := range r.Headers {
				out.bytes += int64(len(h.Key) + len(h.Value))
			}
			if r.Value == nil {
				delete(out.latest, string(r.Key))
			} else {
				out.latest[string(r.Key)] = r.Value
			}
			if end, ok := want[r.Partition]; ok && r.Offset+1 >= end {
				delete(want, r.Partition)
			}
		})
	}
	return out, nil
}
