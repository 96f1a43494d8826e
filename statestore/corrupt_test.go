package statestore

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A store whose files are damaged (here an overwritten MANIFEST) opens
// empty, with no stored offset, so that goka restores it from the
// changelog, and says why in the log; it does not stop the processor.
func TestCorruptStoreIsDiscarded(t *testing.T) {
	dir := t.TempDir()
	write := func() {
		st := New(dir)
		if err := st.Open(); err != nil {
			t.Fatal(err)
		}
		if err := st.MarkRecovered(); err != nil {
			t.Fatal(err)
		}
		if err := st.Set("a", []byte("1")); err != nil {
			t.Fatal(err)
		}
		if err := st.SetOffset(0); err != nil { // the changelog acknowledged it
			t.Fatal(err)
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
	}
	read := func(log *slog.Logger) (value []byte, offset int64) {
		st := New(dir, WithLogger(log))
		if err := st.Open(); err != nil {
			t.Fatalf("open: %v", err)
		}
		defer st.Close()
		v, err := st.Get("a")
		if err != nil {
			t.Fatal(err)
		}
		off, err := st.GetOffset(-1)
		if err != nil {
			t.Fatal(err)
		}
		return v, off
	}
	write()
	if v, off := read(slog.New(slog.DiscardHandler)); string(v) != "1" || off != 0 {
		t.Fatalf("before the damage: a=%q offset %d, want 1 and 0", v, off)
	}
	manifests, err := filepath.Glob(filepath.Join(dir, "MANIFEST-*"))
	if err != nil || len(manifests) == 0 {
		t.Fatalf("no MANIFEST in %s: %v", dir, err)
	}
	for _, m := range manifests {
		if err := os.WriteFile(m, []byte("this is not a manifest, it was overwritten"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var logged bytes.Buffer
	v, off := read(slog.New(slog.NewTextHandler(&logged, nil)))
	if v != nil || off != -1 {
		t.Fatalf("after the damage: a=%q offset %d, want no value and no offset (restore from the changelog)", v, off)
	}
	if !strings.Contains(logged.String(), "local state is corrupt") {
		t.Fatalf("nothing said why the state was discarded: %q", logged.String())
	}
}
