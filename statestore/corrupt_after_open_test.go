package statestore

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

// An sstable damaged while the store is open (a disk error, a stray
// write): reads of the damaged blocks fail with an error that names the
// store and says it is corrupt, never with a panic or a wrong value; and
// the next Open discards the store, so that goka restores it from the
// changelog instead of failing on it again.
func TestSSTableCorruptedAfterOpen(t *testing.T) {
	dir := t.TempDir()
	const keys = 2000
	value := func(i int) []byte { return bytes.Repeat([]byte{byte('a' + i%26)}, 1000) }
	st := New(dir, WithMemTableSize(256<<10))
	if err := st.Open(); err != nil {
		t.Fatal(err)
	}
	if err := st.MarkRecovered(); err != nil {
		t.Fatal(err)
	}
	for i := range keys {
		if err := st.Set(fmt.Sprintf("k%05d", i), value(i)); err != nil {
			t.Fatal(err)
		}
		if i%500 == 499 {
			if err := st.SetOffset(int64(i)); err != nil { // the changelog acknowledged them
				t.Fatal(err)
			}
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	var logs bytes.Buffer
	st = New(dir, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if err := st.Open(); err != nil {
		t.Fatal(err)
	}
	ssts, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
	damaged := 0
	for _, f := range ssts {
		data, err := os.ReadFile(f)
		if os.IsNotExist(err) {
			continue // compacted away since
		}
		if err != nil {
			t.Fatal(err)
		}
		damaged++
		// Overwrite the data blocks (the first half; footer and index at
		// the end stay readable).
		for i := 100; i < len(data)/2; i += 97 {
			data[i] ^= 0x5a
		}
		if err := os.WriteFile(f, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	failed, wrong := 0, 0
	var firstErr error
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("Get panicked on a corrupt sstable: %v", r)
			}
		}()
		for i := range keys {
			v, err := st.Get(fmt.Sprintf("k%05d", i))
			switch {
			case err != nil:
				failed++
				if firstErr == nil {
					firstErr = err
				}
			case !bytes.Equal(v, value(i)):
				wrong++
			}
		}
	}()
	t.Logf("%d sstables damaged: %d of %d reads failed, %d wrong; first error: %v", damaged, failed, keys, wrong, firstErr)
	if wrong > 0 {
		t.Errorf("%d reads returned a wrong value instead of an error", wrong)
	}
	if failed == 0 {
		t.Fatal("no read failed: the damage did not reach the data blocks")
	}
	if !corrupt(firstErr) || !bytes.Contains([]byte(firstErr.Error()), []byte(dir)) {
		t.Errorf("error %q: want a corruption error naming %s", firstErr, dir)
	}
	_ = st.Close()

	// Open again: the damaged store is discarded, not read again.
	logs.Reset()
	st = New(dir, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if err := st.Open(); err != nil {
		t.Fatalf("open after the damage: %v", err)
	}
	defer st.Close()
	for i := range keys {
		v, err := st.Get(fmt.Sprintf("k%05d", i))
		if err != nil {
			t.Fatalf("after reopening, get k%05d: %v (the corrupt store was not discarded)", i, err)
		}
		if v != nil && !bytes.Equal(v, value(i)) {
			t.Fatalf("after reopening, k%05d has a wrong value", i)
		}
	}
	if off, _ := st.GetOffset(-1); off != -1 {
		t.Errorf("after reopening: offset %d, want none (-1): the store must be restored from the changelog", off)
	}
	if !bytes.Contains(logs.Bytes(), []byte("corrupt")) {
		t.Errorf("reopening a corrupt store logged no reason: %s", logs.String())
	}
}
