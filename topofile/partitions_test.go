package topofile_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weftstream/weft/topofile"
	"github.com/weftstream/weft/topology"
)

func TestCheckPartitions(t *testing.T) {
	f, err := topofile.LoadFile(filepath.Join(topologies, "join-crm.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := topology.Compile(f.Topology)
	if err != nil {
		t.Fatal(err)
	}
	check := func(counts map[string]int) error {
		return f.CheckPartitions(c, func(topic string) (int, bool) {
			n, ok := counts[topic]
			return n, ok
		}, 8)
	}
	// Nothing exists yet: everything is created alike.
	if err := check(nil); err != nil {
		t.Errorf("no topics: %v", err)
	}
	if err := check(map[string]int{"payments": 8, "crm-table": 8, "bank-counts-table": 8}); err != nil {
		t.Errorf("all 8: %v", err)
	}
	err = check(map[string]int{"payments": 6, "crm-table": 4, "bank-counts-table": 8})
	var ces topofile.ConfigErrors
	if !errors.As(err, &ces) {
		t.Fatalf("mismatched counts: %v, want ConfigErrors", err)
	}
	want := []string{
		"../testdata/topologies/join-crm.yaml:13:9: group bank-counts reads topics that are not co-partitioned: payments (6 partitions), bank-counts-table (8 partitions); " +
			"the inputs and the table of a group need the same number of partitions",
		"../testdata/topologies/join-crm.yaml:17:9: join_table: the tables are not co-partitioned: bank-counts-table (8 partitions), crm-table (4 partitions); " +
			"a table join needs both tables keyed alike with the same number of partitions (recreate one, or copy it into a table of this file with a latest pipeline)",
	}
	if got := strings.Split(ces.Error(), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// A missing external table is created with the default count.
	if err := check(map[string]int{"payments": 4, "bank-counts-table": 4}); err == nil ||
		!strings.Contains(err.Error(), "bank-counts-table (4 partitions), crm-table (8 partitions)") {
		t.Errorf("crm-table missing, created with 8: %v", err)
	}
}
