package statestore

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// DiscardTopic deletes the local stores of every partition of topic under
// the builder's directory, so that goka restores them from the changelog.
// It refuses while another process holds one of them open. Call it before
// any of the topic's stores is built.
func (b *Builder) DiscardTopic(topic string) error {
	if topic == "" || filepath.Base(topic) != topic || topic == "." || topic == ".." {
		return fmt.Errorf("discard state: topic name %q cannot be a directory name", topic)
	}
	dir := filepath.Join(b.dir, topic)
	parts, err := b.opts.fs.List(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("discard state of %s: %w", topic, err)
	}
	for _, p := range parts {
		pdir := filepath.Join(dir, p)
		lock, err := pebble.LockDirectory(pdir, b.opts.fs)
		if err != nil {
			return fmt.Errorf("state directory %s is in use by another process (is another weft running with the same state directory?): %w", pdir, err)
		}
		err = b.opts.fs.RemoveAll(pdir)
		_ = lock.Close()
		if err != nil {
			return fmt.Errorf("discard state of %s: %w", topic, err)
		}
	}
	return b.opts.fs.RemoveAll(dir)
}

// Dir returns the directory the builder keeps its stores under.
func (b *Builder) Dir() string { return b.dir }

// corrupt reports whether err from pebble.Open says the database's files
// are damaged (a torn or overwritten MANIFEST, a bad checksum).
func corrupt(err error) bool {
	return pebble.IsCorruptionError(err) || strings.Contains(err.Error(), "malformed manifest")
}

// discardContents removes everything in dir but the directory lock the
// caller holds.
func discardContents(fs vfs.FS, dir string) error {
	names, err := fs.List(dir)
	if err != nil {
		return fmt.Errorf("discard corrupt state in %s: %w", dir, err)
	}
	for _, n := range names {
		if n == "LOCK" {
			continue
		}
		if err := fs.RemoveAll(filepath.Join(dir, n)); err != nil {
			return fmt.Errorf("discard corrupt state in %s: %w", dir, err)
		}
	}
	return nil
}

// corruptMarker is the file a store leaves in its directory when Pebble
// finds damaged data while the store is open: the next Open discards the
// store (goka restores it from the changelog) instead of reading the
// damage again.
const corruptMarker = "WEFT-CORRUPT"

// corruptionListener is the store's Pebble event listener: damage found
// while reading (a bad block checksum) is logged and marked for the next
// Open, and the read returns its error. Pebble's default listener calls
// the logger's Fatalf, which panics.
func (s *Store) corruptionListener() *pebble.EventListener {
	var marked atomic.Bool // once per open store: every read of the damage reports it
	return &pebble.EventListener{DataCorruption: func(info pebble.DataCorruptionInfo) {
		if marked.Swap(true) {
			return
		}
		s.opts.logger.Error("local state is corrupt: reads of it fail; it is discarded and restored from the changelog when the store opens again",
			"dir", s.dir, "file", info.Path, "error", info.Details)
		f, err := s.opts.fs.Create(filepath.Join(s.dir, corruptMarker), vfs.WriteCategoryUnspecified)
		if err == nil {
			err = errors.Join(f.Sync(), f.Close())
		}
		if err != nil {
			s.opts.logger.Error("could not mark the corrupt local state for discarding", "dir", s.dir, "error", err)
		}
	}}
}

// discardIfMarked discards the contents of the store's directory if a
// store found them corrupt before (see corruptMarker).
func (s *Store) discardIfMarked() error {
	if _, err := s.opts.fs.Stat(filepath.Join(s.dir, corruptMarker)); err != nil {
		return nil
	}
	s.opts.logger.Warn("local state was found corrupt: discarding it; it is restored from the changelog", "dir", s.dir)
	return discardContents(s.opts.fs, s.dir)
}
