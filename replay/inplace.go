package replay

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/weftstream/weft/kafkaclient"
	"github.com/weftstream/weft/statestore"
	"github.com/weftstream/weft/topofile"
	"github.com/weftstream/weft/topology"
)

// InPlaceSpec describes an in-place job (weft replay --in-place): the live
// application's tables are rewound to their state just before the target
// offsets, its groups' committed offsets reset, and the records from there
// processed again by the live groups.
type InPlaceSpec struct {
	File      *topofile.File
	Pipelines []string // empty: all
	// From is the target: the offsets (or the time) to rewind to; the
	// tables keep what the records before it made. Default: the earliest
	// offsets, which empties the tables.
	From From
	// RewindOnly stops the job at the target: the tables hold their state
	// before it and the groups' committed offsets are the target, so the
	// next weft run processes the records from there. Otherwise the job
	// processes them up to the end offsets the inputs have when it is
	// planned.
	RewindOnly bool
	// Force lets the job run although the live groups have members, for
	// members that are gone (a killed instance is a member until its
	// session times out): it waits until they leave, as Kafka changes the
	// committed offsets of empty groups only.
	Force bool
	// StateDir is where the live groups keep their local state; the job
	// removes it, so that the groups recover the rewound tables from their
	// changelogs.
	StateDir string
	// Job names the job in the rewound values and in every version it
	// writes (--job-name); "" names it JobName("in-place", the
	// application, Pipelines, the time the plan is made).
	Job string
}

// TableRewind is what rewinding one table changes.
type TableRewind struct {
	Table string `json:"table"`
	Group string `json:"group"`
	Keys  int    `json:"keys"` // keys in the table now
	// Rewound keys go back to an earlier value, Deleted keys had none
	// before the target; Unchanged keys were not updated from the target
	// on.
	Rewound   int `json:"rewound"`
	Deleted   int `json:"deleted"`
	Unchanged int `json:"unchanged"`
	// Coalesced counts keys whose first version from the target on also
	// holds earlier updates (the record cache writes one version for
	// several updates): those keys go back to the version before it and
	// their records after that version are processed again.
	Coalesced int `json:"coalesced"`
	// Versions is how many changelog records were read.
	Versions int64 `json:"versions"`
}

// InPlacePlan is what an in-place job will do; making it changes nothing.
type InPlacePlan struct {
	File       string      `json:"file"`
	App        string      `json:"app"`
	Job        string      `json:"job"` // the name the versions it writes carry (rewound ones too)
	RewindOnly bool        `json:"rewind_only"`
	Groups     []GroupPlan `json:"groups"`
	// Partitions are the input partitions: Target is where the tables are
	// rewound to, From where the groups start again (before Target where
	// coalesced versions need records before the target again; the records
	// a key's rewound version holds already are skipped), To the end.
	Partitions []PartitionPlan `json:"partitions"`
	Tables     []TableRewind   `json:"tables"`
	// KeysChanged is the number of keys the rewind changes (rewound or
	// deleted), over all tables.
	KeysChanged int   `json:"keys_changed"`
	Records     int64 `json:"records"` // records the job processes again
	// DeleteStateDirs is the local state the job removes.
	DeleteStateDirs []string `json:"delete_state_dirs,omitempty"`
	// Active are the groups' members now: the job refuses to run while
	// there are any, unless Force.
	Active []string `json:"active_members,omitempty"`
	Notes  []string `json:"notes,omitempty"`

	spec     InPlaceSpec
	p        *Plan
	rewrites []*kgo.Record
	// repartitions are the repartition topics the groups read, target
	// the target offsets of the input partitions.
	repartitions []string
	target       map[string]map[int32]int64
}

// keyVersions is what the rewind keeps of one key's changelog records.
type keyVersions struct {
	best      *kgo.Record // the last version before the target
	bestEnv   statestore.Envelope
	next      *kgo.Record // the first version after best, or after the version best rewound to (nil: none yet)
	nextEnv   statestore.Envelope
	nextAfter bool // next is from the target on (or a tombstone)
	latest    *kgo.Record
}

// MakeInPlacePlan plans the in-place job spec describes: it reads the
// tables' changelogs (opts reach the cluster) to find each key's state
// before the target, and counts the keys that change.
func MakeInPlacePlan(ctx context.Context, adm *kadm.Client, opts []kgo.Opt, spec InPlaceSpec) (*InPlacePlan, error) {
	c, err := topology.Compile(spec.File.Topology)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", spec.File.Name, err)
	}
	sel, err := selectGroups(spec.File, c, spec.Pipelines)
	if err != nil {
		return nil, err
	}
	app := spec.File.Topology.App
	ip := &InPlacePlan{File: spec.File.Name, App: app, RewindOnly: spec.RewindOnly, spec: spec,
		Job: jobName(spec.Job, "in-place", app, spec.Pipelines, time.Now())}
	var names []string
	for _, g := range sel.groups {
		name := string(g.Name)
		for _, t := range sel.inputs[name] {
			if sel.external[t] {
				continue
			}
			// A repartition topic written by a group that reads the input
			// topics: its records name the input record they were emitted
			// for (weft.from), which the versions of the table behind it
			// name as their sources.
			if w := sel.writer[t]; w != nil && w.Table != t && sel.level[string(w.Name)] == 0 {
				ip.repartitions = append(ip.repartitions, t)
				continue
			}
			return nil, fmt.Errorf("--in-place: group %s reads %s, a table topic or a repartition topic behind another one, and only tables fed by the input topics or one repartition topic after them can be rewound in place; rebuild it with --into, or start it again with weft reset", name, t)
		}
		names = append(names, name)
		ip.Groups = append(ip.Groups, GroupPlan{Group: name, Input: sel.inputs[name], Table: g.Table, Level: sel.level[name]})
		dir := filepath.Join(spec.StateDir, "processors", name)
		if _, err := os.Stat(dir); err == nil {
			ip.DeleteStateDirs = append(ip.DeleteStateDirs, dir)
		}
	}
	ranges, err := inputRanges(ctx, adm, sel.externalInputs(), spec.From, Until{})
	if err != nil {
		return nil, err
	}
	target := map[string]map[int32]int64{}
	logStart := map[string]map[int32]int64{}
	restart := map[string]map[int32]int64{}
	for _, r := range ranges {
		if target[r.Topic] == nil {
			target[r.Topic], logStart[r.Topic], restart[r.Topic] = map[int32]int64{}, map[int32]int64{}, map[int32]int64{}
		}
		target[r.Topic][r.Partition] = r.From
		logStart[r.Topic][r.Partition] = r.LogStart
		restart[r.Topic][r.Partition] = r.From
	}
	// before reports whether a version holds only records before the
	// target.
	before := func(env statestore.Envelope) bool {
		for _, s := range env.Sources {
			if x, ok := target[s.Topic][s.Partition]; ok && s.Offset >= x {
				return false
			}
		}
		return true
	}
	// back makes partition p of topic restart at most at from.
	back := func(topic string, p int32, from int64) {
		if cur, ok := restart[topic][p]; ok && from < cur {
			restart[topic][p] = from
		}
	}
	for _, g := range sel.groups {
		if g.Table == "" {
			continue
		}
		tr := TableRewind{Table: g.Table, Group: string(g.Name)}
		keys := map[string]*keyVersions{}
		var order []string
		err := eachChangelogRecord(ctx, opts, g.Table, func(r *kgo.Record) error {
			tr.Versions++
			k := keys[string(r.Key)]
			if k == nil {
				k = &keyVersions{}
				keys[string(r.Key)] = k
				order = append(order, string(r.Key))
			}
			k.latest = r
			if r.Value == nil { // a tombstone: when it came is unknown
				if k.next == nil {
					k.next, k.nextAfter = r, true
				}
				return nil
			}
			env, err := statestore.DecodeEnvelope(r.Value)
			if err != nil {
				return fmt.Errorf("table %s: %s/%d@%d was not written by weft, so it cannot be rewound: %w", g.Table, r.Topic, r.Partition, r.Offset, err)
			}
			if before(env) {
				// After a version from the target on, a version before
				// it is a rewind (by an earlier in-place job, perhaps
				// killed before it processed the key again): the later
				// version, if it is one of this version's successors (a
				// higher version), still holds the updates that follow,
				// coalesced ones too, so it stays next.
				if k.next == nil || k.next.Value == nil || k.nextEnv.Version <= env.Version {
					k.next, k.nextAfter = nil, false
				}
				k.best, k.bestEnv = r, env
			} else if k.next == nil {
				k.next, k.nextEnv, k.nextAfter = r, env, true
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		// The input topics the table's versions name: the group's own, or
		// those of the group writing its repartition topic.
		var inputs []string
		for _, t := range sel.inputs[string(g.Name)] {
			if sel.external[t] {
				inputs = append(inputs, t)
			} else {
				inputs = append(inputs, sel.inputs[string(sel.writer[t].Name)]...)
			}
		}
		upstream := slices.ContainsFunc(sel.inputs[string(g.Name)], func(t string) bool { return !sel.external[t] })
		for _, key := range order {
			k := keys[key]
			if k.latest.Value != nil {
				tr.Keys++
			}
			if k.next == nil {
				tr.Unchanged++
				continue
			}
			// The first version from the target on: exact when it is one
			// update (its version follows best's), else it may hold
			// updates before the target too, which are processed again
			// from just after best.
			var baseVersion uint64
			if k.best != nil {
				baseVersion = k.bestEnv.Version
			}
			if k.next.Value == nil || k.nextEnv.Version > baseVersion+1 {
				tr.Coalesced++
				var slots []statestore.SourceOffset
				if k.next.Value != nil {
					slots = k.nextEnv.Sources
				} else {
					for _, t := range inputs {
						for p := range target[t] {
							slots = append(slots, statestore.SourceOffset{Topic: t, Partition: p, Upstream: upstream})
						}
					}
				}
				for _, s := range slots {
					from := logStart[s.Topic][s.Partition]
					if k.best != nil {
						for _, b := range k.bestEnv.Sources {
							if b.Topic == s.Topic && b.Partition == s.Partition && b.Upstream == s.Upstream { // the input partition's slot
								from = b.Offset + 1
								if b.Upstream { // the records emitted for b.Offset after the one applied
									from = b.Offset
								}
							}
						}
					}
					back(s.Topic, s.Partition, from)
				}
			}
			if k.best == k.latest {
				tr.Unchanged++
				continue
			}
			rec := &kgo.Record{Topic: g.Table, Partition: k.latest.Partition, Key: k.latest.Key}
			if k.best != nil {
				// The version before the target again, as the job wrote it.
				env := k.bestEnv
				env.ReplayJob = ip.Job
				rec.Value, rec.Headers = statestore.AppendEnvelope(nil, &env), k.best.Headers
				tr.Rewound++
			} else if k.latest.Value != nil {
				tr.Deleted++
			} else {
				tr.Unchanged++ // deleted now and before the target
				continue
			}
			ip.rewrites = append(ip.rewrites, rec)
		}
		ip.KeysChanged += tr.Rewound + tr.Deleted
		ip.Tables = append(ip.Tables, tr)
	}
	// A group that had not processed up to the target (it lagged when it
	// stopped) restarts where it stopped: the tables hold nothing of the
	// records from there.
	lagged := map[string]map[int32]string{}
	for _, g := range sel.groups {
		committed, err := fetchCommitted(ctx, adm, string(g.Name))
		if err != nil {
			return nil, err
		}
		for _, t := range sel.inputs[string(g.Name)] {
			for p := range target[t] {
				c, ok := committed.Lookup(t, p)
				if !ok || c.Err != nil || c.At < 0 || c.At >= restart[t][p] {
					continue
				}
				restart[t][p] = c.At
				if lagged[t] == nil {
					lagged[t] = map[int32]string{}
				}
				lagged[t][p] = fmt.Sprintf("restarts at %d, before the target %d: group %s had processed only up to there", c.At, target[t][p], g.Name)
			}
		}
	}
	for i := range ranges {
		r := &ranges[i]
		x := r.From
		r.Target = &x
		r.From = restart[r.Topic][r.Partition]
		if note, ok := lagged[r.Topic][r.Partition]; ok {
			r.Note = joinNote(r.Note, note)
		} else if r.From < x {
			r.Note = joinNote(r.Note, fmt.Sprintf("restarts at %d, before the target %d: versions the record cache coalesced across the target need their records again (those a key holds already are skipped)", r.From, x))
		}
		if spec.RewindOnly {
			r.To = x
		}
		r.Records = r.To - r.From
		ip.Records += r.Records
	}
	ip.Partitions = ranges
	ip.target = target
	ip.p = &Plan{File: spec.File.Name, App: app, Into: app, Job: ip.Job, Bounded: spec.RewindOnly, Partitions: ranges,
		Records: ip.Records, Remaining: ip.Records, compiled: c, sel: sel,
		spec: Spec{File: spec.File, Into: app, Pipelines: spec.Pipelines, From: spec.From}}
	for _, g := range ip.Groups {
		if g.Table != "" {
			ip.p.Tables = append(ip.p.Tables, g.Table)
		}
	}
	described, err := adm.DescribeGroups(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("describe groups %v: %w", names, err)
	}
	for _, name := range names {
		for _, m := range described[name].Members {
			ip.Active = append(ip.Active, fmt.Sprintf("%s: %s (client %s on %s)", name, m.MemberID, m.ClientID, m.ClientHost))
		}
	}
	if len(ip.Active) > 0 {
		if spec.Force {
			ip.Notes = append(ip.Notes, "the groups have active members: --force waits for them to leave (stop every instance of the application)")
		} else {
			ip.Notes = append(ip.Notes, "the groups have active members: stop every instance of the application before --execute (or --force for members that are gone)")
		}
	}
	if _, outputs := sel.internalTopics(app); len(outputs) > 0 {
		ip.Notes = append(ip.Notes, fmt.Sprintf("output topics %v are not rewound: processing again writes their records again", outputs))
	}
	if spec.RewindOnly {
		ip.Notes = append(ip.Notes, "--rewind-only: the job stops at the target; the next weft run processes the records from there")
	}
	return ip, nil
}

// ExecuteInPlace applies the plan: it refuses while the live groups have
// members (naming them; with Force it waits up to twice the session
// timeout for them to leave), writes the rewound values (and tombstones
// for the keys that had none) to the tables' changelogs, removes the
// groups' local state, commits the restart offsets and runs the live
// groups from there to the end (Execute's termination rule; with
// RewindOnly to the target). A group behind a repartition topic goes on
// from its committed offsets there and skips the records the topic holds
// when the job starts that were emitted for input records from the
// target on: the group writing the topic emits them again.
func ExecuteInPlace(ctx context.Context, adm *kadm.Client, opts []kgo.Opt, ip *InPlacePlan, o Options) (*Summary, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	names := make([]string, len(ip.Groups))
	for i, g := range ip.Groups {
		names[i] = g.Group
	}
	why := "an in-place replay needs every instance of " + ip.App + " stopped (--force waits for members that are gone)"
	if err := refuseActive(ctx, adm, names, why); err != nil {
		if !ip.spec.Force {
			return nil, fmt.Errorf("--in-place: %w", err)
		}
		if err := waitEmpty(ctx, adm, names, 2*kafkaclient.SessionTimeout); err != nil {
			return nil, err
		}
	}
	if len(ip.rewrites) > 0 {
		cl, err := kgo.NewClient(append(slices.Clone(opts), kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
		if err != nil {
			return nil, fmt.Errorf("connect to Kafka: %w", err)
		}
		err = cl.ProduceSync(ctx, ip.rewrites...).FirstErr()
		cl.Close()
		if err != nil {
			return nil, fmt.Errorf("write the rewound values to the changelogs: %w", err)
		}
		o.Logger.Info("rewound the tables", "keys", ip.KeysChanged)
	}
	for _, g := range names {
		if err := os.RemoveAll(filepath.Join(ip.spec.StateDir, "processors", g)); err != nil {
			return nil, fmt.Errorf("remove the local state of %s: %w", g, err)
		}
	}
	if o.StateDir == "" {
		o.StateDir = ip.spec.StateDir
	}
	if len(ip.repartitions) > 0 {
		// The records the repartition topics hold now, from the live
		// groups, that were emitted for input records from the target on
		// are emitted again by the job: the old copies are skipped.
		ends, err := adm.ListEndOffsets(ctx, ip.repartitions...)
		if err == nil {
			err = ends.Error()
		}
		if err != nil {
			return nil, fmt.Errorf("list the end offsets of %v: %w", ip.repartitions, err)
		}
		old := map[string]map[int32]int64{}
		ends.Each(func(l kadm.ListedOffset) {
			if old[l.Topic] == nil {
				old[l.Topic] = map[int32]int64{}
			}
			old[l.Topic][l.Partition] = l.Offset
		})
		target := ip.target
		ip.p.skip = func(topic string, partition int32, offset int64, from statestore.SourceOffset) bool {
			end, ok := old[topic][partition]
			if !ok || offset >= end {
				return false
			}
			x, ok := target[from.Topic][from.Partition]
			return ok && from.Offset >= x
		}
	}
	return Execute(ctx, adm, ip.p, o)
}

// waitEmpty waits until groups have no members, at most for d.
func waitEmpty(ctx context.Context, adm *kadm.Client, groups []string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		err := refuseActive(ctx, adm, groups, "--force waited "+d.String()+" for them to leave: they are alive; stop them")
		if err == nil || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}
