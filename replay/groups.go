package replay

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/weftstream/weft/topofile"
	"github.com/weftstream/weft/topology"
)

// selection is the groups of a compiled topology a job runs: the groups
// of the pipelines asked for and every group they read from (through a
// repartition topic, a table topic or a lookup), with the topics each
// group reads and which group writes them.
type selection struct {
	groups   []*topology.Group
	inputs   map[string][]string            // group -> topics it consumes
	writer   map[string]*topology.Group     // topic -> the group of the app that writes it
	level    map[string]int                 // group -> 0 if it reads only external topics, else 1 + its writers' level
	byName   map[string]*topology.Group     // group name -> group
	external map[string]bool                // topics no group of the app writes
	deps     map[string]map[string]struct{} // group -> groups it reads from (inputs and lookups)
}

// pipelineGroup is the group of pipeline name in app.
func pipelineGroup(app, name string) string { return app + "-" + name }

// selectGroups picks the groups of pipelines (all groups when empty) of c,
// the topology of file f compiled under its own or a new app name.
func selectGroups(f *topofile.File, c *topology.Compiled, pipelines []string) (*selection, error) {
	s := &selection{inputs: map[string][]string{}, writer: map[string]*topology.Group{}, level: map[string]int{},
		byName: map[string]*topology.Group{}, external: map[string]bool{}, deps: map[string]map[string]struct{}{}}
	app := c.Topology.App
	for _, g := range c.Groups {
		s.byName[string(g.Name)] = g
		s.inputs[string(g.Name)] = g.Inputs
		for _, o := range g.Outputs {
			s.writer[o] = g
		}
		if g.Table != "" {
			s.writer[g.Table] = g
		}
	}
	for _, g := range c.Groups {
		reads := slices.Clone(s.inputs[string(g.Name)])
		for _, e := range g.Graph.LookupTables() {
			reads = append(reads, e.Topic())
		}
		d := map[string]struct{}{}
		for _, t := range reads {
			if w, ok := s.writer[t]; ok && w != g {
				d[string(w.Name)] = struct{}{}
			} else if !ok {
				s.external[t] = true
			}
		}
		s.deps[string(g.Name)] = d
	}
	want := map[string]bool{}
	if len(pipelines) == 0 {
		for _, g := range c.Groups {
			want[string(g.Name)] = true
		}
	}
	for _, p := range pipelines {
		var known *topofile.Pipeline
		for i := range f.Pipelines {
			if f.Pipelines[i].Name == p {
				known = &f.Pipelines[i]
			}
		}
		if known == nil {
			return nil, fmt.Errorf("--pipeline %q: %s has no such pipeline (it has %s)", p, f.Name, strings.Join(pipelineNames(f), ", "))
		}
		if _, ok := s.byName[pipelineGroup(app, p)]; !ok {
			return nil, fmt.Errorf("--pipeline %q: the pipeline keeps no table of its own, so it has no group to replay; name a pipeline that ends in a table (%s)",
				p, strings.Join(tablePipelines(f), ", "))
		}
		want[pipelineGroup(app, p)] = true
	}
	// Close over what the wanted groups read from.
	for changed := true; changed; {
		changed = false
		for name := range want {
			for d := range s.deps[name] {
				if !want[d] {
					want[d], changed = true, true
				}
			}
		}
	}
	for _, g := range c.Groups {
		if want[string(g.Name)] {
			s.groups = append(s.groups, g)
		}
	}
	var levelOf func(name string, seen map[string]bool) int
	levelOf = func(name string, seen map[string]bool) int {
		if l, ok := s.level[name]; ok {
			return l
		}
		if seen[name] {
			return 0
		}
		seen[name] = true
		l := 0
		for _, t := range s.inputs[name] {
			if w, ok := s.writer[t]; ok && string(w.Name) != name {
				l = max(l, levelOf(string(w.Name), seen)+1)
			}
		}
		s.level[name] = l
		return l
	}
	for _, g := range s.groups {
		levelOf(string(g.Name), map[string]bool{})
	}
	return s, nil
}

func pipelineNames(f *topofile.File) []string {
	var names []string
	for _, p := range f.Pipelines {
		names = append(names, p.Name)
	}
	return names
}

func tablePipelines(f *topofile.File) []string {
	var names []string
	for _, p := range f.Pipelines {
		if p.Table {
			names = append(names, p.Name)
		}
	}
	return names
}

// externalInputs are the topics the selected groups consume that no group
// of the app writes (the event log the job replays), sorted.
func (s *selection) externalInputs() []string {
	set := map[string]bool{}
	for _, g := range s.groups {
		for _, t := range s.inputs[string(g.Name)] {
			if s.external[t] {
				set[t] = true
			}
		}
	}
	return sortedKeys(set)
}

// internalTopics are the topics the selected groups keep their work in:
// tables and repartition topics, sorted; outputs are the external topics
// they write (the `to` steps).
func (s *selection) internalTopics(app string) (internal, outputs []string) {
	in, out := map[string]bool{}, map[string]bool{}
	for _, g := range s.groups {
		if g.Table != "" {
			in[g.Table] = true
		}
		for _, o := range g.Outputs {
			if strings.HasPrefix(o, app+"-") && (strings.HasSuffix(o, "-repartition") || strings.HasSuffix(o, "-table")) {
				in[o] = true
			} else {
				out[o] = true
			}
		}
	}
	return sortedKeys(in), sortedKeys(out)
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// fetchCommitted returns the committed offsets of group; none for a group
// that does not exist (yet).
func fetchCommitted(ctx context.Context, adm *kadm.Client, group string) (kadm.OffsetResponses, error) {
	o, err := adm.FetchOffsets(ctx, group)
	if errors.Is(err, kerr.GroupIDNotFound) {
		return kadm.OffsetResponses{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("fetch the committed offsets of group %s: %w", group, err)
	}
	return o, nil
}
