package processors_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/weftstream/weft/internal/kafkatest"
	"github.com/weftstream/weft/processors"
)

// Before the record cache flushes, every read of the TableReader sees the
// cached values, as Get does: the newest version heads the lineage, as_of
// (by version and by time) finds it, and a scan lists every key with its
// cached value; after a flush the answers are the same (the version is
// not listed twice).
func TestIntegrationTableReaderSeesTheRecordCache(t *testing.T) {
	e := newEnv(t)
	input, group := kafkatest.Topic(t, "cached-reads"), kafkatest.Group(t, "counter")
	// k0 gets 1 record, k1 2, k2 3: counts 1, 2, 3.
	var recs [][3]string
	for k := range 3 {
		for range k + 1 {
			recs = append(recs, [3]string{"k" + strconv.Itoa(k), "x", ""})
		}
	}
	e.produce(input, recs...)
	rt := processors.NewRuntime()
	r := e.start(rt, counterGraph(rt, group, input), t.TempDir(), processors.WithRecordCache(processors.DefaultCacheMaxBytes, time.Hour))
	waitTally(t, r, int64(len(recs)))
	tr := r.p.TableReader()
	kafkatest.WaitFor(t, waitTimeout, "every partition served", func() bool { return len(tr.Served()) == int(tr.Partitions()) })

	check := func(when string) {
		t.Helper()
		for k := range 3 {
			key, want := "k"+strconv.Itoa(k), uint64(k+1)
			versions, err := tr.Lineage(key)
			if err != nil || len(versions) == 0 || versions[0].Version != want {
				t.Fatalf("%s: lineage of %s: %d versions, newest %v (%v), want newest version %d", when, key, len(versions), first(versions), err, want)
			}
			for i := 1; i < len(versions); i++ {
				if versions[i].Version >= versions[i-1].Version {
					t.Fatalf("%s: lineage of %s lists version %d after %d", when, key, versions[i].Version, versions[i-1].Version)
				}
			}
			if env, ok, err := tr.GetAsOf(key, want); err != nil || !ok || string(env.Value) != strconv.Itoa(k+1) {
				t.Fatalf("%s: %s as of version %d: %q %v %v, want %d", when, key, want, env.Value, ok, err, k+1)
			}
			if env, ok, err := tr.GetAsOfTime(key, time.Now().Add(time.Hour)); err != nil || !ok || env.Version != want {
				t.Fatalf("%s: %s as of now: version %d %v %v, want %d", when, key, env.Version, ok, err, want)
			}
		}
		entries, more, _, err := tr.Scan("k", "", 10)
		if err != nil || more || len(entries) != 3 {
			t.Fatalf("%s: scan: %d entries, more %v, %v; want 3", when, len(entries), more, err)
		}
		for i, en := range entries {
			if en.Key != "k"+strconv.Itoa(i) || string(en.Envelope.Value) != strconv.Itoa(i+1) {
				t.Fatalf("%s: scan entry %d: %s = %q, want k%d = %d", when, i, en.Key, en.Envelope.Value, i, i+1)
			}
		}
		// A page of one after k0 is k1, with more to come.
		if entries, more, _, err := tr.Scan("k", "k0", 1); err != nil || !more || len(entries) != 1 || entries[0].Key != "k1" {
			t.Fatalf("%s: scan after k0, limit 1: %v more %v %v, want k1 and more", when, entries, more, err)
		}
	}
	check("before the flush")
	if err := r.p.Flush(); err != nil {
		t.Fatal(err)
	}
	check("after the flush")
}

func first[T any](s []T) any {
	if len(s) == 0 {
		return nil
	}
	return s[0]
}
