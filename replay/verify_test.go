package replay

import (
	"fmt"
	"slices"
	"testing"
)

func TestReplayCompareTables(t *testing.T) {
	live, rebuilt := map[string][]byte{}, map[string][]byte{}
	for i := range 20 {
		k := fmt.Sprintf("k%02d", i)
		switch {
		case i < 8: // equal
			live[k], rebuilt[k] = []byte("1"), []byte("1")
		case i < 15: // different
			live[k], rebuilt[k] = []byte("1"), []byte("2")
		case i < 18: // only live
			live[k] = []byte("1")
		default: // only rebuilt
			rebuilt[k] = []byte("1")
		}
	}
	d := compareTables("live", "rebuilt", live, rebuilt)
	if d.Same() || d.Equal != 8 || d.Different != 7 || d.MissingInRebuilt != 3 || d.MissingInLive != 2 {
		t.Fatalf("diff %+v, want 8 equal, 7 different, 3 missing in the rebuild, 2 only in it", d)
	}
	if want := []string{"k08", "k09", "k10", "k11", "k12"}; !slices.Equal(d.DifferentKeys, want) {
		t.Errorf("different examples %v, want the first 5: %v", d.DifferentKeys, want)
	}
	if want := []string{"k15", "k16", "k17"}; !slices.Equal(d.RebuiltMissing, want) {
		t.Errorf("missing examples %v, want %v", d.RebuiltMissing, want)
	}
	if want := []string{"k18", "k19"}; !slices.Equal(d.LiveMissing, want) {
		t.Errorf("only-rebuilt examples %v, want %v", d.LiveMissing, want)
	}
	if d := compareTables("a", "b", live, live); !d.Same() || d.Equal != 18 {
		t.Errorf("a table compared with itself: %+v", d)
	}
}
