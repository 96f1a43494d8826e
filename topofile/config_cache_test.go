package topofile_test

import (
	"strings"
	"testing"
	"time"

	"github.com/weftstream/weft/topofile"
)

const cacheTopology = `app: cached
%s
streams:
  in: {topic: in, codec: string}
pipelines:
  - {name: out, from: in, steps: [{to: {topic: out, codec: string}}]}
`

func TestRecordCacheSettings(t *testing.T) {
	for _, c := range []struct {
		settings string
		size     int64 // -1: not set
		every    time.Duration
		// what RecordCache says is in effect: the defaults (10 MiB,
		// 1s) where not set
		effSize  int64
		effEvery time.Duration
	}{
		{"", -1, 0, 10 << 20, time.Second},
		{"cache_max_bytes: 1048576\ncommit_interval: 30s", 1 << 20, 30 * time.Second, 1 << 20, 30 * time.Second},
		{"cache_max_bytes: 10MiB", 10 << 20, 0, 10 << 20, time.Second},
		{"cache_max_bytes: 64KiB\ncommit_interval: 250ms", 64 << 10, 250 * time.Millisecond, 64 << 10, 250 * time.Millisecond},
		{"cache_max_bytes: 0", 0, 0, 0, time.Second},
		{"commit_interval: 5s", -1, 5 * time.Second, 10 << 20, 5 * time.Second},
	} {
		f, err := topofile.Load("cache.yaml", []byte(strings.Replace(cacheTopology, "%s", c.settings, 1)))
		if err != nil {
			t.Fatalf("%q: %v", c.settings, err)
		}
		size := int64(-1)
		if f.CacheMaxBytes != nil {
			size = *f.CacheMaxBytes
		}
		if size != c.size || f.CommitInterval != c.every {
			t.Errorf("%q: cache_max_bytes %d, commit_interval %s; want %d, %s", c.settings, size, f.CommitInterval, c.size, c.every)
		}
		if size, every := f.RecordCache(); size != c.effSize || every != c.effEvery {
			t.Errorf("%q: RecordCache() = %d, %s; want %d, %s", c.settings, size, every, c.effSize, c.effEvery)
		}
	}
}

func TestRecordCacheOfNoFile(t *testing.T) {
	var f *topofile.File // weft run without a topology file
	if size, every := f.RecordCache(); size != 10<<20 || every != time.Second {
		t.Errorf("RecordCache() of no file = %d, %s; want the defaults 10485760, 1s", size, every)
	}
}

func TestRecordCacheSettingsErrors(t *testing.T) {
	for settings, want := range map[string]string{
		"cache_max_bytes: -1":   "cache.yaml:2:18: cache_max_bytes must be a number of bytes",
		"cache_max_bytes: 10MB": "cache.yaml:2:18: cache_max_bytes must be a number of bytes",
		"commit_interval: 0s":   "cache.yaml:2:18: commit_interval: the duration must be positive",
		"commit_interval: soon": "cache.yaml:2:18: commit_interval: bad duration",
		"cache_max_byte: 10":    "cache_max_byte",
	} {
		_, err := topofile.Load("cache.yaml", []byte(strings.Replace(cacheTopology, "%s", settings, 1)))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", settings, err, want)
		}
	}
}
