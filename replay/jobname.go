package replay

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/weftstream/weft/statestore"
)

// A replay job's name is written into every version it makes
// (statestore.Envelope.ReplayJob), so that the lineage of a rebuilt or
// rewound value names the job that wrote it and a live value names none.
// Kafka Streams' reset tool names nothing but the application id, and
// Flink names a savepoint by the job id and a random suffix; a weft job is
// named, unless --job-name says otherwise, by its mode, the application
// it writes, the pipelines it runs when they are chosen, and the time it
// started: into:bank-v2@20261202T023100Z, in-place:bank/totals@....

// jobTimeLayout is the start time in a job's name (UTC, to the second).
const jobTimeLayout = "20060102T150405Z"

// JobName is the name of a job of mode ("into" or "in-place") writing
// app's tables, for pipelines (empty: all), started at start.
func JobName(mode, app string, pipelines []string, start time.Time) string {
	var b strings.Builder
	b.WriteString(mode)
	b.WriteByte(':')
	b.WriteString(app)
	if len(pipelines) > 0 {
		b.WriteByte('/')
		b.WriteString(strings.Join(pipelines, "+"))
	}
	b.WriteByte('@')
	b.WriteString(start.UTC().Format(jobTimeLayout))
	name := b.String()
	if len(name) > statestore.MaxReplayJobLen {
		// Many long pipeline names: the mode, the app and the time stay.
		name = mode + ":" + app + "@" + start.UTC().Format(jobTimeLayout)
		if len(name) > statestore.MaxReplayJobLen {
			name = name[len(name)-statestore.MaxReplayJobLen:]
		}
	}
	return name
}

// CheckJobName reports what is wrong with a job name given by the user
// (--job-name), or nil: it is stored in every version the job writes, so
// it is bounded and printable.
func CheckJobName(name string) error {
	if name == "" {
		return fmt.Errorf("give a name, or leave the flag out for one made of the mode, the application and the start time")
	}
	if len(name) > statestore.MaxReplayJobLen {
		return fmt.Errorf("%d bytes is too long: give at most %d", len(name), statestore.MaxReplayJobLen)
	}
	for _, r := range name {
		if r <= ' ' || r == 0x7f || r == '\uFFFD' {
			return fmt.Errorf("%q has a space or a control character: give letters, digits and punctuation such as - _ . : @ /", name)
		}
	}
	return nil
}

// jobName is the given name, or the one JobName makes.
func jobName(given, mode, app string, pipelines []string, start time.Time) string {
	if given != "" {
		return given
	}
	return JobName(mode, app, pipelines, start)
}

// ContinueJob names a resuming job (Resume, without Restart or a given
// Job) as the run it continues: the name in the last version of its
// tables, so that every version of a rebuild names one job however many
// runs it took. opts reach the cluster. A job whose earlier run wrote no
// version keeps the name of this run.
func (p *Plan) ContinueJob(ctx context.Context, opts []kgo.Opt) error {
	if !p.Resume || p.Restart || p.spec.Job != "" {
		return nil
	}
	for _, table := range p.Tables {
		name, err := lastJob(ctx, opts, table)
		if err != nil {
			return err
		}
		if name == "" {
			continue
		}
		if name != p.Job {
			p.Notes = slices.DeleteFunc(p.Notes, func(n string) bool { return strings.HasPrefix(n, resumedNameNote) })
			p.Notes = append(p.Notes, fmt.Sprintf("resumes job %s (the name in the versions of the earlier run)", name))
			p.Job = name
		}
		return nil
	}
	return nil
}

// resumedNameNote starts the plan's note that a resumed run is named for
// its own start.
const resumedNameNote = "the versions this run writes name it"

// lastJob is the replay job named by the last record of the partitions of
// table, the first that names one ("" none: no records, tombstones, or
// versions of live processing).
func lastJob(ctx context.Context, opts []kgo.Opt, table string) (string, error) {
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return "", fmt.Errorf("read the last versions of %s: %w", table, err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	starts, err := adm.ListStartOffsets(ctx, table)
	if err == nil {
		err = starts.Error()
	}
	var ends kadm.ListedOffsets
	if err == nil {
		ends, err = adm.ListEndOffsets(ctx, table)
	}
	if err == nil {
		err = ends.Error()
	}
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read the last versions of %s: %w", table, err)
	}
	last := map[int32]int64{}
	consume := map[string]map[int32]kgo.Offset{table: {}}
	ends.Each(func(l kadm.ListedOffset) {
		if s, _ := starts.Lookup(table, l.Partition); l.Offset > s.Offset {
			last[l.Partition] = l.Offset - 1
			consume[table][l.Partition] = kgo.NewOffset().At(l.Offset - 1)
		}
	})
	if len(last) == 0 {
		return "", nil
	}
	cl.AddConsumePartitions(consume)
	for len(last) > 0 {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return "", fmt.Errorf("read the last versions of %s: %w", table, err)
		}
		var ferr error
		fetches.EachError(func(_ string, _ int32, err error) { ferr = err })
		if ferr != nil {
			return "", fmt.Errorf("read the last versions of %s: %w", table, ferr)
		}
		name := ""
		fetches.EachRecord(func(r *kgo.Record) {
			if at, ok := last[r.Partition]; !ok || r.Offset < at {
				return
			}
			delete(last, r.Partition)
			if env, err := statestore.DecodeEnvelope(r.Value); err == nil && name == "" {
				name = env.ReplayJob
			}
		})
		if name != "" {
			return name, nil
		}
	}
	return "", nil
}
