package statestore

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

func openStore(t *testing.T, dir string, opts ...Option) *Store {
	t.Helper()
	st := New(dir, opts...)
	mustOK(t, st.Open())
	return st
}

func running(t *testing.T, dir string, opts ...Option) *Store {
	t.Helper()
	st := openStore(t, dir, opts...)
	mustOK(t, st.MarkRecovered())
	return st
}

func wantValue(t *testing.T, st *Store, key, want string) {
	t.Helper()
	v, err := st.Get(key)
	mustOK(t, err)
	if want == "" && v != nil {
		t.Fatalf("%s = %q, want no value", key, v)
	}
	if want != "" && string(v) != want {
		t.Fatalf("%s = %q, want %q", key, v, want)
	}
}

func wantOffset(t *testing.T, st *Store, want int64) {
	t.Helper()
	off, err := st.GetOffset(-1)
	mustOK(t, err)
	if off != want {
		t.Fatalf("offset = %d, want %d", off, want)
	}
}

// Writes become durable only when the changelog acknowledges them; the
// rest is dropped at Close and the store is never ahead of the changelog.
func TestOnlyAcknowledgedWritesSurviveClose(t *testing.T) {
	dir := t.TempDir()
	st := running(t, dir)
	// A table partition that already holds offsets 0..9.
	mustOK(t, st.SetOffset(9))
	mustOK(t, st.Set("a", []byte("a10"))) // offset 10
	mustOK(t, st.Delete("b"))             // offset 11, goka acknowledges deletes silently
	mustOK(t, st.Set("c", []byte("c12"))) // offset 12
	mustOK(t, st.Set("a", []byte("a13"))) // offset 13
	wantValue(t, st, "a", "a13")          // read-your-writes
	mustOK(t, st.SetOffset(12))           // covers offsets 10..12
	if n := st.Pending(); n != 1 {
		t.Fatalf("pending = %d, want 1", n)
	}
	wantValue(t, st, "a", "a13")
	mustOK(t, st.Close())

	st = running(t, dir)
	defer st.Close()
	wantOffset(t, st, 12)
	wantValue(t, st, "a", "a10") // a13 was never acknowledged
	wantValue(t, st, "c", "c12")
	wantValue(t, st, "b", "")
}

// goka does not acknowledge the write at offset 0 of a new table; the next
// acknowledgement covers it.
func TestNewTableFirstOffsetZero(t *testing.T) {
	dir := t.TempDir()
	st := running(t, dir)
	mustOK(t, st.Set("x", []byte("x0"))) // offset 0, never acknowledged by goka
	mustOK(t, st.Set("y", []byte("y1"))) // offset 1
	mustOK(t, st.SetOffset(1))
	mustOK(t, st.Close())
	st = running(t, dir)
	defer st.Close()
	wantOffset(t, st, 1)
	wantValue(t, st, "x", "x0")
	wantValue(t, st, "y", "y1")
}

// A late or repeated acknowledgement changes nothing.
func TestStaleAcknowledgement(t *testing.T) {
	st := running(t, t.TempDir())
	defer st.Close()
	mustOK(t, st.SetOffset(4))
	mustOK(t, st.Set("k", []byte("v5")))
	mustOK(t, st.SetOffset(3))
	if st.Pending() != 1 {
		t.Fatalf("stale acknowledgement committed a write")
	}
	mustOK(t, st.SetOffset(5))
	if st.Pending() != 0 {
		t.Fatalf("pending = %d after acknowledgement", st.Pending())
	}
}

func TestRecoveryBulkLoad(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir, WithRecoveryBatchSize(4<<10)) // many batches
	if !st.Recovering() {
		t.Fatal("a new store must start in recovery mode")
	}
	const n = 5000
	for i := range n {
		mustOK(t, st.Set(fmt.Sprintf("k%05d", i%1000), []byte(fmt.Sprintf("v%d", i))))
		mustOK(t, st.SetOffset(int64(i)))
	}
	mustOK(t, st.Delete("k00007"))
	mustOK(t, st.SetOffset(n))
	mustOK(t, st.MarkRecovered())
	mustOK(t, st.Close())

	st = running(t, dir)
	defer st.Close()
	wantOffset(t, st, n)
	wantValue(t, st, "k00007", "")
	for _, k := range []int{0, 500, 999} {
		// key k was last written in round k+4000
		wantValue(t, st, fmt.Sprintf("k%05d", k), fmt.Sprintf("v%d", k+4000))
	}
	it, err := st.Iterator()
	mustOK(t, err)
	if got := len(collect(t, it)); got != 999 {
		t.Fatalf("iterator saw %d keys, want 999", got)
	}
}

// Pebble iterates in key order over a half-open range, merging pending
// writes (which goka's memory storage does not sort).
func TestIteratorOrderAndPendingMerge(t *testing.T) {
	st := running(t, t.TempDir())
	defer st.Close()
	mustOK(t, st.SetOffset(-1)) // not an offset: ignored
	for _, k := range []string{"b", "d", "f", "h"} {
		mustOK(t, st.Set(k, []byte("committed-"+k)))
	}
	mustOK(t, st.SetOffset(3))
	mustOK(t, st.Set("a", []byte("pending-a")))
	mustOK(t, st.Set("d", []byte("pending-d")))
	mustOK(t, st.Delete("f"))
	mustOK(t, st.Set("g", []byte("pending-g")))

	it, err := st.Iterator()
	mustOK(t, err)
	want := []string{"a=pending-a", "b=committed-b", "d=pending-d", "g=pending-g", "h=committed-h"}
	if got := collect(t, it); !slices.Equal(got, want) {
		t.Fatalf("iterator = %v, want %v", got, want)
	}
	it, err = st.IteratorWithRange([]byte("b"), []byte("g"))
	mustOK(t, err)
	if got, want := collect(t, it), want[1:3]; !slices.Equal(got, want) {
		t.Fatalf("[b,g) = %v, want %v", got, want)
	}
	it, err = st.Iterator()
	mustOK(t, err)
	defer it.Release()
	if !it.Seek([]byte("c")) || string(it.Key()) != "d" {
		t.Fatalf("Seek(c) at %q, want d", it.Key())
	}
	if v, _ := it.Value(); string(v) != "pending-d" {
		t.Fatalf("value at d = %q", v)
	}
	if !it.Next() || string(it.Key()) != "g" {
		t.Fatalf("Next after d at %q, want g (f is deleted)", it.Key())
	}
}

func TestDirectoryHeldByAnotherStore(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir)
	defer st.Close()
	err := New(dir).Open()
	if err == nil || !strings.Contains(err.Error(), "in use by another process") {
		t.Fatalf("second Open = %v, want an 'in use by another process' error", err)
	}
}

func TestClosedStore(t *testing.T) {
	st := New(t.TempDir())
	if _, err := st.Get("k"); err != ErrClosed {
		t.Fatalf("Get on unopened store = %v, want ErrClosed", err)
	}
	mustOK(t, st.Close())
}

// After a crash at any point, the stored offset and the data agree: the
// data is exactly the state that the acknowledged writes up to the stored
// offset produce. The crashable in-memory file system loses everything
// that was not synced, as a power cut would.
func TestCrashConsistency(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 20 {
		fs := vfs.NewCrashableMem()
		dir := "store"
		st := New(dir, WithFS(fs), WithMemTableSize(64<<10), WithCommitEvery(1+rng.IntN(8)))
		mustOK(t, st.Open())
		mustOK(t, st.MarkRecovered())

		model := map[string]string{} // state the changelog holds
		states := map[int64]map[string]string{-1: {}}
		type queuedWrite struct {
			apply func(map[string]string)
			set   bool
		}
		var queued []queuedWrite
		offset := int64(-1)
		crashAt := rng.IntN(400)
		var crashed *vfs.MemFS
		for step := 0; step < 400; step++ {
			if step == crashAt {
				crashed = fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(101), RNG: rand.New(rand.NewPCG(uint64(round), 9))})
			}
			k := fmt.Sprintf("k%d", rng.IntN(30))
			switch r := rng.IntN(10); {
			case r < 6:
				v := fmt.Sprintf("v%d", step)
				mustOK(t, st.Set(k, []byte(v)))
				queued = append(queued, queuedWrite{func(m map[string]string) { m[k] = v }, true})
			case r < 7:
				mustOK(t, st.Delete(k))
				queued = append(queued, queuedWrite{func(m map[string]string) { delete(m, k) }, false})
			default:
				if len(queued) == 0 {
					continue
				}
				// goka acknowledges the changelog offsets of Sets only
				n := 1 + rng.IntN(len(queued))
				for n > 0 && !queued[n-1].set {
					n--
				}
				if n == 0 {
					continue
				}
				for _, w := range queued[:n] {
					w.apply(model)
				}
				queued = queued[n:]
				offset += int64(n)
				mustOK(t, st.SetOffset(offset))
				states[offset] = maps.Clone(model)
			}
		}
		if crashed == nil {
			crashed = fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 50, RNG: rand.New(rand.NewPCG(uint64(round), 7))})
		}
		_ = st.Close()

		re := New(dir, WithFS(crashed))
		mustOK(t, re.Open())
		off, err := re.GetOffset(-1)
		mustOK(t, err)
		want, ok := states[off]
		if !ok {
			t.Fatalf("round %d: stored offset %d was never acknowledged", round, off)
		}
		it, err := re.Iterator()
		mustOK(t, err)
		got := map[string]string{}
		for it.Next() {
			v, _ := it.Value()
			got[string(it.Key())] = string(v)
		}
		it.Release()
		if !maps.Equal(got, want) {
			t.Fatalf("round %d: after crash at step %d, offset %d: data %v, want %v", round, crashAt, off, got, want)
		}
		mustOK(t, re.Close())
	}
}

// A crash during recovery leaves a consistent prefix: every recovery batch
// carries the offset of its last record, so the data is exactly the state
// of the changelog up to the stored offset.
func TestRecoveryCrashConsistency(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for round := range 10 {
		fs := vfs.NewCrashableMem()
		st := New("store", WithFS(fs), WithRecoveryBatchSize(2<<10), WithMemTableSize(64<<10))
		mustOK(t, st.Open())
		model := map[string]string{}
		states := map[int64]map[string]string{}
		const n = 3000
		crashAt := rng.IntN(n)
		var crashed *vfs.MemFS
		for i := range n {
			if i == crashAt {
				crashed = fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(101), RNG: rand.New(rand.NewPCG(uint64(round), 5))})
			}
			k := fmt.Sprintf("k%d", rng.IntN(200))
			if rng.IntN(10) == 0 {
				mustOK(t, st.Delete(k))
				delete(model, k)
			} else {
				v := fmt.Sprintf("v%d", i)
				mustOK(t, st.Set(k, []byte(v)))
				model[k] = v
			}
			mustOK(t, st.SetOffset(int64(i)))
			states[int64(i)] = maps.Clone(model)
		}
		mustOK(t, st.MarkRecovered())
		_ = st.Close()

		re := New("store", WithFS(crashed))
		mustOK(t, re.Open())
		off, err := re.GetOffset(-1)
		mustOK(t, err)
		t.Logf("round %d: crash at record %d, recovered offset %d", round, crashAt, off)
		want := states[off]
		if off == -1 {
			want = map[string]string{}
		} else if want == nil {
			t.Fatalf("round %d: stored offset %d was never loaded", round, off)
		}
		it, err := re.Iterator()
		mustOK(t, err)
		got := map[string]string{}
		for it.Next() {
			v, _ := it.Value()
			got[string(it.Key())] = string(v)
		}
		it.Release()
		if !maps.Equal(got, want) {
			t.Fatalf("round %d: crash at record %d, offset %d: data differs from the changelog prefix (%d keys, want %d)", round, crashAt, off, len(got), len(want))
		}
		mustOK(t, re.Close())
	}
}
