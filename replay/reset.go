package replay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/weftstream/weft/topofile"
	"github.com/weftstream/weft/topology"
)

// ResetSpec describes a reset of a live application's groups (weft reset),
// as Kafka Streams' application reset tool does it.
type ResetSpec struct {
	File      *topofile.File
	Pipelines []string // empty: all
	From      From     // where the groups start again; default earliest
	// StateDir is where the groups keep their local state
	// (processors/<group>/).
	StateDir string
}

// ResetPlan is what a reset will do; making it changes nothing.
type ResetPlan struct {
	File   string      `json:"file"`
	App    string      `json:"app"`
	Groups []GroupPlan `json:"groups"`
	// Partitions are the groups' new starts on their external inputs
	// (Done: the offset committed now).
	Partitions []PartitionPlan `json:"partitions"`
	// DeleteTopics are the internal topics (repartition and table topics)
	// that exist and will be deleted; StateDirs the local state removed.
	DeleteTopics []string `json:"delete_topics"`
	StateDirs    []string `json:"state_dirs"`
	// Active are the members the groups have now: a reset refuses to run
	// while there are any.
	Active []string `json:"active_members,omitempty"`
	Notes  []string `json:"notes,omitempty"`

	p *Plan
}

// MakeResetPlan plans the reset spec describes.
func MakeResetPlan(ctx context.Context, adm *kadm.Client, spec ResetSpec) (*ResetPlan, error) {
	c, err := topology.Compile(spec.File.Topology)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", spec.File.Name, err)
	}
	sel, err := selectGroups(spec.File, c, spec.Pipelines)
	if err != nil {
		return nil, err
	}
	app := spec.File.Topology.App
	p := &Plan{File: spec.File.Name, App: app, Into: app, Restart: true, compiled: c, sel: sel,
		spec: Spec{File: spec.File, Into: app, Pipelines: spec.Pipelines, From: spec.From, Restart: true}}
	rp := &ResetPlan{File: spec.File.Name, App: app, p: p}
	var names []string
	for _, g := range sel.groups {
		names = append(names, string(g.Name))
		rp.Groups = append(rp.Groups, GroupPlan{Group: string(g.Name), Input: sel.inputs[string(g.Name)], Table: g.Table, Level: sel.level[string(g.Name)]})
		dir := filepath.Join(spec.StateDir, "processors", string(g.Name))
		if _, err := os.Stat(dir); err == nil {
			rp.StateDirs = append(rp.StateDirs, dir)
		}
	}
	internal, _ := sel.internalTopics(app)
	p.InternalTopics = internal
	if len(internal) > 0 {
		details, err := adm.ListTopics(ctx, internal...)
		if err != nil {
			return nil, fmt.Errorf("list topics %v: %w", internal, err)
		}
		for _, t := range internal {
			if d, ok := details[t]; ok && d.Err == nil {
				rp.DeleteTopics = append(rp.DeleteTopics, t)
			}
		}
	}
	ranges, err := inputRanges(ctx, adm, sel.externalInputs(), spec.From, Until{})
	if err != nil {
		return nil, err
	}
	for _, g := range sel.groups {
		committed, err := fetchCommitted(ctx, adm, string(g.Name))
		if err != nil {
			return nil, err
		}
		for i := range ranges {
			if o, ok := committed.Lookup(ranges[i].Topic, ranges[i].Partition); ok && o.Err == nil && o.At >= 0 {
				at := o.At
				ranges[i].Done = &at
			}
		}
	}
	p.Partitions, rp.Partitions = ranges, ranges
	described, err := adm.DescribeGroups(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("describe groups %v: %w", names, err)
	}
	for _, name := range names {
		for _, m := range described[name].Members {
			rp.Active = append(rp.Active, fmt.Sprintf("%s: %s (client %s on %s)", name, m.MemberID, m.ClientID, m.ClientHost))
		}
	}
	if len(rp.Active) > 0 {
		rp.Notes = append(rp.Notes, "the groups have active members: stop every instance of the application before --execute")
	}
	_, outputs := sel.internalTopics(app)
	if len(outputs) > 0 {
		rp.Notes = append(rp.Notes, fmt.Sprintf("output topics %v are not touched: reprocessing writes their records again", outputs))
	}
	return rp, nil
}

// ExecuteReset applies the plan: it refuses while the groups have active
// members (naming them), deletes the internal topics and the groups'
// local state, deletes the groups (their committed offsets) and commits
// the planned starts on their external inputs. The next weft run
// reprocesses from there.
func ExecuteReset(ctx context.Context, adm *kadm.Client, log *slog.Logger, stateDir string, rp *ResetPlan) error {
	names := make([]string, len(rp.Groups))
	for i, g := range rp.Groups {
		names[i] = g.Group
	}
	if err := refuseActive(ctx, adm, names, "weft reset needs every instance of "+rp.App+" stopped"); err != nil {
		return err
	}
	if err := clearGroups(ctx, adm, log, stateDir, names, rp.DeleteTopics); err != nil {
		return err
	}
	return commitStarts(ctx, adm, rp.p)
}

// clearGroups deletes topics, the local state of groups under stateDir
// and the groups themselves (their committed offsets).
func clearGroups(ctx context.Context, adm *kadm.Client, log *slog.Logger, stateDir string, groups, topics []string) error {
	if len(topics) > 0 {
		resp, err := adm.DeleteTopics(ctx, topics...)
		if err != nil {
			return fmt.Errorf("delete topics %v: %w", topics, err)
		}
		for _, r := range resp {
			if r.Err != nil && !errors.Is(r.Err, kerr.UnknownTopicOrPartition) {
				return fmt.Errorf("delete topic %s: %w", r.Topic, r.Err)
			}
		}
		// Deletion is asynchronous in Kafka: wait until the topics are gone,
		// so that the groups create them anew.
		deadline := time.Now().Add(30 * time.Second)
		for {
			details, err := adm.ListTopics(ctx, topics...)
			if err != nil {
				return fmt.Errorf("list topics %v: %w", topics, err)
			}
			left := 0
			for _, t := range topics {
				if d, ok := details[t]; ok && d.Err == nil {
					left++
				}
			}
			if left == 0 {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("deleted topics %v are still listed after 30s", topics)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
		}
		log.Info("deleted internal topics", "topics", topics)
	}
	for _, g := range groups {
		dir := filepath.Join(stateDir, "processors", g)
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("remove the local state of %s: %w", g, err)
		}
	}
	resp, err := adm.DeleteGroups(ctx, groups...)
	if err != nil {
		return fmt.Errorf("delete groups %v: %w", groups, err)
	}
	for _, r := range resp {
		if r.Err != nil && !errors.Is(r.Err, kerr.GroupIDNotFound) {
			return fmt.Errorf("delete group %s: %w", r.Group, r.Err)
		}
	}
	return nil
}
