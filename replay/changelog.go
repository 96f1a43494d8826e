package replay

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// eachChangelogRecord reads topic from its start to the end offsets it has
// now, partition by partition in offset order, and calls fn with every
// record. A topic that does not exist has no records.
func eachChangelogRecord(ctx context.Context, opts []kgo.Opt, topic string, fn func(*kgo.Record) error) error {
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("read %s: %w", topic, err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	details, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return fmt.Errorf("read %s: %w", topic, err)
	}
	if d, ok := details[topic]; !ok || d.Err != nil {
		return nil
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", topic, err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", topic, err)
	}
	limit := map[int32]int64{}
	consume := map[string]map[int32]kgo.Offset{topic: {}}
	ends.Each(func(l kadm.ListedOffset) {
		if s, _ := starts.Lookup(topic, l.Partition); l.Offset > s.Offset {
			limit[l.Partition] = l.Offset
			consume[topic][l.Partition] = kgo.NewOffset().At(s.Offset)
		}
	})
	if len(limit) == 0 {
		return nil
	}
	cl.AddConsumePartitions(consume)
	for len(limit) > 0 {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("read %s: %w", topic, err)
		}
		var ferr error
		fetches.EachError(func(_ string, _ int32, err error) { ferr = err })
		if ferr != nil {
			return fmt.Errorf("read %s: %w", topic, ferr)
		}
		var cerr error
		fetches.EachRecord(func(r *kgo.Record) {
			end, ok := limit[r.Partition]
			if cerr != nil || !ok || r.Offset >= end {
				return
			}
			if r.Offset+1 >= end {
				delete(limit, r.Partition)
			}
			cerr = fn(r)
		})
		if cerr != nil {
			return cerr
		}
	}
	return nil
}
