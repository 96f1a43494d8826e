package statestore

import (
	"log/slog"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Defaults for the tunables of a Store.
const (
	DefaultCacheSize          = 64 << 20 // shared block cache per Builder
	DefaultMemTableSize       = 16 << 20
	DefaultBloomBitsPerKey    = 10
	DefaultRecoveryBatchBytes = 16 << 20
	DefaultCommitEvery        = 512
	DefaultLineageVersions    = 8
)

// Option configures a Store or a Builder.
type Option func(*options)

type options struct {
	cacheSize          int64
	memTableSize       uint64
	bloomBitsPerKey    int
	recoveryBatchBytes int
	commitEvery        int
	lineageVersions    int
	lineageValues      bool
	fs                 vfs.FS
	logger             *slog.Logger
	commitHooks        *commitHooks // shared by the stores of a Builder
}

func defaultOptions() options {
	return options{
		cacheSize:          DefaultCacheSize,
		memTableSize:       DefaultMemTableSize,
		bloomBitsPerKey:    DefaultBloomBitsPerKey,
		recoveryBatchBytes: DefaultRecoveryBatchBytes,
		commitEvery:        DefaultCommitEvery,
		lineageVersions:    DefaultLineageVersions,
		lineageValues:      true,
		fs:                 vfs.Default,
		logger:             slog.New(slog.DiscardHandler),
		commitHooks:        new(commitHooks),
	}
}

func buildOptions(opts []Option) options {
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// WithCacheSize sets the size in bytes of the Pebble block cache. A Builder
// shares one cache among all the partitions it opens.
func WithCacheSize(bytes int64) Option {
	return func(o *options) {
		if bytes > 0 {
			o.cacheSize = bytes
		}
	}
}

// WithMemTableSize sets the size in bytes of each Pebble memtable.
func WithMemTableSize(bytes uint64) Option {
	return func(o *options) {
		if bytes > 0 {
			o.memTableSize = bytes
		}
	}
}

// WithBloomFilter sets the bits per key of the bloom filters kept for every
// level; 0 disables them. Bloom filters make lookups of absent keys (the
// first write of every key) cheap.
func WithBloomFilter(bitsPerKey int) Option {
	return func(o *options) {
		if bitsPerKey >= 0 {
			o.bloomBitsPerKey = bitsPerKey
		}
	}
}

// WithRecoveryBatchSize sets how many bytes of changelog records the store
// collects in one unsynced batch while recovering.
func WithRecoveryBatchSize(bytes int) Option {
	return func(o *options) {
		if bytes > 0 {
			o.recoveryBatchBytes = bytes
		}
	}
}

// WithCommitEvery sets how many acknowledged writes the store collects
// before it commits them (with their changelog offset) in one batch. Reads
// see them at once either way; a crash loses at most this many
// acknowledged writes locally, and goka's recovery reads them back from
// the changelog. 1 commits on every acknowledgement.
func WithCommitEvery(writes int) Option {
	return func(o *options) {
		if writes > 0 {
			o.commitEvery = writes
		}
	}
}

// WithLineage sets how many versions of each key the lineage index keeps
// (0 turns it off) and whether it keeps their values or only their trace
// metadata. The default keeps the last 8 versions with values.
func WithLineage(versions int, keepValues bool) Option {
	return func(o *options) {
		if versions >= 0 {
			o.lineageVersions = versions
		}
		o.lineageValues = keepValues
	}
}

// WithFS sets the file system Pebble uses, e.g. vfs.NewMem() or a crashable
// in-memory file system in tests. The default is the operating system's.
func WithFS(fs vfs.FS) Option {
	return func(o *options) {
		if fs != nil {
			o.fs = fs
		}
	}
}

// WithLogger sets the logger for store events (opening, recovery, dropped
// pending writes). The default discards everything.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.logger = l
		}
	}
}
