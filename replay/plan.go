package replay

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/weftstream/weft/processors"
	"github.com/weftstream/weft/topofile"
	"github.com/weftstream/weft/topology"
)

// From says where a job starts reading its input topics.
type From struct {
	// Offset, when set, is the offset to start at in every partition
	// (clamped to the partition's log).
	Offset *int64
	// Time, when not zero, starts every partition at its first record
	// with a timestamp at or after it.
	Time time.Time
	// Offsets, when set, are the offsets to start at per partition
	// (--from-file, --from-offset P=N,...; clamped to the log); the
	// partitions they do not name start at the earliest offset.
	Offsets PartitionOffsets
	// Neither: the earliest offset still in the log.
}

// Until says where a job stops: at the end offsets of the inputs when the
// plan is made (neither set), before offset Offset (exclusive) or after the
// last record with a timestamp at or before Time. With Offset or Time,
// records past the end are skipped if the job sees them.
type Until struct {
	Offset *int64
	Time   time.Time
}

func (u Until) bounded() bool { return u.Offset != nil || !u.Time.IsZero() }

// Spec describes a rebuild job (weft replay --into).
type Spec struct {
	// File is the topology file; Into the application name of the
	// rebuild (its groups are <Into>-<pipeline>, its tables
	// <Into>-<pipeline>-table).
	File *topofile.File
	Into string
	// Pipelines are the pipelines to rebuild (with the groups they read
	// from); empty: all.
	Pipelines []string
	From      From
	Until     Until
	// Restart discards the progress (committed offsets, tables, local
	// state) of an earlier run with the same Into and starts again.
	Restart bool
	// Job names the job in every version it writes (--job-name); ""
	// names it JobName("into", Into, Pipelines, the time the plan is made).
	Job string
}

// PartitionPlan is the range a job reads of one input partition.
type PartitionPlan struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// From and To are the first offset and the end (exclusive) of the
	// range; Records = To - From.
	From    int64 `json:"from"`
	To      int64 `json:"to"`
	Records int64 `json:"records"`
	// LogStart and LogEnd are the partition's log when the plan was made.
	LogStart int64 `json:"log_start"`
	LogEnd   int64 `json:"log_end"`
	// Target is where an in-place job rewinds the tables to (From may be
	// earlier, see InPlacePlan).
	Target *int64 `json:"target,omitempty"`
	// Done is how far an earlier run of the job got (its committed
	// offset), when it resumes.
	Done *int64 `json:"done,omitempty"`
	// Note says why From or To differ from what was asked (clamped to
	// the log, a time before the first record).
	Note string `json:"note,omitempty"`
}

// GroupPlan is one consumer group a job runs.
type GroupPlan struct {
	Group string   `json:"group"`
	Input []string `json:"input"`
	Table string   `json:"table,omitempty"`
	// Level is 0 for a group that reads only external topics (bounded by
	// the planned ranges), else 1 + the level of the groups it reads.
	Level int `json:"level"`
}

// Plan is what a job will do; making it changes nothing.
type Plan struct {
	File string `json:"file"`
	App  string `json:"app"`
	Into string `json:"into"`
	// Job is the name every version the job writes carries (its lineage
	// names it: statestore.Envelope.ReplayJob).
	Job string `json:"job"`
	// Resume is true when an earlier run with the same Into left
	// committed offsets, which this run continues from.
	Resume  bool `json:"resume"`
	Restart bool `json:"restart"`
	// Bounded is true when records past the planned ends are skipped
	// (--until-offset, --until-time).
	Bounded    bool            `json:"bounded"`
	Groups     []GroupPlan     `json:"groups"`
	Partitions []PartitionPlan `json:"partitions"`
	Records    int64           `json:"records"`
	// Remaining is what is left to read when resuming (Records otherwise).
	Remaining int64 `json:"remaining"`
	// Tables and InternalTopics are created by the job; DeadLetters are
	// its groups' dead-letter topics; Outputs the external topics its
	// `to` steps write to again.
	Tables         []string `json:"tables"`
	InternalTopics []string `json:"internal_topics"`
	DeadLetters    []string `json:"dead_letter_topics"`
	Outputs        []string `json:"outputs,omitempty"`
	Notes          []string `json:"notes,omitempty"`

	compiled *topology.Compiled
	skip     processors.ReplaySkip // an in-place job's old repartition records to skip (nil: none)
	sel      *selection
	spec     Spec
}

// renamed returns the topology of f under application name app.
func renamed(f *topofile.File, app string) *topology.Topology {
	t := *f.Topology
	t.App = app
	return &t
}

// MakePlan plans the rebuild spec describes, reading offsets through adm.
// A bad pipeline, a missing input topic or a time in the future is an
// error; offsets outside the log are clamped and noted.
func MakePlan(ctx context.Context, adm *kadm.Client, spec Spec) (*Plan, error) {
	if spec.Into == "" {
		return nil, errors.New("--into: give the application name of the rebuild")
	}
	if spec.Into == spec.File.Topology.App {
		return nil, fmt.Errorf("--into %q is the live application's name: give a new one (to reprocess in place, use weft reset)", spec.Into)
	}
	c, err := topology.Compile(renamed(spec.File, spec.Into))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", spec.File.Name, err)
	}
	sel, err := selectGroups(spec.File, c, spec.Pipelines)
	if err != nil {
		return nil, err
	}
	p := &Plan{File: spec.File.Name, App: spec.File.Topology.App, Into: spec.Into, Restart: spec.Restart,
		Job:     jobName(spec.Job, "into", spec.Into, spec.Pipelines, time.Now()),
		Bounded: spec.Until.bounded(), compiled: c, sel: sel, spec: spec}
	for _, g := range sel.groups {
		gp := GroupPlan{Group: string(g.Name), Input: sel.inputs[string(g.Name)], Table: g.Table, Level: sel.level[string(g.Name)]}
		p.Groups = append(p.Groups, gp)
		if g.Table != "" {
			p.Tables = append(p.Tables, g.Table)
		}
		p.DeadLetters = append(p.DeadLetters, string(processors.DeadLetterTopic(g.Name)))
	}
	p.InternalTopics, p.Outputs = sel.internalTopics(spec.Into)
	if len(p.Outputs) > 0 {
		p.Notes = append(p.Notes, fmt.Sprintf("the rebuild writes the records of its `to` steps again to %v", p.Outputs))
	}

	ranges, err := inputRanges(ctx, adm, sel.externalInputs(), spec.From, spec.Until)
	if err != nil {
		return nil, err
	}
	// Progress of an earlier run: the committed offsets of the groups.
	if !spec.Restart {
		for _, g := range sel.groups {
			if sel.level[string(g.Name)] != 0 && !readsExternal(sel, g) {
				continue
			}
			committed, err := fetchCommitted(ctx, adm, string(g.Name))
			if err != nil {
				return nil, err
			}
			for i := range ranges {
				r := &ranges[i]
				if !slices.Contains(sel.inputs[string(g.Name)], r.Topic) {
					continue
				}
				if o, ok := committed.Lookup(r.Topic, r.Partition); ok && o.Err == nil && o.At >= 0 {
					at := o.At
					if r.Done == nil || at < *r.Done {
						r.Done = &at
					}
					p.Resume = true
				}
			}
		}
	}
	for _, r := range ranges {
		p.Records += r.Records
		done := r.From
		if r.Done != nil {
			done = max(r.From, min(*r.Done, r.To))
		}
		p.Remaining += r.To - done
	}
	p.Partitions = ranges
	if p.Resume {
		p.Notes = append(p.Notes, fmt.Sprintf("an earlier run of %s left committed offsets: this run resumes from them (--restart starts again)", spec.Into))
		if spec.Job == "" {
			p.Notes = append(p.Notes, fmt.Sprintf(resumedNameNote+" %s, those of the earlier run their own start (--job-name keeps one name across runs)", p.Job))
		}
	}
	if spec.Restart {
		p.Notes = append(p.Notes, fmt.Sprintf("--restart: the groups' offsets, the tables and internal topics of %s and their local state are cleared first", spec.Into))
	}
	return p, nil
}

func readsExternal(sel *selection, g *topology.Group) bool {
	for _, t := range sel.inputs[string(g.Name)] {
		if sel.external[t] {
			return true
		}
	}
	return false
}

// inputRanges resolves from and until for every partition of topics.
func inputRanges(ctx context.Context, adm *kadm.Client, topics []string, from From, until Until) ([]PartitionPlan, error) {
	if len(topics) == 0 {
		return nil, nil
	}
	details, err := adm.ListTopics(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("list topics %v: %w", topics, err)
	}
	for _, t := range topics {
		d, ok := details[t]
		if !ok || d.Err != nil || len(d.Partitions) == 0 {
			return nil, fmt.Errorf("input topic %s does not exist: nothing to replay (is --brokers the right cluster?)", t)
		}
	}
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("list the start offsets of %v: %w", topics, err)
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("list the end offsets of %v: %w", topics, err)
	}
	now := time.Now()
	atTime := func(t time.Time, flag string) (kadm.ListedOffsets, error) {
		if t.After(now) {
			return nil, fmt.Errorf("%s %s is in the future (now is %s): the logs end at the current time", flag,
				t.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
		}
		l, err := adm.ListOffsetsAfterMilli(ctx, t.UnixMilli(), topics...)
		if err == nil {
			err = l.Error()
		}
		if err != nil {
			return nil, fmt.Errorf("%s: list the offsets at %s: %w", flag, t.UTC().Format(time.RFC3339), err)
		}
		return l, nil
	}
	var fromAt, untilAt kadm.ListedOffsets
	if !from.Time.IsZero() {
		if fromAt, err = atTime(from.Time, "--from-time"); err != nil {
			return nil, err
		}
	}
	if !until.Time.IsZero() {
		// The end is exclusive: the first record after Time.
		if untilAt, err = atTime(until.Time.Add(time.Millisecond), "--until-time"); err != nil {
			return nil, err
		}
	}
	if err := checkOffsets(from.Offsets, topics, details); err != nil {
		return nil, err
	}
	var out []PartitionPlan
	for _, t := range topics {
		parts := details[t].Partitions.Numbers()
		slices.Sort(parts)
		for _, part := range parts {
			s, _ := starts.Lookup(t, part)
			e, _ := ends.Lookup(t, part)
			r := PartitionPlan{Topic: t, Partition: part, LogStart: s.Offset, LogEnd: e.Offset, From: s.Offset, To: e.Offset}
			switch {
			case from.Offset != nil:
				r.From = *from.Offset
				if r.From < s.Offset {
					r.From, r.Note = s.Offset, fmt.Sprintf("--from-offset %d is before the log start %d: clamped to %d", *from.Offset, s.Offset, s.Offset)
				} else if r.From > e.Offset {
					r.From, r.Note = e.Offset, fmt.Sprintf("--from-offset %d is past the log end %d: clamped to %d", *from.Offset, e.Offset, e.Offset)
				}
			case from.Offsets != nil:
				o, ok := from.Offsets.lookup(t, part)
				switch {
				case !ok:
					r.Note = "no start offset given for this partition: from the log start"
				case o < s.Offset:
					r.From, r.Note = s.Offset, fmt.Sprintf("start offset %d is before the log start %d: clamped to %d", o, s.Offset, s.Offset)
				case o > e.Offset:
					r.From, r.Note = e.Offset, fmt.Sprintf("start offset %d is past the log end %d: clamped to %d", o, e.Offset, e.Offset)
				default:
					r.From = o
				}
			case fromAt != nil:
				o, _ := fromAt.Lookup(t, part)
				r.From = max(o.Offset, s.Offset)
				if r.From == s.Offset && s.Offset < e.Offset {
					r.Note = fmt.Sprintf("--from-time is at or before the first record in the log (offset %d)", s.Offset)
				}
			}
			switch {
			case until.Offset != nil:
				r.To = *until.Offset
				if r.To > e.Offset {
					r.To = e.Offset
					r.Note = joinNote(r.Note, fmt.Sprintf("--until-offset %d is past the log end %d: clamped to %d", *until.Offset, e.Offset, e.Offset))
				}
			case untilAt != nil:
				o, _ := untilAt.Lookup(t, part)
				r.To = min(max(o.Offset, s.Offset), e.Offset)
			}
			if r.To < r.From {
				r.Note = joinNote(r.Note, fmt.Sprintf("the end %d is before the start %d: nothing to read", r.To, r.From))
				r.To = r.From
			}
			r.Records = r.To - r.From
			out = append(out, r)
		}
	}
	return out, nil
}

// checkOffsets fails if offsets name a topic that is not an input or a
// partition that does not exist, before anything changes.
func checkOffsets(offsets PartitionOffsets, topics []string, details kadm.TopicDetails) error {
	for topic, parts := range offsets {
		if topic != "" && !slices.Contains(topics, topic) {
			return fmt.Errorf("the start offsets name topic %s, which the job does not read (its inputs: %s)", topic, strings.Join(topics, ", "))
		}
		for part := range parts {
			check := topics
			if topic != "" {
				check = []string{topic}
			}
			for _, t := range check {
				if _, ok := details[t].Partitions[part]; !ok {
					return fmt.Errorf("the start offsets name partition %d of %s, which has %d partitions (0 to %d)", part, t, len(details[t].Partitions), len(details[t].Partitions)-1)
				}
			}
		}
	}
	return nil
}

func joinNote(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}
