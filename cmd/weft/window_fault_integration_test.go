package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/weftstream/weft/internal/kafkatest"
)

// A windowed count with a suppress until window close, run by two
// instances; one of them is killed (SIGKILL) while it holds partitions and
// the input keeps coming, so that its partitions stay with a dead member
// until the group gives up on it, and the other instance takes them over
// from the changelogs. Every final emitted, before and after, equals the
// windowed table's final value of its window and the count the fold of
// the input gives; every window is emitted.
func TestIntegrationWindowFinalsWhenAMemberDies(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	b := strings.Join(brokers, ",")
	app := kafkatest.Topic(t, "windows")
	ordersTopic, finalTopic := kafkatest.Topic(t, "orders"), kafkatest.Topic(t, "final")
	// One partition of orders: its records reach the windows in event-time
	// order (the repartition interleaves records of several input
	// partitions by processing speed, which with grace 0s makes records
	// late that a slower partition delivers, on any stream processor).
	// The windows and the suppressor run on 4 partitions, shared by the
	// instances.
	kafkatest.CreateTopic(t, brokers, ordersTopic, 1)
	file := writeHourlyTopology(t, app, ordersTopic, finalTopic)

	// Orders of 11 customers, 90 s apart, then one order per partition of
	// the suppressor's input a day later, which closes every window.
	n := faultEvents(t, 6000) / 2
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	var orders []kv
	want := map[string]int64{}
	order := func(id, customer string, at time.Time) kv {
		v, _ := json.Marshal(map[string]string{"customer": customer, "at": at.Format(time.RFC3339)})
		return kv{id, v}
	}
	for i := range n {
		at := base.Add(time.Duration(i) * 90 * time.Second)
		customer := fmt.Sprintf("c%d", i*3%11)
		orders = append(orders, order(fmt.Sprintf("o%d", i), customer, at))
		want[customer+"@"+at.Truncate(time.Hour).Format(time.RFC3339)]++
	}
	tickAt := base.Add(time.Duration(n)*90*time.Second + 24*time.Hour)
	day := tickAt.Truncate(time.Hour).Format(time.RFC3339)
	var ticks []kv
	for i, key := range kafkatest.KeysCovering(t, 4, func(i int) string { return fmt.Sprintf("tick%d@%s", i, day) }) {
		ticks = append(ticks, order(fmt.Sprintf("t%d", i), strings.TrimSuffix(key, "@"+day), tickAt))
	}
	prod := gokaProducer(t, brokers, ordersTopic)

	start := func() *proc {
		return startProc(t, "run", file, "--brokers", b, "--partitions", "4", "--state-dir", t.TempDir(),
			"--log-format", "json", "--log-level", "debug", "--http-addr", freeAddr(t))
	}

	finals := map[string][]int64{}
	reader, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(finalTopic),
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

	first, second := start(), start()
	for _, p := range []*proc{first, second} {
		waitRunning(t, p, 3*time.Minute, "both instances to hold partitions of the windows", func() bool {
			return claimedPartitions(p, app+"-hourly]") > 0
		})
	}
	produceAll(t, prod, orders[:n/2])
	waitRunning(t, second, 3*time.Minute, "the first finals", func() bool { return read() >= 20 })
	sent := produceBackground(t, prod, orders[n/2:])
	kill9(t, second)
	killed := time.Now()
	t.Logf("killed an instance holding %d partitions of the windows with %d windows emitted", claimedPartitions(second, app+"-hourly]"), len(finals))
	sent()
	produceAll(t, prod, ticks)

	waitRunning(t, first, 3*time.Minute, fmt.Sprintf("final counts of all %d windows", len(want)), func() bool {
		read()
		for key := range want {
			if len(finals[key]) == 0 {
				return false
			}
		}
		return true
	})
	t.Logf("every window emitted %s after the kill", time.Since(killed).Round(time.Millisecond))

	// The window table's final values, once the record cache wrote them.
	table := app + "-hourly-table"
	var wrongTable []string
	waitRunning(t, first, time.Minute, "the window table to hold every count", func() bool {
		latest := tableLatest(t, brokers, table)
		wrongTable = wrongTable[:0]
		for key, w := range want {
			var got int64
			if v, ok := latest[key]; ok {
				_ = json.Unmarshal(v, &got)
			}
			if got != w {
				wrongTable = append(wrongTable, fmt.Sprintf("%s = %d, want %d", key, got, w))
			}
		}
		return len(wrongTable) == 0
	})
	first.signal(t, os.Interrupt)

	wrong, dups := 0, 0
	for key, got := range finals {
		w, ok := want[key]
		if !ok {
			t.Errorf("final of %s, which is no window of the input", key)
			continue
		}
		for _, v := range got {
			if v != w {
				wrong++
				if wrong <= 5 {
					t.Errorf("final of %s = %d; the window table and the input say %d", key, v, w)
				}
			}
		}
		dups += len(got) - 1
	}
	if wrong > 0 {
		t.Errorf("%d finals differ from their window's final value", wrong)
	}
	if n := strings.Count(first.out.String(), "rejected input record"); n > 0 {
		t.Errorf("the surviving instance rejected %d records", n)
	}
	t.Logf("windows under a dead member: %d orders, %d windows, %d finals emitted (%d again around the kill), %d wrong",
		n, len(want), len(want)+dups, dups, wrong)
}
