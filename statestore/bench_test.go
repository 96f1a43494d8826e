package statestore

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lovoo/goka/storage"
	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// BenchmarkStore compares weft's Pebble store with goka's default LevelDB
// store (storage.DefaultBuilder, i.e. LevelDB with default options: what goka
// users get) in the same run, on the same keys, values and access patterns:
//
//   - Get: random reads (90% hits, 10% misses) of a recovered store holding
//     benchKeys keys with ~100-byte JSON values, all of it compacted to
//     disk tables (loaded, compacted, closed and reopened).
//   - Set: the processor write path as goka drives it, Set(key, value) then
//     SetOffset(changelog offset) per write, random keys over the same
//     pre-populated store, recovered (normal) mode. Neither store syncs.
//   - RecoveryLoad: a fresh store in recovery mode loads benchKeys changelog
//     records (Set + SetOffset, offsets increasing), then MarkRecovered.
//
// The values above are raw bytes: weft sees no envelope and writes no
// lineage. The Envelope variants run the same operations on the values weft
// really stores, envelopes (AppendEnvelope: writer span, version, event time,
// one source offset, the ~100-byte JSON value), given to goka's store as the
// same bytes:
//
//   - SetEnvelope: as Set, every write the next version of its key (a
//     per-key counter starting at the key's version in the table), so that
//     weft writes a lineage entry per Set and trims every N versions.
//   - RecoveryLoadEnvelope: as RecoveryLoad, from a compacted changelog
//     whose record of each key has a version between 1 and 24; weft
//     rebuilds the lineage index from it.
//
// weft-pebble runs with the default lineage (DefaultLineageVersions with
// values); weft-pebble-nolineage (WithLineage(0, false)) shows what the
// lineage index costs.
//
// Each operation runs goka-leveldb first and then the weft engines; each weft
// sub-benchmark reports the speed-up over goka as the "x-vs-goka" metric, and
// each operation prints a line per weft engine "BenchmarkStore/Get: Get: weft
// ..., goka ..., speed-up ...x".
//
//	go test -run XXX -bench BenchmarkStore ./statestore/
//
// -count=N repeats each sub-benchmark N times in a row (all goka runs, then
// all weft runs), so on a noisy machine the two engines see different load.
// For ratios, repeat whole runs instead, e.g.
//
//	for i in 1 2 3 4 5; do go test -count=1 -run XXX -bench BenchmarkStore ./statestore/; done
func BenchmarkStore(b *testing.B) {
	fx := &benchFixtures{root: b.TempDir()}
	b.Run("Get", func(b *testing.B) { compareEngines(b, "Get", 2, benchEngines, benchGet(fx)) })
	b.Run("Set", func(b *testing.B) { compareEngines(b, "Set", 1.5, benchEngines, benchSet(fx, false)) })
	b.Run("RecoveryLoad", func(b *testing.B) {
		compareEngines(b, "RecoveryLoad", 3, benchEngines, benchRecoveryLoad(fx, false))
	})
	b.Run("SetEnvelope", func(b *testing.B) {
		compareEngines(b, "SetEnvelope", 1.5, benchEnvelopeEngines, benchSet(fx, true))
	})
	b.Run("RecoveryLoadEnvelope", func(b *testing.B) {
		compareEngines(b, "RecoveryLoadEnvelope", 3, benchEnvelopeEngines, benchRecoveryLoad(fx, true))
	})
}

const (
	benchKeys      = 200_000 // keys of the table (and records of a recovery load)
	benchPatternSz = 1 << 18 // length of the precomputed random access patterns
)

// benchEngine is one storage implementation under comparison.
type benchEngine struct {
	name string
	// open opens (or creates) the store in dir; it is not recovered yet.
	open func(b *testing.B, dir string) storage.Storage
	// compact flushes and fully compacts the closed store in dir, so that
	// all of its data is in disk tables.
	compact func(b *testing.B, dir string)
}

var gokaEngine = benchEngine{
	name: "goka-leveldb",
	open: func(b *testing.B, dir string) storage.Storage {
		// storage.DefaultBuilder keeps partition p of topic t in path/t.p.
		st, err := storage.DefaultBuilder(dir)("table", 0)
		mustOK(b, err)
		mustOK(b, st.Open())
		return st
	},
	compact: func(b *testing.B, dir string) {
		db, err := leveldb.OpenFile(filepath.Join(dir, "table.0"), nil)
		mustOK(b, err)
		mustOK(b, db.CompactRange(util.Range{}))
		mustOK(b, db.Close())
	},
}

// weftEngine is weft's store built with opts.
func weftEngine(name string, opts ...Option) benchEngine {
	return benchEngine{
		name: name,
		open: func(b *testing.B, dir string) storage.Storage {
			st, err := NewBuilder(dir, opts...).Build("table", 0)
			mustOK(b, err)
			mustOK(b, st.Open())
			return st
		},
		compact: func(b *testing.B, dir string) {
			st := New(filepath.Join(dir, "table", "0"), opts...)
			mustOK(b, st.Open())
			mustOK(b, st.db.Flush())
			mustOK(b, st.db.Compact(context.Background(), []byte{0}, []byte{0xff}, true))
			mustOK(b, st.Close())
		},
	}
}

var (
	// benchEngines are compared on raw values. The first is the baseline.
	benchEngines = []benchEngine{gokaEngine, weftEngine("weft-pebble")}
	// benchEnvelopeEngines are compared on envelope values, weft with the
	// default lineage index and without one.
	benchEnvelopeEngines = []benchEngine{
		gokaEngine,
		weftEngine("weft-pebble"),
		weftEngine("weft-pebble-nolineage", WithLineage(0, false)),
	}
)

// benchOp runs one engine's sub-benchmark. It returns a cleanup function
// that runs after the sub-benchmark (all its rounds) has finished.
type benchOp func(b *testing.B, e benchEngine) (run func(b *testing.B), cleanup func())

// compareEngines runs op for every engine as sub-benchmarks and logs the
// ratio of each weft engine to goka (engines[0]).
func compareEngines(b *testing.B, op string, target float64, engines []benchEngine, bench benchOp) {
	nsPerOp := map[string]float64{}
	goka := engines[0].name
	for _, e := range engines {
		run, cleanup := bench(b, e)
		b.Run(e.name, func(b *testing.B) {
			run(b)
			ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			nsPerOp[e.name] = ns
			if g, ok := nsPerOp[goka]; ok && e.name != goka {
				b.ReportMetric(g/ns, "x-vs-goka")
			}
		})
		cleanup()
	}
	g, ok := nsPerOp[goka]
	if !ok {
		return
	}
	for _, e := range engines[1:] {
		weft, ok := nsPerOp[e.name]
		if !ok {
			continue
		}
		verdict := "meets"
		if g/weft < target {
			verdict = "MISSES"
		}
		label := "weft"
		if e.name != "weft-pebble" {
			label = e.name
		}
		// b.Logf of a benchmark with sub-benchmarks only shows with -v.
		fmt.Printf("%s: %s: %s %s/op, goka %s/op, speed-up %.2fx (%s target %.1fx)\n",
			b.Name(), op, label, time.Duration(weft), time.Duration(g), g/weft, verdict, target)
	}
}

// benchData is the shared key set, values and random access patterns.
type benchData struct {
	keys     []string // keys of the table, in load order
	misses   []string // keys in the same key range that are never written
	values   [][]byte // one ~100-byte JSON value per key
	gets     []string // random reads: 90% keys, 10% misses
	setKeys  []int    // random key indices for writes
	loadKeys []int    // key indices of a changelog to recover

	// Envelope variants: the version of each key in the changelog to
	// recover (the number of updates the compacted changelog has seen) and
	// the envelope of its value.
	loadVersions []uint64
	envValues    [][]byte
}

var benchDataOnce = sync.OnceValue(func() *benchData {
	rng := rand.New(rand.NewPCG(42, 7))
	d := &benchData{
		keys:     make([]string, benchKeys),
		misses:   make([]string, benchKeys),
		values:   make([][]byte, benchKeys),
		gets:     make([]string, benchPatternSz),
		setKeys:  make([]int, benchPatternSz),
		loadKeys: make([]int, benchKeys),
	}
	// Present and absent keys interleave, so that misses fall inside the
	// key range of the tables and the stores cannot rule them out cheaply
	// by key range alone.
	for i := range benchKeys {
		d.keys[i] = fmt.Sprintf("customer-%08d", 2*i)
		d.misses[i] = fmt.Sprintf("customer-%08d", 2*i+1)
		d.values[i] = benchValue(rng, i, 1)
	}
	for i := range d.gets {
		if rng.IntN(10) == 0 {
			d.gets[i] = d.misses[rng.IntN(benchKeys)]
		} else {
			d.gets[i] = d.keys[rng.IntN(benchKeys)]
		}
	}
	for i := range d.setKeys {
		d.setKeys[i] = rng.IntN(benchKeys)
	}
	// A changelog: every key at least once (so the recovered table has all
	// keys), in random order.
	for i, k := range rng.Perm(benchKeys) {
		d.loadKeys[i] = k
	}
	// Drawn after the raw data, which stays as it was.
	d.loadVersions = make([]uint64, benchKeys)
	d.envValues = make([][]byte, benchKeys)
	for i := range benchKeys {
		d.loadVersions[i] = 1 + rng.Uint64N(24)
		d.envValues[i] = benchEnvelope(nil, rng, d.loadVersions[i], int64(i), d.values[i])
	}
	return d
})

var benchEventTime = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// benchEnvelope appends the envelope a weft processor stores for a value:
// the writer span, the key's version, the event time and the offset of the
// source record that produced it.
func benchEnvelope(buf []byte, rng *rand.Rand, version uint64, source int64, value []byte) []byte {
	env := Envelope{
		Version:   version,
		EventTime: benchEventTime.Add(time.Duration(source) * time.Millisecond),
		Sources:   []SourceOffset{{Topic: "orders", Partition: 3, Offset: 1_000_000 + source}},
		Value:     value,
	}
	binary.LittleEndian.PutUint64(env.Writer.TraceID[:8], rng.Uint64())
	binary.LittleEndian.PutUint64(env.Writer.TraceID[8:], rng.Uint64())
	binary.LittleEndian.PutUint64(env.Writer.SpanID[:], rng.Uint64()|1)
	env.Writer.Flags = 1
	return AppendEnvelope(buf, &env)
}

const benchNameChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

// benchValue returns a JSON read model of about 100 bytes.
func benchValue(rng *rand.Rand, i, version int) []byte {
	var name [12]byte
	for j := range name {
		name[j] = benchNameChars[rng.IntN(len(benchNameChars))]
	}
	return fmt.Appendf(nil, `{"id":"customer-%08d","name":"%s","balance":%d,"orders":%d,"version":%d,"updated":%d}`,
		2*i, name[:], rng.IntN(1_000_000), rng.IntN(500), version, 1_760_000_000+rng.IntN(10_000_000))
}

// benchFixtures builds, once per engine and kind of value (raw, envelope), a
// table of benchKeys keys loaded through recovery, fully compacted and
// closed; benchmarks work on copies.
type benchFixtures struct {
	root      string
	mu        sync.Mutex
	templates map[string]string
	copies    int
}

// values returns the values of the keys: raw values or their envelopes.
func (d *benchData) valuesOf(envelope bool) [][]byte {
	if envelope {
		return d.envValues
	}
	return d.values
}

// loadRecovery loads the changelog of the benchmark data (raw values or
// envelopes) into st, which must be in recovery mode, starting at offset
// first.
func loadRecovery(b *testing.B, st storage.Storage, d *benchData, envelope bool, first int64) {
	values := d.valuesOf(envelope)
	for i, k := range d.loadKeys {
		if err := st.Set(d.keys[k], values[k]); err != nil {
			b.Fatal(err)
		}
		if err := st.SetOffset(first + int64(i)); err != nil {
			b.Fatal(err)
		}
	}
}

func (f *benchFixtures) template(b *testing.B, e benchEngine, envelope bool) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	name := e.name
	if envelope {
		name += "-envelope"
	}
	if dir, ok := f.templates[name]; ok {
		return dir
	}
	d := benchDataOnce()
	dir := filepath.Join(f.root, "template-"+name)
	st := e.open(b, dir)
	loadRecovery(b, st, d, envelope, 0)
	mustOK(b, st.MarkRecovered())
	mustOK(b, st.Close())
	e.compact(b, dir)
	if f.templates == nil {
		f.templates = map[string]string{}
	}
	f.templates[name] = dir
	return dir
}

// populated opens a recovered copy of the engine's template table.
func (f *benchFixtures) populated(b *testing.B, e benchEngine, envelope bool) (storage.Storage, string) {
	tmpl := f.template(b, e, envelope)
	f.mu.Lock()
	f.copies++
	dir := filepath.Join(f.root, fmt.Sprintf("copy-%d-%s", f.copies, e.name))
	f.mu.Unlock()
	mustOK(b, copyDir(tmpl, dir))
	st := e.open(b, dir)
	mustOK(b, st.MarkRecovered())
	return st, dir
}

func copyDir(src, dst string) error {
	return filepath.WalkDir(src, func(path string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if de.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		in, err := os.Open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.Create(target)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			_ = out.Close()
			return err
		}
		return out.Close()
	})
}

func closeAndRemove(b *testing.B, st storage.Storage, dir string) func() {
	return func() {
		mustOK(b, st.Close())
		mustOK(b, os.RemoveAll(dir))
	}
}

var benchSink int

func benchGet(f *benchFixtures) benchOp {
	return func(b *testing.B, e benchEngine) (func(*testing.B), func()) {
		d := benchDataOnce()
		st, dir := f.populated(b, e, false)
		// Warm up: one pass over the access pattern, so that both engines
		// run with whatever their caches hold in steady state.
		hits := 0
		for _, k := range d.gets {
			v, err := st.Get(k)
			mustOK(b, err)
			if v != nil {
				hits++
			}
		}
		if hits == 0 || hits == len(d.gets) {
			b.Fatalf("%s: %d hits of %d gets; the table is not populated as expected", e.name, hits, len(d.gets))
		}
		run := func(b *testing.B) {
			b.ReportAllocs()
			n := 0
			for i := 0; b.Loop(); i++ {
				v, err := st.Get(d.gets[i&(benchPatternSz-1)])
				if err != nil {
					b.Fatal(err)
				}
				n += len(v)
			}
			benchSink += n
		}
		return run, closeAndRemove(b, st, dir)
	}
}

// benchSetChunk is how many envelopes the SetEnvelope benchmark encodes at a
// time, with the timer stopped.
const benchSetChunk = 4096

func benchSet(f *benchFixtures, envelope bool) benchOp {
	return func(b *testing.B, e benchEngine) (func(*testing.B), func()) {
		d := benchDataOnce()
		st, dir := f.populated(b, e, envelope)
		offset, err := st.GetOffset(-1)
		mustOK(b, err)
		if offset != benchKeys-1 {
			b.Fatalf("%s: stored offset %d, want %d", e.name, offset, benchKeys-1)
		}
		// New versions of the values, prepared outside the timed loop as a
		// codec would produce them before Set.
		rng := rand.New(rand.NewPCG(3, 4))
		values := make([][]byte, 4096)
		for i := range values {
			values[i] = benchValue(rng, i, 2)
		}
		if !envelope {
			run := func(b *testing.B) {
				b.ReportAllocs()
				for i := 0; b.Loop(); i++ {
					k := d.setKeys[i&(benchPatternSz-1)]
					if err := st.Set(d.keys[k], values[i&(len(values)-1)]); err != nil {
						b.Fatal(err)
					}
					// goka acknowledges each table write with its changelog offset.
					offset++
					if err := st.SetOffset(offset); err != nil {
						b.Fatal(err)
					}
				}
			}
			return run, closeAndRemove(b, st, dir)
		}
		// Envelopes carry the next version of their key, so they are
		// encoded as the loop goes, benchSetChunk at a time with the timer
		// stopped (a processor encodes them before Set; the encoding is not
		// the store's cost). Each chunk gets a fresh buffer: the store keeps
		// the values it is given until the changelog acknowledges them.
		versions := slices.Clone(d.loadVersions)
		chunk := make([][]byte, benchSetChunk)
		source := int64(benchKeys)
		encode := func(first int) {
			buf := make([]byte, 0, benchSetChunk*192)
			for j := range chunk {
				i := first + j
				k := d.setKeys[i&(benchPatternSz-1)]
				versions[k]++
				start := len(buf)
				buf = benchEnvelope(buf, rng, versions[k], source, values[i&(len(values)-1)])
				source++
				chunk[j] = buf[start:len(buf):len(buf)]
			}
		}
		run := func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				j := i % benchSetChunk
				if j == 0 {
					b.StopTimer()
					encode(i)
					b.StartTimer()
				}
				k := d.setKeys[i&(benchPatternSz-1)]
				if err := st.Set(d.keys[k], chunk[j]); err != nil {
					b.Fatal(err)
				}
				offset++
				if err := st.SetOffset(offset); err != nil {
					b.Fatal(err)
				}
			}
			// The writes did build lineage.
			if ws, ok := st.(*Store); ok && ws.opts.lineageVersions > 0 {
				k := d.keys[d.setKeys[0]]
				l, err := ws.Lineage(k)
				mustOK(b, err)
				if len(l) < 2 || l[0].Version != versions[d.setKeys[0]] {
					b.Fatalf("%s: lineage of %s has %d versions, the newest %v; want at least 2, the newest %d",
						e.name, k, len(l), l[0].Version, versions[d.setKeys[0]])
				}
			}
		}
		return run, closeAndRemove(b, st, dir)
	}
}

func benchRecoveryLoad(f *benchFixtures, envelope bool) benchOp {
	return func(b *testing.B, e benchEngine) (func(*testing.B), func()) {
		d := benchDataOnce()
		run := func(b *testing.B) {
			b.ReportAllocs()
			var loading time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				f.mu.Lock()
				f.copies++
				dir := filepath.Join(f.root, fmt.Sprintf("load-%d-%s", f.copies, e.name))
				f.mu.Unlock()
				st := e.open(b, dir)
				b.StartTimer()
				start := time.Now()
				loadRecovery(b, st, d, envelope, 0)
				mustOK(b, st.MarkRecovered())
				loading += time.Since(start)
				b.StopTimer()
				mustOK(b, st.Close())
				mustOK(b, os.RemoveAll(dir))
				b.StartTimer()
			}
			records := float64(b.N) * benchKeys
			b.ReportMetric(records/loading.Seconds(), "records/s")
			b.ReportMetric(float64(loading.Nanoseconds())/records, "ns/record")
		}
		return run, func() {}
	}
}
