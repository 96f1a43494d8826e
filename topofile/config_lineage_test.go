package topofile_test

import (
	"strings"
	"testing"
	"time"

	"github.com/weftstream/weft/topofile"
)

func TestLineageSettings(t *testing.T) {
	for settings, want := range map[string]struct {
		versions  int
		retention time.Duration
	}{
		"":                                      {0, 0},
		"lineage: {versions: 8, retention: 7d}": {8, 7 * 24 * time.Hour},
		"lineage: {retention: 36h}":             {0, 36 * time.Hour},
		"lineage: {retention: 1.5d}":            {0, 36 * time.Hour},
		"lineage: {versions: 20}":               {20, 0},
	} {
		f, err := topofile.Load("lineage.yaml", []byte(strings.Replace(cacheTopology, "%s", settings, 1)))
		if err != nil {
			t.Fatalf("%q: %v", settings, err)
		}
		if f.Lineage.Versions != want.versions || f.Lineage.Retention != want.retention {
			t.Errorf("%q: versions %d, retention %s; want %d, %s", settings, f.Lineage.Versions, f.Lineage.Retention, want.versions, want.retention)
		}
	}
	for settings, want := range map[string]string{
		"lineage: {versions: 0}":       "lineage.yaml:2:21: lineage.versions must be a whole number of at least 1",
		"lineage: {versions: many}":    "lineage.versions must be a whole number",
		"lineage: {retention: a week}": "lineage.yaml:2:22: lineage.retention: bad duration",
		"lineage: {retention: -1d}":    "lineage.retention: bad duration",
		"lineage: {retension: 7d}":     "retension",
	} {
		_, err := topofile.Load("lineage.yaml", []byte(strings.Replace(cacheTopology, "%s", settings, 1)))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", settings, err, want)
		}
	}
}
