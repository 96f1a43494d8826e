package replay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/weftstream/weft/kafkaclient"
	"github.com/weftstream/weft/processors"
	"github.com/weftstream/weft/topology"
	"go.opentelemetry.io/otel/trace"
)

// Options configure Execute.
type Options struct {
	Kafka    kafkaclient.Config
	StateDir string
	Logger   *slog.Logger
	// TracerProvider traces the replayed records; give it the replay's own
	// sampler (its root spans are sampled by it). nil: spans not exported.
	TracerProvider trace.TracerProvider
	// StopOnRejection stops the job on the first bad record (on_error:
	// stop); otherwise bad records go to the job's dead-letter topics.
	StopOnRejection bool
	// Progress, if set, is called every PollInterval with the records the
	// job has read of its inputs and the total it will read.
	Progress func(done, total int64)
	// PollInterval is how often the job checks its groups' committed
	// offsets; default 500ms.
	PollInterval time.Duration
}

// GroupSummary is what one group of a job did.
type GroupSummary struct {
	Group     string `json:"group"`
	Processed int64  `json:"processed"`
	Rejected  int64  `json:"rejected"`
	// Skipped counts records an earlier run had applied already.
	Skipped int64 `json:"skipped"`
}

// Summary is the outcome of Execute.
type Summary struct {
	Plan    *Plan          `json:"plan"`
	Groups  []GroupSummary `json:"groups"`
	Records int64          `json:"records"` // input records read by this run
	Seconds float64        `json:"seconds"`
	Rate    float64        `json:"records_per_second"`
}

// Execute runs the plan: it sets the committed offsets of the job's
// groups to the planned starts (unless it resumes), runs the groups as
// weft run does, and stops them once they are done. The termination rule:
// a group that reads external topics is done when its committed offset on
// every partition of them reaches the planned end; a group that reads
// topics of the job's own groups (repartition or table topics) is done
// when every group writing them is done and its committed offsets reach
// their end offsets taken at that moment (a writer commits a record only
// after the records it emitted for it are acknowledged, so nothing written
// for the planned range comes later). When every group is done the job
// stops them cleanly (commit, close) and returns.
func Execute(ctx context.Context, adm *kadm.Client, p *Plan, o Options) (*Summary, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 500 * time.Millisecond
	}
	names := make([]string, len(p.sel.groups))
	for i, g := range p.sel.groups {
		names[i] = string(g.Name)
	}
	if err := refuseActive(ctx, adm, names, fmt.Sprintf("another job with --into %s is running (the member of a killed job leaves the group %s after it)", p.Into, kafkaclient.SessionTimeout)); err != nil {
		return nil, err
	}
	if p.Restart {
		if err := clearGroups(ctx, adm, o.Logger, o.StateDir, names, p.InternalTopics); err != nil {
			return nil, err
		}
	}
	if err := commitStarts(ctx, adm, p); err != nil {
		return nil, err
	}

	ropts := []processors.Option{processors.WithKafka(o.Kafka), processors.WithLogger(o.Logger),
		processors.WithReplayJob(p.Job, p.bound())}
	if p.skip != nil {
		ropts = append(ropts, processors.WithReplaySkip(p.skip))
	}
	if o.TracerProvider != nil {
		ropts = append(ropts, processors.WithTracerProvider(o.TracerProvider))
	}
	if o.StopOnRejection {
		ropts = append(ropts, processors.StopOnRejection())
	}
	c, err := topology.Compile(renamed(p.spec.File, p.Into), topology.WithProcessorOptions(ropts...))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.File, err)
	}
	var groups []*topology.Group
	for _, g := range c.Groups {
		if slices.Contains(names, string(g.Name)) {
			groups = append(groups, g)
		}
	}
	k := o.Kafka
	k.StartOffset = kafkaclient.StartEarliest // the job's internal topics are read from their start
	// The record cache as weft run sets it from the topology file.
	var extra []processors.Option
	if f := p.spec.File; f.CacheMaxBytes != nil || f.CommitInterval > 0 {
		extra = append(extra, processors.WithRecordCache(f.RecordCache()))
	}
	procs, err := topology.NewProcessors(ctx, o.Logger, k, o.StateDir, groups, extra...)
	if err != nil {
		return nil, err
	}
	o.Logger.Info("replay job started", "job", p.Job, "into", p.Into, "records", p.Remaining)
	start := time.Now()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- processors.RunAll(runCtx, procs...) }()

	w := &watcher{adm: adm, p: p, finished: map[string]bool{}, ends: map[string]map[string]map[int32]int64{}}
	tick := time.NewTicker(o.PollInterval)
	defer tick.Stop()
	var read int64
	for {
		all, n, total, err := w.check(ctx)
		if err != nil && ctx.Err() == nil {
			o.Logger.Warn("replay: checking progress failed", "error", err)
		}
		if err == nil {
			read = n
			if o.Progress != nil {
				o.Progress(n, total)
			}
		}
		// Stopping processors that are still starting up fails them: wait
		// until every one runs (a resumed job may be done at once).
		if all && ctx.Err() == nil && running(procs) {
			break
		}
		select {
		case err := <-done:
			if err == nil {
				err = ctx.Err()
			}
			if err == nil {
				err = errors.New("the processors stopped before the job was done")
			}
			return nil, fmt.Errorf("replay into %s: %w", p.Into, err)
		case <-ctx.Done():
			stop()
			<-done
			// A stopped job still records that it applied nothing past its end.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if err := rewindPastEnd(rctx, adm, p); err != nil {
				o.Logger.Warn("replay: resetting the offsets past the end failed", "error", err)
			}
			return nil, fmt.Errorf("replay into %s stopped before it was done (run it again to resume): %w", p.Into, ctx.Err())
		case <-tick.C:
		}
	}
	stop()
	if err := <-done; err != nil {
		return nil, fmt.Errorf("replay into %s: %w", p.Into, err)
	}
	if err := rewindPastEnd(ctx, adm, p); err != nil {
		return nil, err
	}
	elapsed := time.Since(start)
	s := &Summary{Plan: p, Records: read - (p.Records - p.Remaining), Seconds: elapsed.Seconds()}
	if s.Records < 0 {
		s.Records = 0
	}
	if elapsed > 0 {
		s.Rate = float64(s.Records) / elapsed.Seconds()
	}
	for _, g := range groups {
		t := g.Runtime.Tally()
		s.Groups = append(s.Groups, GroupSummary{Group: string(g.Name), Processed: t.Processed(), Rejected: t.Rejected(), Skipped: t.Replayed()})
	}
	o.Logger.Info("replay job done", "job", p.Job, "into", p.Into, "records", s.Records, "seconds", s.Seconds)
	return s, nil
}

// bound is the replay's end for bounded jobs (nil: unbounded).
func (p *Plan) bound() processors.ReplayBound {
	if !p.Bounded {
		return nil
	}
	ends := map[string]map[int32]int64{}
	for _, r := range p.Partitions {
		if ends[r.Topic] == nil {
			ends[r.Topic] = map[int32]int64{}
		}
		ends[r.Topic][r.Partition] = r.To
	}
	return func(topic string, partition int32, offset int64) bool {
		end, ok := ends[topic][partition]
		return ok && offset >= end
	}
}

// commitStarts commits the planned start offsets for the groups that read
// the external inputs, on every partition that has no committed offset of
// an earlier run.
func commitStarts(ctx context.Context, adm *kadm.Client, p *Plan) error {
	for _, g := range p.sel.groups {
		var offs kadm.Offsets
		for _, r := range p.Partitions {
			if !slices.Contains(p.sel.inputs[string(g.Name)], r.Topic) || (r.Done != nil && !p.Restart) {
				continue
			}
			offs.Add(kadm.Offset{Topic: r.Topic, Partition: r.Partition, At: r.From, LeaderEpoch: -1})
		}
		if len(offs) == 0 {
			continue
		}
		resp, err := adm.CommitOffsets(ctx, string(g.Name), offs)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			return fmt.Errorf("set the start offsets of group %s: %w", g.Name, err)
		}
	}
	return nil
}

// refuseActive fails if any of groups has members, naming them.
func refuseActive(ctx context.Context, adm *kadm.Client, groups []string, why string) error {
	described, err := adm.DescribeGroups(ctx, groups...)
	if err != nil {
		return fmt.Errorf("describe groups %v: %w", groups, err)
	}
	var busy []string
	for _, name := range groups {
		d, ok := described[name]
		if !ok || d.Err != nil && !errors.Is(d.Err, kerr.GroupIDNotFound) || len(d.Members) == 0 {
			continue
		}
		members := make([]string, len(d.Members))
		for i, m := range d.Members {
			members[i] = fmt.Sprintf("%s (client %s on %s)", m.MemberID, m.ClientID, m.ClientHost)
		}
		busy = append(busy, fmt.Sprintf("group %s has active members %s", name, strings.Join(members, ", ")))
	}
	if len(busy) > 0 {
		return fmt.Errorf("%s: %s; stop them first", strings.Join(busy, "; "), why)
	}
	return nil
}

// watcher applies Execute's termination rule.
type watcher struct {
	adm      *kadm.Client
	p        *Plan
	finished map[string]bool
	// ends are the end offsets of the internal inputs of a group, taken
	// when the groups writing them finished.
	ends map[string]map[string]map[int32]int64
}

// check updates which groups are done; it returns whether all are, and
// the records read of the external inputs so far and in total.
func (w *watcher) check(ctx context.Context) (all bool, read, total int64, err error) {
	sel := w.p.sel
	ordered := slices.Clone(sel.groups)
	slices.SortStableFunc(ordered, func(a, b *topology.Group) int { return sel.level[string(a.Name)] - sel.level[string(b.Name)] })
	all = true
	// The progress of a partition that several groups read is that of the
	// slowest of them.
	progress := make([]int64, len(w.p.Partitions))
	for i, r := range w.p.Partitions {
		progress[i] = r.To
		total += r.Records
	}
	defer func() {
		for i, r := range w.p.Partitions {
			read += progress[i] - r.From
		}
	}()
	for _, g := range ordered {
		name := string(g.Name)
		committed, err := fetchCommitted(ctx, w.adm, name)
		if err != nil {
			return false, 0, 0, err
		}
		at := func(topic string, part int32) (int64, bool) {
			o, ok := committed.Lookup(topic, part)
			if !ok || o.Err != nil || o.At < 0 {
				return 0, false
			}
			return o.At, true
		}
		ok := true
		for i, r := range w.p.Partitions {
			if !slices.Contains(sel.inputs[name], r.Topic) {
				continue
			}
			c, has := at(r.Topic, r.Partition)
			if !has {
				c = r.From
			}
			progress[i] = min(progress[i], max(c, r.From))
			if c < r.To {
				ok = false
			}
		}
		if w.finished[name] {
			continue
		}
		var internal []string
		for _, t := range sel.inputs[name] {
			if !sel.external[t] {
				internal = append(internal, t)
			}
		}
		if len(internal) > 0 {
			ready := true
			for d := range sel.deps[name] {
				ready = ready && w.finished[d]
			}
			if !ready {
				all = false
				continue
			}
			if w.ends[name] == nil {
				ends, err := w.adm.ListEndOffsets(ctx, internal...)
				if err == nil {
					err = ends.Error()
				}
				if err != nil {
					return false, 0, 0, fmt.Errorf("list the end offsets of %v: %w", internal, err)
				}
				m := map[string]map[int32]int64{}
				ends.Each(func(l kadm.ListedOffset) {
					if m[l.Topic] == nil {
						m[l.Topic] = map[int32]int64{}
					}
					m[l.Topic][l.Partition] = l.Offset
				})
				w.ends[name] = m
			}
			for topic, parts := range w.ends[name] {
				for part, end := range parts {
					if c, _ := at(topic, part); c < end {
						ok = false
					}
				}
			}
		}
		if ok {
			w.finished[name] = true
		} else {
			all = false
		}
	}
	return all, read, total, nil
}

// running reports whether every processor has recovered its tables and
// is processing.
func running(procs []*processors.Processor) bool {
	for _, p := range procs {
		if !p.Goka().Recovered() {
			return false
		}
	}
	return true
}

// rewindPastEnd commits the planned end for the partitions where a
// bounded job's groups committed past it: the records after the end were
// skipped, not applied, so a later job with the same name (a later end, or
// none) must still read them.
func rewindPastEnd(ctx context.Context, adm *kadm.Client, p *Plan) error {
	if !p.Bounded {
		return nil
	}
	for _, g := range p.sel.groups {
		committed, err := fetchCommitted(ctx, adm, string(g.Name))
		if err != nil {
			return err
		}
		var offs kadm.Offsets
		for _, r := range p.Partitions {
			if !slices.Contains(p.sel.inputs[string(g.Name)], r.Topic) {
				continue
			}
			if c, ok := committed.Lookup(r.Topic, r.Partition); ok && c.Err == nil && c.At > r.To {
				offs.Add(kadm.Offset{Topic: r.Topic, Partition: r.Partition, At: r.To, LeaderEpoch: -1})
			}
		}
		if len(offs) == 0 {
			continue
		}
		resp, err := adm.CommitOffsets(ctx, string(g.Name), offs)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			return fmt.Errorf("set the offsets of group %s back to the job's end: %w", g.Name, err)
		}
	}
	return nil
}
