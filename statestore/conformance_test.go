package statestore

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/lovoo/goka/storage"
)

// storageFactory opens a fresh, recovered storage for one test.
type storageFactory func(t *testing.T) storage.Storage

// The same behavioural tests run against goka's memory storage (the
// reference) and weft's Pebble store.
func TestConformance(t *testing.T) {
	impls := map[string]storageFactory{
		"goka-memory": func(t *testing.T) storage.Storage {
			st := storage.NewMemory()
			mustOK(t, st.Open())
			mustOK(t, st.MarkRecovered())
			return st
		},
		"weft-pebble": func(t *testing.T) storage.Storage {
			st := New(t.TempDir())
			mustOK(t, st.Open())
			mustOK(t, st.MarkRecovered())
			t.Cleanup(func() { _ = st.Close() })
			return st
		},
	}
	for name, open := range impls {
		t.Run(name, func(t *testing.T) {
			t.Run("GetSetDeleteHas", func(t *testing.T) { testGetSetDeleteHas(t, open(t)) })
			t.Run("Offsets", func(t *testing.T) { testOffsets(t, open(t)) })
			t.Run("IteratorHidesOffset", func(t *testing.T) { testIteratorAll(t, open(t)) })
			t.Run("IteratorRanges", func(t *testing.T) { testIteratorRanges(t, open(t)) })
			t.Run("Seek", func(t *testing.T) { testSeek(t, open(t)) })
			t.Run("ConcurrentReadersOneWriter", func(t *testing.T) { testConcurrent(t, open(t)) })
		})
	}
}

func testGetSetDeleteHas(t *testing.T, st storage.Storage) {
	v, err := st.Get("missing")
	mustOK(t, err)
	if v != nil {
		t.Fatalf("Get(missing) = %q, want nil", v)
	}
	if has, _ := st.Has("missing"); has {
		t.Fatal("Has(missing) = true")
	}
	mustOK(t, st.Set("k", []byte("v1")))
	mustOK(t, st.Set("k", []byte("v2")))
	if v, _ := st.Get("k"); string(v) != "v2" {
		t.Fatalf("Get(k) = %q, want v2", v)
	}
	if has, _ := st.Has("k"); !has {
		t.Fatal("Has(k) = false after Set")
	}
	mustOK(t, st.Delete("k"))
	if v, _ := st.Get("k"); v != nil {
		t.Fatalf("Get(k) after Delete = %q", v)
	}
	if has, _ := st.Has("k"); has {
		t.Fatal("Has(k) = true after Delete")
	}
	mustOK(t, st.Delete("never-set"))
}

func testOffsets(t *testing.T, st storage.Storage) {
	off, err := st.GetOffset(-2)
	mustOK(t, err)
	if off != -2 {
		t.Fatalf("GetOffset(default) = %d, want -2", off)
	}
	mustOK(t, st.Set("a", []byte("1")))
	mustOK(t, st.SetOffset(7))
	if off, _ := st.GetOffset(-2); off != 7 {
		t.Fatalf("GetOffset = %d, want 7", off)
	}
	mustOK(t, st.Set("b", []byte("2")))
	mustOK(t, st.SetOffset(8))
	if off, _ := st.GetOffset(-2); off != 8 {
		t.Fatalf("GetOffset = %d, want 8", off)
	}
}

// collect drains an iterator into key=value strings.
func collect(t *testing.T, it storage.Iterator) []string {
	t.Helper()
	defer it.Release()
	var out []string
	for it.Next() {
		v, err := it.Value()
		mustOK(t, err)
		out = append(out, string(it.Key())+"="+string(v))
	}
	mustOK(t, it.Err())
	return out
}

func sorted(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }

func testIteratorAll(t *testing.T, st storage.Storage) {
	want := []string{}
	for i := range 20 {
		k, v := fmt.Sprintf("key-%02d", i), fmt.Sprintf("val-%d", i)
		mustOK(t, st.Set(k, []byte(v)))
		want = append(want, k+"="+v)
	}
	mustOK(t, st.SetOffset(19))
	mustOK(t, st.Delete("key-05"))
	want = slices.DeleteFunc(want, func(s string) bool { return s == "key-05=val-5" })
	it, err := st.Iterator()
	mustOK(t, err)
	got := collect(t, it)
	if !slices.Equal(sorted(got), sorted(want)) {
		t.Fatalf("Iterator() =\n%v\nwant\n%v", got, want)
	}
}

func testIteratorRanges(t *testing.T, st storage.Storage) {
	for _, k := range []string{"a1", "a2", "a3", "b1", "b2", "c1"} {
		mustOK(t, st.Set(k, []byte("v"+k)))
	}
	it, err := st.IteratorWithRange([]byte("a2"), []byte("b15"))
	mustOK(t, err)
	if got, want := sorted(collect(t, it)), []string{"a2=va2", "a3=va3", "b1=vb1"}; !slices.Equal(got, want) {
		t.Fatalf("range [a2,b15) = %v, want %v", got, want)
	}
	it, err = st.IteratorWithRange([]byte("b"), nil)
	mustOK(t, err)
	if got, want := sorted(collect(t, it)), []string{"b1=vb1", "b2=vb2"}; !slices.Equal(got, want) {
		t.Fatalf("prefix b = %v, want %v", got, want)
	}
}

func testSeek(t *testing.T, st storage.Storage) {
	for _, k := range []string{"k1", "k3", "k5"} {
		mustOK(t, st.Set(k, []byte("v"+k)))
	}
	it, err := st.Iterator()
	mustOK(t, err)
	defer it.Release()
	if !it.Seek([]byte("k3")) {
		t.Fatal("Seek(k3) = false")
	}
	if string(it.Key()) != "k3" {
		t.Fatalf("after Seek(k3) key = %q", it.Key())
	}
}

func testConcurrent(t *testing.T, st storage.Storage) {
	const keys, rounds = 50, 200
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for r := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				k := fmt.Sprintf("k%d", (i+r)%keys)
				v, err := st.Get(k)
				if err != nil {
					errs <- err
					return
				}
				if v != nil && len(v) == 0 {
					errs <- fmt.Errorf("empty value for %s", k)
					return
				}
				if i%50 == 0 {
					it, err := st.Iterator()
					if err != nil {
						errs <- err
						return
					}
					for it.Next() {
						if _, err := it.Value(); err != nil {
							errs <- err
						}
					}
					it.Release()
				}
			}
		}()
	}
	for i := range rounds {
		if err := st.Set(fmt.Sprintf("k%d", i%keys), []byte(fmt.Sprintf("v%d", i))); err != nil {
			t.Fatal(err)
		}
		if err := st.SetOffset(int64(i)); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for k := range keys {
		// the last write of key k is round i = k + keys*(rounds/keys-1)
		want := fmt.Sprintf("v%d", k+keys*(rounds/keys-1))
		if v, _ := st.Get(fmt.Sprintf("k%d", k)); string(v) != want {
			t.Fatalf("k%d = %q, want %s", k, v, want)
		}
	}
}

func mustOK(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
