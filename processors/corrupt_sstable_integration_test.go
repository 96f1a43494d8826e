package processors_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weftstream/weft/internal/kafkatest"
	"github.com/weftstream/weft/processors"
	"github.com/weftstream/weft/statestore"
)

// A Pebble sstable of a processor's store damaged after the store opened:
// the processor stops with an error that says what happened in a sentence
// (no panic, no stack trace), and the next processor on the same state
// directory discards the damaged store, restores it from the changelog and
// ends with every count exact.
func TestIntegrationSSTableCorruptedAfterOpen(t *testing.T) {
	e := newEnv(t)
	e.kafka.Partitions = 1
	input, group := kafkatest.Topic(t, "sst-in"), kafkatest.Group(t, "sst")
	kafkatest.CreateTopic(t, e.kafka.Brokers, input, 1)
	stateDir := t.TempDir()
	const keys = 3000
	batch := func() [][3]string {
		recs := make([][3]string, keys)
		for i := range recs {
			recs[i] = [3]string{fmt.Sprintf("key-%05d", i), "x", ""}
		}
		return recs
	}
	type run struct {
		p    *processors.Processor
		rt   *processors.Runtime
		logs *logRecorder
		done chan error
		stop context.CancelFunc
	}
	start := func() *run {
		rt := processors.NewRuntime()
		logs := &logRecorder{}
		// Small memtables: the counts are in sstables, not only in the WAL.
		p, err := processors.NewProcessor(t.Context(), counterGraph(rt, group, input),
			processors.WithKafka(e.kafka), processors.WithStateDir(stateDir), processors.WithRuntime(rt),
			processors.WithLogger(slog.New(logs)), processors.WithStoreOptions(statestore.WithMemTableSize(64<<10)))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		r := &run{p: p, rt: rt, logs: logs, done: make(chan error, 1), stop: cancel}
		go func() { r.done <- p.Run(ctx) }()
		t.Cleanup(func() {
			cancel()
			<-r.done
			if t.Failed() {
				logs.dump(t)
			}
		})
		return r
	}
	count := func(r *run, key string) int64 {
		v, err := r.p.Goka().Get(key)
		if err != nil {
			return -1
		}
		st, _ := v.(*processors.Stored)
		if st == nil {
			return 0
		}
		return st.Value.(int64)
	}
	counted := func(r *run, n int64) func() bool {
		return func() bool {
			select {
			case err := <-r.done:
				t.Fatalf("processor stopped: %v", err)
			default:
			}
			if !r.p.Goka().Recovered() {
				return false
			}
			for i := range keys {
				if count(r, fmt.Sprintf("key-%05d", i)) != n {
					return false
				}
			}
			return true
		}
	}

	first := start()
	e.produce(input, batch()...)
	kafkatest.WaitFor(t, waitTimeout, "every key counted once", counted(first, 1))
	if err := first.p.Flush(); err != nil {
		t.Fatal(err)
	}
	first.stop()
	if err := <-first.done; err != nil {
		t.Fatalf("first processor: %v", err)
	}
	first.done <- nil // for the cleanup

	// The second opens the store (nothing to restore), then its sstables
	// are damaged, then records of every key arrive: reading the keys'
	// counts meets the damage.
	second := start()
	kafkatest.WaitFor(t, waitTimeout, "the second processor to recover", func() bool { return second.p.Goka().Recovered() })
	var ssts []string
	_ = filepath.WalkDir(stateDir, func(path string, _ os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(path, ".sst") {
			ssts = append(ssts, path)
		}
		return nil
	})
	damaged := 0
	for _, f := range ssts {
		data, err := os.ReadFile(f)
		if err != nil {
			continue // compacted away since
		}
		for i := 100; i < len(data)/2; i += 97 {
			data[i] ^= 0x5a
		}
		if err := os.WriteFile(f, data, 0o644); err != nil {
			t.Fatal(err)
		}
		damaged++
	}
	if damaged == 0 {
		t.Fatalf("no sstable in %s to damage", stateDir)
	}
	e.produce(input, batch()...)
	select {
	case err := <-second.done:
		second.done <- err // for the cleanup
		t.Logf("the processor stopped on %d damaged sstables: %v", damaged, err)
		if err == nil {
			t.Fatal("the processor stopped without an error")
		}
		msg := err.Error()
		if strings.Contains(msg, "panic") || strings.Contains(msg, "goroutine ") || strings.Count(msg, "\n") > 0 {
			// goka's ctx.Value() reports a store read error by panicking
			// (ctx.Fail): "panic in callback: <error>\n<stack>".
			t.Errorf("the error is not one sentence: %q", msg)
		}
	case <-time.After(waitTimeout):
		t.Fatal("the processor neither stopped nor failed on the damaged store")
	}

	third := start()
	kafkatest.WaitFor(t, waitTimeout, "every key counted twice after the restore", counted(third, 2))
	if !third.logs.has(slog.LevelWarn, "corrupt") {
		t.Error("the third processor did not log that it discarded the corrupt store")
	}
}
