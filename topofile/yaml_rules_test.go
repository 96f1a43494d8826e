package topofile_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/weftstream/weft/topofile"
)

// Merge keys are rejected wherever the loader reads a mapping.
func TestLoadRejectsMergeKeys(t *testing.T) {
	src := `app: shop
x: &src {topic: orders}
streams:
  orders: {<<: *src, codec: json}
pipelines:
  - name: counts
    from: orders
    steps:
      - group_by_key: {}
      - count: {}
`
	_, err := topofile.Load("merge.yaml", []byte(src))
	var ces topofile.ConfigErrors
	if !errors.As(err, &ces) {
		t.Fatalf("Load: %v, want ConfigErrors", err)
	}
	want := `merge.yaml:2:1: unknown key "x" in the topology file (keys: app, brokers, sasl, on_error, tracing, cache_max_bytes, commit_interval, lineage, streams, tables, pipelines)` + "\n" +
		`merge.yaml:4:3: missing required key "topic" in stream orders` + "\n" +
		`merge.yaml:4:12: merge keys (<<) are not supported`
	if ces.Error() != want {
		t.Errorf("errors:\n%s\nwant:\n%s", ces.Error(), want)
	}
}

// A file that expands to more values than the bound through aliases is
// rejected, with one error, without reading it all.
func TestLoadBoundsAliasExpansion(t *testing.T) {
	const refs = 360_000 // each step is 3 values: 1.08M > 2^20
	var b strings.Builder
	b.WriteString("app: shop\nstreams:\n  orders: {topic: orders}\npipelines:\n  - name: p\n    from: orders\n    steps:\n      - &s {group_by_key: {}}\n")
	for range refs {
		b.WriteString("      - *s\n")
	}
	start := time.Now()
	_, err := topofile.Load("aliases.yaml", []byte(b.String()))
	var ces topofile.ConfigErrors
	if !errors.As(err, &ces) {
		t.Fatalf("Load: %v, want ConfigErrors", err)
	}
	if len(ces) != 1 || !strings.HasSuffix(ces[0].Msg, "the file expands to more than 1048576 values (through aliases)") {
		t.Errorf("errors:\n%v\nwant one: the file expands to more than 1048576 values", ces)
	}
	t.Logf("rejected in %s", time.Since(start))
}
