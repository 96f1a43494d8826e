package main

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// runRawConsume reads every record of the input with a franz-go consumer
// (no group, from the earliest offsets) and does nothing with it: the
// ceiling of what any engine can do on this broker.
func runRawConsume(ctx context.Context, s childSpec, timeout time.Duration) (childResult, error) {
	start := time.Now()
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.Brokers...), kgo.ConsumeTopics(s.Input),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return childResult{}, fmt.Errorf("raw-consume: %w", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var res childResult
	for res.Seen < int64(s.Events) {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("raw-consume: read %d of %d records: %w", res.Seen, s.Events, err)
		}
		if errs := fs.Errors(); len(errs) > 0 {
			return res, fmt.Errorf("raw-consume: fetch %s[%d]: %w", errs[0].Topic, errs[0].Partition, errs[0].Err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			res.Seen++
			res.Bytes += int64(len(r.Key) + len(r.Value))
		})
	}
	res.RunNanos = int64(time.Since(start))
	if res.Seen != int64(s.Events) {
		return res, fmt.Errorf("raw-consume: read %d records, the input has %d", res.Seen, s.Events)
	}
	return res, nil
}
