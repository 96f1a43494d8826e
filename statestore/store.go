package statestore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/lovoo/goka/storage"
)

// Key prefixes of the Pebble key space. User keys sort between dataPrefix and
// dataEnd; everything else is internal.
const (
	dataPrefix    byte = 'd'
	dataEnd       byte = 'd' + 1
	lineagePrefix byte = 'l'
	metaPrefix    byte = 'm'
)

// offsetKey holds the changelog offset of the last write the store holds.
var offsetKey = []byte{metaPrefix, 'o', 'f', 'f', 's', 'e', 't'}

// ErrClosed is returned by operations on a closed (or never opened) Store.
var ErrClosed = errors.New("statestore: store is not open")

// pendingWrite is a table write that the changelog has not acknowledged yet.
type pendingWrite struct {
	key   string
	value []byte // nil for a delete
}

// overlayEntry is the newest pending write of a key and how many pending
// writes of that key are queued.
type overlayEntry struct {
	value []byte // nil for a delete
	count int
}

// Store is a goka storage.Storage on Pebble. See the package documentation
// for its durability contract. A Store is safe for concurrent use: goka's
// partition processor writes while producer callbacks acknowledge and views
// read from other goroutines.
type Store struct {
	dir string
	// topic and partition the Builder built the store for (for CommitHook).
	topic     string
	partition int32
	opts      options
	cache     *pebbleCache

	mu         sync.Mutex
	db         *pebble.DB
	lock       *pebble.Lock
	recovering bool
	batch      *pebble.Batch // reused for every commit

	// Last acknowledged changelog offset; known is false while there is
	// none (a new table).
	offset      int64
	offsetKnown bool
	// Offset stored in Pebble with the data.
	committed      int64
	committedKnown bool
	// In recovery mode: offset has not been staged in the recovery batch.
	offsetUnstaged bool
	// In recovery mode: the batch has its full recovery size.
	recoveryBatchSized bool

	// Writes not yet committed, oldest first: the first acked of them are
	// acknowledged by the changelog and wait to be committed as a group.
	pending     []pendingWrite
	pendingHead int
	acked       int
	overlay     map[string]overlayEntry
}

var _ storage.Storage = (*Store)(nil)

// New returns a Store kept in dir. The database is opened by Open, as goka
// does for every storage it builds.
func New(dir string, opts ...Option) *Store {
	o := buildOptions(opts)
	return newStore(dir, o, newPebbleCache(o.cacheSize))
}

func newStore(dir string, o options, c *pebbleCache) *Store {
	return &Store{dir: dir, opts: o, cache: c, overlay: make(map[string]overlayEntry)}
}

// Open opens (or creates) the Pebble database. The store starts in recovery
// mode until MarkRecovered is called.
func (s *Store) Open() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db != nil {
		return nil
	}
	if err := s.opts.fs.MkdirAll(s.dir, 0o755); err != nil {
		return fmt.Errorf("create state directory %s: %w", s.dir, err)
	}
	popts := &pebble.Options{
		FS:                          s.opts.fs,
		Cache:                       s.cache.acquire(),
		MemTableSize:                s.opts.memTableSize,
		MemTableStopWritesThreshold: 4,
		L0CompactionThreshold:       4,
		L0StopWritesThreshold:       24,
		MaxOpenFiles:                256,
		Logger:                      pebbleLogger{s.opts.logger},
		EventListener:               s.corruptionListener(),
		// Table statistics drive compaction heuristics for range deletions;
		// computing them for the lineage index's trim tombstones cost a fifth
		// of the write path's CPU in profiles, for no gain here.
		DisableTableStats: true,
	}
	for i := range popts.Levels {
		l := &popts.Levels[i]
		// Point reads (every cache miss) read and decompress one data
		// block: Pebble's and RocksDB's 4 KiB default, not larger ones
		// (32 KiB blocks made decompression 4% of a bank run at 3M).
		l.BlockSize = 4 << 10
		if s.opts.bloomBitsPerKey > 0 {
			l.FilterPolicy = bloom.FilterPolicy(s.opts.bloomBitsPerKey)
		}
		l.FilterType = pebble.TableFilter
	}
	lock, err := pebble.LockDirectory(s.dir, s.opts.fs)
	if err != nil {
		s.cache.release(popts.Cache)
		return fmt.Errorf("state directory %s is in use by another process (is another weft running with the same state directory?): %w", s.dir, err)
	}
	popts.Lock = lock
	if err := s.discardIfMarked(); err != nil {
		s.cache.release(popts.Cache)
		_ = lock.Close()
		return err
	}
	db, err := pebble.Open(s.dir, popts)
	if err != nil && corrupt(err) {
		// The store is a copy of the changelog: a corrupt one is
		// discarded and restored from it, not a reason to stop.
		s.opts.logger.Warn("local state is corrupt: discarding it; it is restored from the changelog", "dir", s.dir, "error", err)
		if derr := discardContents(s.opts.fs, s.dir); derr != nil {
			err = errors.Join(err, derr)
		} else {
			db, err = pebble.Open(s.dir, popts)
		}
	}
	s.cache.release(popts.Cache)
	if err != nil {
		_ = lock.Close()
		return fmt.Errorf("open store %s: %w", s.dir, err)
	}
	s.lock = lock
	s.db = db
	s.batch = db.NewBatch() // replaced by a full-size batch on the first recovery write
	s.recovering = true
	s.offset, s.offsetKnown, err = readOffset(db)
	s.committed, s.committedKnown = s.offset, s.offsetKnown
	if err != nil {
		_ = db.Close()
		_ = lock.Close()
		s.db, s.lock = nil, nil
		return fmt.Errorf("open store %s: %w", s.dir, err)
	}
	return nil
}

func readOffset(db *pebble.DB) (int64, bool, error) {
	v, closer, err := db.Get(offsetKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read stored offset: %w", err)
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, false, fmt.Errorf("stored offset has %d bytes, want 8", len(v))
	}
	return int64(binary.BigEndian.Uint64(v)), true, nil
}

// Close commits what recovery has loaded, drops writes the changelog has not
// acknowledged, syncs the write-ahead log and closes the database.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return nil
	}
	var errs []error
	if s.recovering {
		if err := s.commitRecoveryLocked(true); err != nil {
			errs = append(errs, fmt.Errorf("commit recovery batch: %w", err))
		}
	}
	if !s.recovering {
		if err := s.commitAckedLocked(); err != nil {
			errs = append(errs, fmt.Errorf("commit acknowledged writes: %w", err))
		}
	}
	if n := len(s.pending) - s.pendingHead - s.acked; n > 0 {
		s.opts.logger.Debug("dropping table writes the changelog has not acknowledged; recovery restores them",
			"dir", s.dir, "writes", n)
	}
	s.pending, s.pendingHead, s.acked = nil, 0, 0
	clear(s.overlay)
	if err := s.db.LogData(nil, pebble.Sync); err != nil {
		errs = append(errs, fmt.Errorf("sync write-ahead log: %w", err))
	}
	_ = s.batch.Close()
	if err := s.db.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close pebble: %w", err))
	}
	if err := s.lock.Close(); err != nil {
		errs = append(errs, fmt.Errorf("release directory lock: %w", err))
	}
	s.db, s.batch, s.lock = nil, nil, nil
	if len(errs) > 0 {
		return fmt.Errorf("close store %s: %w", s.dir, errors.Join(errs...))
	}
	return nil
}

// Dir returns the directory of the store.
func (s *Store) Dir() string { return s.dir }

// Has reports whether key has a value.
func (s *Store) Has(key string) (bool, error) {
	v, err := s.Get(key)
	return v != nil, err
}

// Get returns the value of key, or nil if it has none. Pending writes are
// visible.
func (s *Store) Get(key string) ([]byte, error) {
	s.mu.Lock()
	if s.db == nil {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	if e, ok := s.overlay[key]; ok {
		s.mu.Unlock()
		return e.value, nil
	}
	db := s.db
	s.mu.Unlock()

	var buf [64]byte
	v, closer, err := db.Get(dataKey(buf[:0], key))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		if corrupt(err) {
			return nil, fmt.Errorf("the local state in %s is corrupt (it is discarded and restored from the changelog when it is opened again): get %q: %w", s.dir, key, err)
		}
		return nil, fmt.Errorf("get %q from %s: %w", key, s.dir, err)
	}
	out := make([]byte, len(v))
	copy(out, v)
	_ = closer.Close()
	return out, nil
}

// Set stores value under key. In recovery mode it joins the recovery batch;
// otherwise it waits in the pending queue for the changelog acknowledgement.
func (s *Store) Set(key string, value []byte) error {
	if value == nil {
		value = []byte{}
	}
	return s.write(key, value)
}

// Delete removes key.
func (s *Store) Delete(key string) error {
	return s.write(key, nil)
}

func (s *Store) write(key string, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return ErrClosed
	}
	if s.recovering {
		return s.writeRecovery(key, value)
	}
	s.pending = append(s.pending, pendingWrite{key: key, value: value})
	e := s.overlay[key]
	s.overlay[key] = overlayEntry{value: value, count: e.count + 1}
	return nil
}

func (s *Store) writeRecovery(key string, value []byte) error {
	if !s.recoveryBatchSized {
		// Allocate the large recovery buffer only for partitions that have
		// something to recover.
		_ = s.batch.Close()
		s.batch = s.db.NewBatchWithSize(s.recoveryBatchCap())
		s.recoveryBatchSized = true
	}
	return s.stageWrite(key, value)
}

// stageWrite adds a write of key (a delete when value is nil) and its
// lineage entry to the batch.
func (s *Store) stageWrite(key string, value []byte) error {
	var buf [64]byte
	k := dataKey(buf[:0], key)
	var err error
	if value == nil {
		err = s.batch.Delete(k, nil)
	} else {
		err = s.batch.Set(k, value, nil)
	}
	if err == nil {
		err = s.stageLineage(key, value)
	}
	if err != nil {
		return fmt.Errorf("stage write of %q in %s: %w", key, s.dir, err)
	}
	return nil
}

// GetOffset returns the changelog offset of the last acknowledged write the
// store holds (readable now; durable once committed), or def if none.
func (s *Store) GetOffset(def int64) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return 0, ErrClosed
	}
	if !s.offsetKnown {
		return def, nil
	}
	return s.offset, nil
}

// SetOffset records that the changelog holds everything up to offset. In
// recovery mode the offset joins the recovery batch. Otherwise it commits
// the pending writes up to offset together with the offset in one batch.
func (s *Store) SetOffset(offset int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return ErrClosed
	}
	if s.recovering {
		// The offset is staged once per recovery batch, when the batch is
		// committed (commitRecoveryLocked): writing it with every record
		// would double the entries Pebble has to sort and flush.
		s.offset, s.offsetKnown = offset, true
		s.offsetUnstaged = true
		if s.batch.Len() >= s.opts.recoveryBatchBytes {
			return s.commitRecoveryLocked(false)
		}
		return nil
	}
	if offset < 0 || (s.offsetKnown && offset <= s.offset) {
		return nil // not an offset, or a late or repeated acknowledgement
	}
	n := s.acknowledgedWrites(offset)
	s.notifyAcked(n)
	s.acked += n
	s.offset, s.offsetKnown = offset, true
	if s.acked >= s.opts.commitEvery {
		return s.commitAckedLocked()
	}
	return nil
}

// commitAckedLocked commits the acknowledged pending writes together with
// the offset of the last acknowledgement in one batch.
func (s *Store) commitAckedLocked() error {
	if !s.offsetKnown || (s.acked == 0 && s.committedKnown && s.committed == s.offset) {
		return nil
	}
	for i := s.pendingHead; i < s.pendingHead+s.acked; i++ {
		if err := s.stageWrite(s.pending[i].key, s.pending[i].value); err != nil {
			s.batch.Reset()
			return err
		}
	}
	if err := s.batch.Set(offsetKey, encodeOffset(s.offset), nil); err != nil {
		s.batch.Reset()
		return fmt.Errorf("stage offset %d in %s: %w", s.offset, s.dir, err)
	}
	if err := s.commitLocked(); err != nil {
		return err
	}
	s.popPending(s.acked)
	s.acked = 0
	s.committed, s.committedKnown = s.offset, true
	return nil
}

// acknowledgedWrites returns how many pending writes an acknowledgement of
// offset covers. Each table write is one changelog record, so with a known
// committed offset the answer is the distance between the two offsets. With
// no stored offset (a new table) the first acknowledged write sits at the
// offset itself when the partition started empty, which goka does not
// acknowledge for offset 0; otherwise it is the first pending Set.
func (s *Store) acknowledgedWrites(offset int64) int {
	base := s.pendingHead + s.acked // first unacknowledged write
	queued := len(s.pending) - base
	if s.offsetKnown {
		return int(min(offset-s.offset, int64(queued)))
	}
	if offset < int64(queued) && s.pending[base+int(offset)].value != nil {
		return int(offset) + 1
	}
	for i := base; i < len(s.pending); i++ {
		if s.pending[i].value != nil {
			return i - base + 1
		}
	}
	return queued
}

func (s *Store) popPending(n int) {
	for i := s.pendingHead; i < s.pendingHead+n; i++ {
		w := &s.pending[i]
		e := s.overlay[w.key]
		if e.count <= 1 {
			delete(s.overlay, w.key)
		} else {
			e.count--
			s.overlay[w.key] = e
		}
		*w = pendingWrite{}
	}
	s.pendingHead += n
	if s.pendingHead == len(s.pending) {
		s.pending, s.pendingHead = s.pending[:0], 0
	} else if s.pendingHead > 1024 && s.pendingHead*2 > len(s.pending) {
		rest := copy(s.pending, s.pending[s.pendingHead:])
		s.pending, s.pendingHead = s.pending[:rest], 0
	}
}

func (s *Store) commitLocked() error {
	if err := s.batch.Commit(pebble.NoSync); err != nil {
		s.batch.Reset()
		return fmt.Errorf("commit batch to %s: %w", s.dir, err)
	}
	s.batch.Reset()
	return nil
}

// commitRecoveryLocked commits the recovery batch, if it holds anything,
// together with the offset of the last record loaded, and starts a new
// batch unless last is set (Close, MarkRecovered). A batch committed here
// before the end is full; every recovery batch is allocated at its final size:
// Pebble drops the buffer of a large batch at commit (the batch becomes a
// memtable), and growing a new one by doubling would copy every batch about
// twice (and peak at twice the threshold). Open allocates the first recovery
// batch the same way; MarkRecovered releases it.
func (s *Store) commitRecoveryLocked(last bool) error {
	if s.batch.Count() == 0 && !s.offsetUnstaged {
		return nil
	}
	if s.offsetUnstaged {
		if err := s.batch.Set(offsetKey, encodeOffset(s.offset), nil); err != nil {
			return fmt.Errorf("stage offset %d in %s: %w", s.offset, s.dir, err)
		}
	}
	if err := s.batch.Commit(pebble.NoSync); err != nil {
		s.batch.Reset()
		return fmt.Errorf("commit recovery batch to %s: %w", s.dir, err)
	}
	s.offsetUnstaged = false
	s.committed, s.committedKnown = s.offset, s.offsetKnown
	if last {
		s.batch.Reset()
		return nil
	}
	_ = s.batch.Close()
	s.batch = s.db.NewBatchWithSize(s.recoveryBatchCap())
	return nil
}

// recoveryBatchCap is the buffer size of a recovery batch: the commit
// threshold plus room for the record that crosses it.
func (s *Store) recoveryBatchCap() int {
	return s.opts.recoveryBatchBytes + s.opts.recoveryBatchBytes/16 + 64<<10
}

// MarkRecovered commits the rest of the recovery batch and switches the
// store to normal mode.
func (s *Store) MarkRecovered() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return ErrClosed
	}
	if !s.recovering {
		return nil
	}
	if err := s.commitRecoveryLocked(true); err != nil {
		return err
	}
	s.recovering = false
	// Drop the large recovery buffer; normal-mode batches are small.
	_ = s.batch.Close()
	s.batch = s.db.NewBatch()
	return nil
}

// Recovering reports whether the store is still in recovery mode.
func (s *Store) Recovering() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.recovering
}

// IsOpen reports whether the store is open (goka opens it when the
// partition is assigned and closes it when it is revoked).
func (s *Store) IsOpen() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.db != nil
}

// Readable reports whether the store is open and recovered: its values
// are current, not a restore in progress.
func (s *Store) Readable() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.db != nil && !s.recovering
}

// Pending returns the number of writes waiting for the changelog's
// acknowledgement.
func (s *Store) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending) - s.pendingHead - s.acked
}

func dataKey(buf []byte, key string) []byte {
	buf = append(buf, dataPrefix)
	return append(buf, key...)
}

func encodeOffset(offset int64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(offset))
	return b[:]
}

// pebbleLogger routes Pebble's log output to slog: information at debug
// level, errors as errors. Fatal messages are Pebble invariant violations;
// like Pebble's own logger it does not return from them.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug("pebble: " + fmt.Sprintf(format, args...))
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error("pebble: " + fmt.Sprintf(format, args...))
}

func (p pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.l.Error("pebble fatal: " + msg)
	panic("pebble: " + msg)
}
