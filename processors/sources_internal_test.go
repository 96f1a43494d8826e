package processors

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/weftstream/weft/statestore"
)

// toFront (in place, for a value only the record cache holds) must make
// the same sources as withSource (a copy): the record's slot first with
// its offset, the other slots in their order.
func TestToFrontMatchesWithSource(t *testing.T) {
	a0 := statestore.SourceOffset{Topic: "a", Partition: 0, Offset: 5}
	a1 := statestore.SourceOffset{Topic: "a", Partition: 1, Offset: 7}
	b0 := statestore.SourceOffset{Topic: "b", Partition: 0, Offset: 2}
	up := statestore.SourceOffset{Topic: "a", Partition: 0, Offset: 3, Index: 1, Upstream: true}
	for _, tc := range []struct {
		name    string
		sources []statestore.SourceOffset
		id      statestore.SourceOffset
		want    []statestore.SourceOffset
	}{
		{"empty", nil, a0, []statestore.SourceOffset{a0}},
		{"same slot first", []statestore.SourceOffset{{Topic: "a", Offset: 4}}, a0, []statestore.SourceOffset{a0}},
		{"same slot later", []statestore.SourceOffset{a1, b0, {Topic: "a", Offset: 1}}, a0, []statestore.SourceOffset{a0, a1, b0}},
		{"new slot", []statestore.SourceOffset{a1, b0}, a0, []statestore.SourceOffset{a0, a1, b0}},
		{"upstream is its own slot", []statestore.SourceOffset{a0, b0}, up, []statestore.SourceOffset{up, a0, b0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			copied := withSource(nil, tc.sources, tc.id)
			if d := cmp.Diff(tc.want, copied); d != "" {
				t.Fatalf("withSource (-want +got):\n%s", d)
			}
			orig := append([]statestore.SourceOffset(nil), tc.sources...)
			if d := cmp.Diff(tc.want, toFront(orig, tc.id)); d != "" {
				t.Fatalf("toFront (-want +got):\n%s", d)
			}
		})
	}
}
