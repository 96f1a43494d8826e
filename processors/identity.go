package processors

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/weftstream/weft/kafkaclient"
	"github.com/weftstream/weft/statestore"
)

// identityFile, in a group's state directory, records which cluster and
// which incarnation of each table topic the local stores were built from.
const identityFile = "identity.json"

// stateIdentity is the content of identityFile.
type stateIdentity struct {
	Topics map[string]kafkaclient.TopicIdentity `json:"topics"`
}

// tablesOf returns the table topics a group keeps local state of: its own
// table, the tables it joins and the tables it looks up.
func tablesOf(graph *goka.GroupGraph) []string {
	var out []string
	if t := graph.GroupTable(); t != nil {
		out = append(out, t.Topic())
	}
	for _, e := range append(graph.JointTables(), graph.LookupTables()...) {
		out = append(out, e.Topic())
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// adoptState makes sure the local stores under the builder belong to the
// table topics the cluster has now. A store built from another cluster, or
// from a topic that was deleted (and maybe created again) since, is ahead
// of the changelog it would be restored from: weft's guarantee that the
// store never is would not hold, and records would be applied to state
// they never made. Such stores are discarded, with a log line that says
// why, and goka restores them from the changelog. The group table is
// created first (with the partition count of the group's input, as goka
// would), so that its identity is known from its first run on.
func adoptState(log *slog.Logger, k kafkaclient.Config, sc *sarama.Config, b *statestore.Builder, graph *goka.GroupGraph,
	inputPartitions map[string]int32) error {
	if t := graph.GroupTable(); t != nil {
		for _, n := range inputPartitions {
			kt := k
			kt.Partitions = int(n)
			if err := kt.EnsureTable(sc, t.Topic()); err != nil {
				return err
			}
			break
		}
	}
	tables := tablesOf(graph)
	if len(tables) == 0 {
		return nil
	}
	now, err := k.TopicIdentities(sc, tables)
	if err != nil {
		return err
	}
	path := filepath.Join(b.Dir(), identityFile)
	var was stateIdentity
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(data, &was); err != nil {
			log.Warn("ignoring an unreadable state identity file", "path", path, "error", err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("read %s: %w", path, err)
	}
	for _, topic := range tables {
		before, recorded := was.Topics[topic]
		current, exists := now[topic]
		var why string
		switch {
		case recorded && !exists:
			why = "the topic was deleted since the local state was built"
		case recorded && before.ClusterID != "" && current.ClusterID != "" && before.ClusterID != current.ClusterID:
			why = fmt.Sprintf("the local state was built from another cluster (%s, now %s)", before.ClusterID, current.ClusterID)
		case recorded && before.Differs(current):
			why = fmt.Sprintf("the topic was deleted and created again since the local state was built (topic id %s, now %s)",
				before.TopicID, current.TopicID)
		default:
			continue
		}
		log.Warn("discarding local state, it is restored from the changelog: "+why,
			"group", string(graph.Group()), "table", topic, "dir", filepath.Join(b.Dir(), topic))
		if err := b.DiscardTopic(topic); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(b.Dir(), 0o755); err != nil {
		return fmt.Errorf("create state directory %s: %w", b.Dir(), err)
	}
	data, err = json.MarshalIndent(stateIdentity{Topics: now}, "", "  ")
	if err != nil {
		return fmt.Errorf("encode state identity: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
