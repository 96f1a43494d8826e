package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/lovoo/goka/codec"

	"github.com/weftstream/weft/internal/kafkatest"
	"github.com/weftstream/weft/processors"
)

// TestJoinInputFold recomputes the join's expected table from the records
// as produced (their JSON), by hand: every order's customer is in the
// table, and every customer's total is the sum of its orders' amounts
// times its tier.
func TestJoinInputFold(t *testing.T) {
	table, orders, want := joinInput(2000, 50)
	if len(table) != 50 || len(orders) != 2000 {
		t.Fatalf("%d customers, %d orders", len(table), len(orders))
	}
	tiers := map[string]int64{}
	for _, r := range table {
		var c struct {
			ID   string
			Tier int64
		}
		if err := json.Unmarshal(r.value, &c); err != nil || c.ID != r.key || c.Tier < 1 || c.Tier > joinTiers {
			t.Fatalf("customer %s: %s (%v)", r.key, r.value, err)
		}
		tiers[c.ID] = c.Tier
	}
	got := map[string]customerTotal{}
	seenTiers := map[int64]bool{}
	for _, r := range orders {
		var o struct {
			Customer string
			Amount   int64
		}
		if err := json.Unmarshal(r.value, &o); err != nil || o.Customer != r.key || o.Amount < 1 {
			t.Fatalf("order %s: %s (%v)", r.key, r.value, err)
		}
		tier, ok := tiers[o.Customer]
		if !ok {
			t.Fatalf("order of %s: no such customer", o.Customer)
		}
		seenTiers[tier] = true
		g := got[o.Customer]
		got[o.Customer] = customerTotal{Tier: tier, Orders: g.Orders + 1, Total: g.Total + o.Amount*tier}
	}
	if len(got) != len(want) || len(seenTiers) != joinTiers {
		t.Fatalf("%d customers with orders, fold has %d; tiers %v", len(got), len(want), seenTiers)
	}
	for id, g := range got {
		if want[id] != g {
			t.Errorf("customer %s: fold %+v, recomputed %+v", id, want[id], g)
		}
	}
}

// TestWindowInputFold recomputes the window's expected table from the
// records: every event time within the input's span, out of order
// somewhere, and the count per key and minute.
func TestWindowInputFold(t *testing.T) {
	records, want := windowInput(3000, 20, windowBase)
	got := map[string]int64{}
	var last int64
	outOfOrder := 0
	windows := map[int64]bool{}
	for _, r := range records {
		var e windowEvent
		if err := json.Unmarshal(r.value, &e); err != nil || e.Key != r.key {
			t.Fatalf("%s: %s (%v)", r.key, r.value, err)
		}
		at := time.UnixMilli(e.TS).UTC()
		if at.Before(windowBase) || !at.Before(windowBase.Add(windowSpan)) {
			t.Fatalf("%s: event time %s outside [%s, +%s)", r.key, at, windowBase, windowSpan)
		}
		if e.TS < last {
			outOfOrder++
		}
		last = e.TS
		start := at.Truncate(time.Minute)
		windows[start.UnixMilli()] = true
		got[r.key+"@"+start.Format("2006-01-02T15:04:05Z")]++
	}
	if outOfOrder == 0 || len(windows) != int(windowSpan/windowSize) {
		t.Errorf("%d records out of order, %d windows; want some, %d", outOfOrder, len(windows), windowSpan/windowSize)
	}
	if len(got) != len(want) {
		t.Fatalf("%d keys and windows, fold has %d", len(got), len(want))
	}
	for k, n := range got {
		if want[k] != n {
			t.Errorf("%s: fold %d, recomputed %d", k, want[k], n)
		}
	}
	// The key of weft's windowed tables (docs/topology-format.md).
	if k := windowTableKey("k", windowBase.Add(90*time.Second).UnixMilli()); k != "k@2026-03-01T10:01:00Z" {
		t.Errorf("window key %s", k)
	}
}

// windowBase is the first event time of the window tests' input.
var windowBase = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func TestWindowBaseIsRecent(t *testing.T) {
	now := time.Date(2026, 12, 2, 5, 23, 42, 0, time.UTC)
	if got, want := windowBaseFor(now), time.Date(2026, 12, 2, 5, 13, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("base %s, want %s", got, want)
	}
}

// encodeTotal is a customer total as the engine's join table stores it.
func encodeTotal(t *testing.T, engine string, v customerTotal) []byte {
	t.Helper()
	if engine == engineGoka || engine == engineKStreams {
		data, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	data, err := processors.EnvelopeCodec(jsonCodec[customerTotal]{}).Encode(&processors.Stored{Value: &v})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestVerifyTableJoin(t *testing.T) {
	right := map[string]customerTotal{"c1": {Tier: 2, Orders: 2, Total: 30}, "c2": {Tier: 1, Orders: 1, Total: 7}}
	want := expectation{join: right}
	for _, engine := range []string{engineGoka, engineKStreams, engineWeft, engineWeft1} {
		table := func(change func(map[string]customerTotal)) changelog {
			m := map[string]customerTotal{}
			for k, v := range right {
				m[k] = v
			}
			change(m)
			c := changelog{latest: map[string][]byte{}}
			for k, v := range m {
				c.latest[k] = encodeTotal(t, engine, v)
			}
			return c
		}
		if err := verifyTable(engine, workloadJoin, table(func(map[string]customerTotal) {}), want, 3); err != nil {
			t.Errorf("%s: right table: %v", engine, err)
		}
		for name, change := range map[string]func(map[string]customerTotal){
			"wrong tier (not joined)": func(m map[string]customerTotal) { m["c1"] = customerTotal{Tier: 0, Orders: 2, Total: 30} },
			"wrong total":             func(m map[string]customerTotal) { m["c2"] = customerTotal{Tier: 1, Orders: 1, Total: 8} },
			"missing customer":        func(m map[string]customerTotal) { delete(m, "c2") },
			"extra customer":          func(m map[string]customerTotal) { m["c3"] = customerTotal{Tier: 1} },
		} {
			if err := verifyTable(engine, workloadJoin, table(change), want, 3); err == nil {
				t.Errorf("%s: %s: verified", engine, name)
			}
		}
	}
	// A value of the other engine's encoding is not a total.
	c := changelog{latest: map[string][]byte{"c1": []byte("7"), "c2": encodeTotal(t, engineWeft, right["c2"])}}
	if err := verifyTable(engineWeft, workloadJoin, c, want, 3); err == nil || !strings.Contains(err.Error(), "c1") {
		t.Errorf("undecodable value: %v", err)
	}
}

func TestVerifyTableWindow(t *testing.T) {
	k1, k2 := "a@2026-03-01T10:00:00Z", "a@2026-03-01T10:01:00Z"
	want := expectation{counts: map[string]int64{k1: 2, k2: 1}}
	for _, engine := range []string{engineGoka, engineKStreams, engineWeft} {
		table := func(counts map[string]int64) changelog {
			c := changelog{latest: map[string][]byte{}}
			for k, n := range counts {
				if engine == engineKStreams {
					// The window store's changelog key: the record key,
					// the window start (8 bytes, ms), a sequence number.
					key, start, ok := strings.Cut(k, "@")
					at, err := time.Parse(time.RFC3339, start)
					if !ok || err != nil {
						key, at = k, time.UnixMilli(0) // no window: a start the want has not
					}
					raw := binary.BigEndian.AppendUint64([]byte(key), uint64(at.UnixMilli()))
					c.latest[string(binary.BigEndian.AppendUint32(raw, 0))] = encodeCount(t, engine, n)
				} else if engine == engineGoka {
					c.latest[k], _ = new(codec.Int64).Encode(n)
				} else {
					c.latest[k] = encodeCount(t, engine, n)
				}
			}
			return c
		}
		if err := verifyTable(engine, workloadWindow, table(map[string]int64{k1: 2, k2: 1}), want, 3); err != nil {
			t.Errorf("%s: right table: %v", engine, err)
		}
		for name, bad := range map[string]map[string]int64{
			"wrong count":             {k1: 1, k2: 1},
			"one window for both":     {"a@2026-03-01T10:00:00Z": 3},
			"key without window":      {"a": 2, k2: 1},
			"window start in seconds": {"a@2026-03-01T10:00:30Z": 2, k2: 1},
		} {
			if err := verifyTable(engine, workloadWindow, table(bad), want, 3); err == nil {
				t.Errorf("%s: %s %v: verified", engine, name, bad)
			}
		}
	}
}

// TestIntegrationHarnessJoinWindow runs the harness end to end on the
// join and window workloads with the Go engines and checks that every
// engine ran and its table was verified (a wrong table fails the run).
// Kafka Streams does not run on the embedded broker (kafkatest's, passed
// with -brokers); on Apache Kafka it runs both: go run ./bench -workload
// join,window -brokers 127.0.0.1:19092.
func TestIntegrationHarnessJoinWindow(t *testing.T) {
	brokers := strings.Join(kafkatest.Brokers(t), ",")
	engines := []string{engineRaw, engineGoka, engineWeft, engineWeft100}
	var out, errOut bytes.Buffer
	code, err := harnessMain([]string{"-n", "3000", "-keys", "200", "-workload", "join,window",
		"-engines", strings.Join(engines, ","), "-brokers", brokers, "-json"}, &out, &errOut)
	if code != 0 || err != nil {
		t.Fatalf("harness: exit %d, %v\n%s", code, err, errOut.String())
	}
	sums := map[string]runRow{}
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		var r runRow
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("output line %q: %v", sc.Text(), err)
		}
		if r.Kind == "summary" {
			sums[r.Workload+"/"+r.Engine] = r
		}
	}
	for _, w := range []string{workloadJoin, workloadWindow} {
		for _, e := range engines {
			key := w + "/" + e
			s, ok := sums[key]
			switch {
			case !ok:
				t.Errorf("%s: no summary", key)
			case s.Reps != 1 || s.Events != 3000 || s.Error != "":
				t.Errorf("%s: %d runs, %d events, error %q", key, s.Reps, s.Events, s.Error)
			case s.CPUPerEvent <= 0 || s.PeakRSS <= 0 || s.WallSeconds <= 0:
				t.Errorf("%s: not measured: %+v", key, s)
			case e != engineRaw && (!s.Verified || s.ChangelogBytes <= 0 || s.CPUvsGoka <= 0):
				t.Errorf("%s: table not verified or measured: %+v", key, s)
			case e == engineWeft100 && s.Spans < 3000:
				t.Errorf("%s: %d spans exported for 3000 records", key, s.Spans)
			}
		}
	}
}

func TestKStreamsWindowKey(t *testing.T) {
	raw := binary.BigEndian.AppendUint64([]byte("key-00007"), uint64(windowBase.Add(3*time.Minute).UnixMilli()))
	raw = binary.BigEndian.AppendUint32(raw, 0)
	if k, err := kstreamsWindowKey(string(raw)); err != nil || k != "key-00007@2026-03-01T10:03:00Z" {
		t.Errorf("key %q, %v", k, err)
	}
	if _, err := kstreamsWindowKey("short"); err == nil {
		t.Error("a key of 5 bytes decoded")
	}
}
