package serve

import (
	"fmt"
	"log/slog"
	"testing"

	"github.com/weftstream/weft/processors"
	"github.com/weftstream/weft/statestore"
)

func newTestWatcher(key string, prefix bool, buffer int) *watcher {
	return &watcher{key: key, prefix: prefix, ch: make(chan change, buffer), gone: make(chan struct{})}
}

// The ring keeps the last changes only: resuming within it replays the
// matching ones, resuming before it reports the gap with the oldest id.
func TestHubRingBoundsResume(t *testing.T) {
	h := newHub(4)
	for i := 1; i <= 10; i++ {
		h.publish(0, fmt.Sprintf("k%d", i%2), []byte{byte(i)})
	}
	// Held: seqs 7..10. After 6: nothing missed; k1 has 7 and 9.
	replay, missed, head, err := h.subscribe(newTestWatcher("k1", false, 8), h.id(6))
	if err != nil || missed != nil || head != h.id(10) || len(replay) != 2 || replay[0].seq != 7 || replay[1].seq != 9 {
		t.Fatalf("resume after 6: replay %v missed %v head %s err %v", replay, missed, head, err)
	}
	// After 5: change 6 is gone.
	replay, missed, _, _ = h.subscribe(newTestWatcher("k", true, 8), h.id(5))
	if missed == nil || missed.Oldest != h.id(7) || replay != nil {
		t.Fatalf("resume after 5: replay %v missed %+v, want the gap reported with oldest %s", replay, missed, h.id(7))
	}
	// An id from the future or of another epoch is a gap too.
	for _, id := range []string{h.id(11), "other-3", "garbage"} {
		if _, missed, _, _ := h.subscribe(newTestWatcher("k", true, 8), id); missed == nil {
			t.Errorf("resume after %q: no gap reported", id)
		}
	}
}

// A watcher whose buffer is full is dropped (never blocks the writer),
// the others keep getting their changes; close drops everyone.
func TestHubDropsSlowWatchers(t *testing.T) {
	h := newHub(16)
	slow, fast := newTestWatcher("a", false, 2), newTestWatcher("a", true, 16)
	for _, w := range []*watcher{slow, fast} {
		if _, _, _, err := h.subscribe(w, ""); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		h.publish(0, "a", []byte{byte(i)})
	}
	select {
	case <-slow.gone:
	default:
		t.Fatal("the slow watcher was not dropped")
	}
	if len(fast.ch) != 3 || len(h.keys) != 0 || len(h.prefixes) != 1 {
		t.Fatalf("fast watcher has %d changes, hub %d key and %d prefix watchers; want 3, 0, 1", len(fast.ch), len(h.keys), len(h.prefixes))
	}
	h.close()
	select {
	case <-fast.gone:
	default:
		t.Fatal("close did not drop the watcher")
	}
	if _, _, _, err := h.subscribe(newTestWatcher("a", false, 1), ""); err == nil {
		t.Fatal("a closed hub accepted a watcher")
	}
}

// A delete reaches watchers as deleted, value null; a stored envelope as
// its value, version and writer.
func TestChangeValue(t *testing.T) {
	s := &Server{cfg: config{logger: slog.New(slog.DiscardHandler)}}
	r := &processors.TableReader{}
	if v := s.changeValue(r, change{key: "k"}); !v.Deleted || string(v.Value) != "null" || v.Key != "k" {
		t.Fatalf("delete: %+v", v)
	}
	env := statestore.Envelope{Value: []byte(`{"n":2}`), Version: 7}
	v := s.changeValue(r, change{key: "k", value: statestore.AppendEnvelope(nil, &env)})
	if v.Deleted || string(v.Value) != `{"n":2}` || v.Version != 7 {
		t.Fatalf("set: %+v", v)
	}
}

// BenchmarkHubPublish: the cost a table write pays (under its store's
// lock) for change notifications, with idle watchers of other keys.
func BenchmarkHubPublish(b *testing.B) {
	for _, n := range []int{0, 1000} {
		b.Run(fmt.Sprintf("keyWatchers=%d,prefixWatchers=%d", n, n), func(b *testing.B) {
			h := newHub(DefaultChangeBuffer)
			for i := range n {
				_, _, _, _ = h.subscribe(newTestWatcher(fmt.Sprintf("other-%d", i), false, 1), "")
				_, _, _, _ = h.subscribe(newTestWatcher(fmt.Sprintf("other-%d", i), true, 1), "")
			}
			v := make([]byte, 100)
			b.ReportAllocs()
			for b.Loop() {
				h.publish(0, "acc-0001", v)
			}
		})
	}
}

// Prefix watchers get the changes of the keys they prefix, whether the
// hub scans the prefixes watched (few) or looks up the key's (many).
func TestHubPrefixMatching(t *testing.T) {
	for _, prefixes := range [][]string{{"", "b"}, {"", "a", "ab", "abc", "x", "y", "z", "q", "r", "b"}} {
		h := newHub(4)
		ws := map[string]*watcher{}
		for _, p := range prefixes {
			ws[p] = newTestWatcher(p, true, 4)
			_, _, _, _ = h.subscribe(ws[p], "")
		}
		h.publish(0, "ab", []byte("v"))
		for p, w := range ws {
			want := 0
			if p == "" || p == "a" || p == "ab" {
				want = 1
			}
			if len(w.ch) != want {
				t.Errorf("%d prefixes watched: watcher of %q got %d changes of ab, want %d", len(prefixes), p, len(w.ch), want)
			}
		}
	}
}
