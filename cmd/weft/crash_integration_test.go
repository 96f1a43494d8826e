package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/weftstream/weft/internal/kafkatest"
	"github.com/weftstream/weft/kafkaclient"
	"github.com/weftstream/weft/processors"
)

// envAsWeft makes the test binary run weft's main instead of the tests, so
// that a test can start `weft` as a process and kill it.
const envAsWeft = "WEFT_TEST_RUN_AS_WEFT"

func TestMain(m *testing.M) {
	if os.Getenv(envAsWeft) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// A `weft run` process is killed (SIGKILL: no shutdown, no commit) in the
// middle of a topology with two repartitions, a windowed count and a
// suppress until window close; a second process continues from the
// changelogs and the local stores the first left behind. The counts must
// come out exact (every order counted once, although records are
// processed and emitted again after the crash), and every window's final
// count must be emitted, always with the exact value (a window may be
// emitted twice around the crash: outputs are at-least-once).
func TestIntegrationCrashMidTopology(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	b := strings.Join(brokers, ",")
	app := kafkatest.Topic(t, "crash")
	orders := kafkatest.Topic(t, "orders")
	final := kafkatest.Topic(t, "final")
	kafkatest.CreateTopic(t, brokers, orders, 1)
	file := filepath.Join(t.TempDir(), "hourly.yaml")
	topology := strings.NewReplacer("APP", app, "ORDERS", orders, "FINAL", final).Replace(`app: APP
streams:
  orders: {topic: ORDERS, timestamp: "timestamp(value.at)"}
pipelines:
  - name: hourly
    from: orders
    steps:
      - group_by: "value.customer"
      - window: {size: 1h, grace: 0s}
      - count: {}
  - name: hourly-final
    from: table:hourly
    steps:
      - suppress: {until: window_close}
      - to: {topic: FINAL, codec: json}
`)
	if err := os.WriteFile(file, []byte(topology), 0o644); err != nil {
		t.Fatal(err)
	}

	// 3,000 orders of 7 customers, two minutes apart (100 hours), then one
	// order per partition of the suppressor's input a day later, so that
	// every window of the orders closes.
	const n = 3000
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	type order struct{ id, customer, at string }
	var all []order
	want := map[string]int64{}
	for i := range n {
		at := base.Add(time.Duration(i) * 2 * time.Minute)
		o := order{fmt.Sprintf("o%d", i), fmt.Sprintf("c%d", i*5%7), at.Format(time.RFC3339)}
		all = append(all, o)
		want[o.customer+"@"+at.Truncate(time.Hour).Format(time.RFC3339)]++
	}
	tickAt := base.Add(n*2*time.Minute + 24*time.Hour)
	day := tickAt.Truncate(time.Hour).Format(time.RFC3339)
	for i, key := range kafkatest.KeysCovering(t, 4, func(i int) string { return fmt.Sprintf("tick%d@%s", i, day) }) {
		all = append(all, order{fmt.Sprintf("t%d", i), strings.TrimSuffix(key, "@"+day), tickAt.Format(time.RFC3339)})
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(orders))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	produce := func(os []order) {
		t.Helper()
		for _, o := range os {
			v, _ := json.Marshal(map[string]string{"customer": o.customer, "at": o.at})
			cl.Produce(t.Context(), &kgo.Record{Key: []byte(o.id), Value: v}, nil)
		}
		if err := cl.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
	}

	stateDir := t.TempDir()
	start := func() (*exec.Cmd, *bytes.Buffer) {
		t.Helper()
		cmd := exec.Command(os.Args[0], "run", file, "--brokers", b, "--partitions", "4",
			"--state-dir", stateDir, "--log-level", "warn")
		cmd.Env = append(os.Environ(), envAsWeft+"=1")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd, &out
	}

	finals := map[string][]int64{}
	reader, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(final),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	read := func() int {
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		reader.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			var v int64
			if err := json.Unmarshal(r.Value, &v); err != nil {
				t.Errorf("final %s: %q is not a count", r.Key, r.Value)
			}
			finals[string(r.Key)] = append(finals[string(r.Key)], v)
		})
		return len(finals)
	}

	first, out1 := start()
	produce(all[:n/2])
	kafkatest.WaitFor(t, 2*time.Minute, "the first final counts", func() bool { return read() >= 20 })
	if err := first.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	t.Logf("killed the first process with %d windows emitted", len(finals))

	produce(all[n/2:])
	second, out2 := start()
	defer func() {
		_ = second.Process.Signal(os.Interrupt)
		if err := second.Wait(); err != nil {
			t.Errorf("second weft run: %v\n%s", err, out2)
		}
		// Nothing is late or bad: records handled again after the crash
		// are recognised, not dead-lettered.
		if n1, n2 := strings.Count(out1.String(), "rejected input record"), strings.Count(out2.String(), "rejected input record"); n1+n2 > 0 {
			t.Errorf("records were rejected: %d by the first process, %d by the second", n1, n2)
		}
		if t.Failed() {
			t.Logf("first weft run:\n%s\nsecond:\n%s", out1, out2)
		}
	}()
	kafkatest.WaitFor(t, 3*time.Minute, fmt.Sprintf("final counts of all %d windows", len(want)), func() bool {
		read()
		for key := range want {
			if len(finals[key]) == 0 {
				return false
			}
		}
		return true
	})

	dups := 0
	for key, got := range finals {
		w, ok := want[key]
		if !ok {
			t.Errorf("final count of %s, which never closed", key)
			continue
		}
		for _, v := range got {
			if v != w {
				t.Errorf("final count of %s = %d, want %d", key, v, w)
			}
		}
		dups += len(got) - 1
	}
	t.Logf("%d windows, %d emitted twice or more around the crash", len(want), dups)

	// The window table holds each count exactly once.
	k := kafkaclient.Config{Brokers: brokers}
	view, err := processors.StartView(t.Context(), goka.Table(app+"-hourly-table"), processors.EnvelopeCodec(new(codec.Int64)),
		processors.WithKafka(k), processors.WithStateDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer view.Close()
	for key, w := range want {
		v, err := view.Get(key)
		if err != nil {
			t.Fatal(err)
		}
		st, _ := v.(*processors.Stored)
		if st == nil || st.Value != w {
			t.Errorf("table %s = %v, want %d", key, v, w)
		}
	}
}
