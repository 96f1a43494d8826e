package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weftstream/weft/broker"
	"github.com/weftstream/weft/internal/kafkatest"
)

// The fault suite on the built-in bank projection: one `weft run` after
// another is killed (SIGKILL: no shutdown, no commit) while it processes,
// while it joins its group, and while it restores its table (after its
// local state was deleted, and after it was replaced by a state dir built
// on another cluster); the phases are read from the process's log and its
// /readyz, not guessed with sleeps. The input arrives in parts between
// the faults. The last process ends with every account exactly as the
// reference fold of the input computes it, and nothing dead-lettered.
func TestIntegrationFaultSuiteBank(t *testing.T) {
	began := time.Now()
	brokers := kafkatest.Brokers(t)
	b := strings.Join(brokers, ",")
	n := faultEvents(t, 6000)
	accounts := max(n/20, 10)
	events := genBank(n, accounts, 9)
	want := foldBank(t, events)
	input, group := kafkatest.Topic(t, "bank-events"), kafkatest.Group(t, "bank")
	table := group + "-table"
	kafkatest.CreateTopic(t, brokers, input, 4)
	prod := gokaProducer(t, brokers, input)

	state := t.TempDir()
	httpAddr := freeAddr(t)
	args := func(brokers, state string) []string {
		return []string{"run", "--input", input, "--group", group, "--state-dir", state, "--brokers", brokers,
			"--partitions", "4", "--log-format", "json", "--log-level", "debug", "--progress-interval", "0",
			"--http-addr", httpAddr, "--cache-max-bytes", "32768"}
	}
	start := func() (*proc, time.Time) { return startProc(t, args(b, state)...), time.Now() }

	// A state dir built on another cluster (an embedded broker of its own)
	// from other events of the same input and group names.
	foreign := t.TempDir()
	{
		other, err := broker.Start(t.Context(), broker.WithAddr("127.0.0.1:0"), broker.WithDataDir(t.TempDir()), broker.WithLogger(nil))
		if err != nil {
			t.Fatal(err)
		}
		kafkatest.CreateTopic(t, other.Addrs(), input, 4)
		otherEvents := genBank(max(500, accounts), accounts, 77)
		produceAll(t, gokaProducer(t, other.Addrs(), input), otherEvents)
		p := startProc(t, args(other.Addrs()[0], foreign)...)
		waitRunning(t, p, 2*time.Minute, "the other cluster's table", func() bool {
			return tableEnd(t, other.Addrs(), table) >= int64(len(foldBank(t, otherEvents)))/2
		})
		p.signal(t, os.Interrupt)
		_ = other.Close()
	}

	// The input in 7 parts, one before each process.
	const parts = 7
	part := func(i int) []kv { return events[i*n/parts : (i+1)*n/parts] }
	var faults []string
	var recoveries []time.Duration
	killAt := func(p *proc, what string) {
		kill9(t, p)
		faults = append(faults, what)
		t.Logf("fault %d at %s: SIGKILL %s", len(faults), time.Since(began).Round(time.Millisecond), what)
	}
	processed := func(min int64) func() bool {
		return func() bool { return tableEnd(t, brokers, table) >= min }
	}

	// 1. While it processes: once the table topic holds updates.
	produceAll(t, prod, part(0))
	p, _ := start()
	waitRunning(t, p, 2*time.Minute, "the first table updates", processed(int64(accounts)/4))
	killAt(p, "while processing")

	// 2. While it joins the group (the killed member is still in it):
	// after the process started its processor, before goka set up a
	// generation.
	produceAll(t, prod, part(1))
	p, _ = start()
	waitRunning(t, p, time.Minute, "the processor to start", func() bool { return strings.Contains(p.out.String(), logStarting) })
	kill9(t, p)
	if strings.Contains(p.out.String(), logGeneration) {
		t.Fatalf("the process joined its group before it was killed; the kill was not during the join")
	}
	faults = append(faults, "during group join")
	t.Logf("fault %d at %s: SIGKILL during group join", len(faults), time.Since(began).Round(time.Millisecond))

	// 3. While it restores: the local state deleted, the process restores
	// the table from the changelog and is killed while /readyz says so.
	restoreKill := func(what string, prepare func()) *proc {
		for attempt := 1; ; attempt++ {
			prepare()
			p, _ := start()
			caught := false
			waitRunning(t, p, 3*time.Minute, "the restore", func() bool {
				if restoring(httpAddr) {
					caught = true
					return true
				}
				code, _ := readyz(httpAddr)
				return code == 200 && strings.Contains(p.out.String(), logGeneration)
			})
			if caught {
				killAt(p, what)
				return p
			}
			// Restored before a poll saw it: a kill while processing,
			// and again.
			killAt(p, "while processing (after a restore too fast to catch)")
			if attempt == 8 {
				t.Fatalf("%s: no restore caught in %d attempts", what, attempt)
			}
		}
	}
	produceAll(t, prod, part(2))
	restoreKill("during restore (local state deleted)", func() {
		if err := os.RemoveAll(state); err != nil {
			t.Fatal(err)
		}
	})

	// 4. A state dir from another cluster: discarded (the log says why),
	// restored, killed while restoring.
	produceAll(t, prod, part(3))
	p = restoreKill("during restore (state dir from another cluster)", func() {
		if err := os.RemoveAll(state); err != nil {
			t.Fatal(err)
		}
		if err := os.CopyFS(state, os.DirFS(foreign)); err != nil {
			t.Fatal(err)
		}
	})
	if !strings.Contains(p.out.String(), logDiscarding) {
		t.Errorf("weft run used a state dir from another cluster without saying it discards it")
	}

	// 5. Ready, then killed while processing the next part.
	p, since := start()
	recoveries = append(recoveries, waitReady(t, p, httpAddr, since, 3*time.Minute))
	before := tableEnd(t, brokers, table)
	produceAll(t, prod, part(4))
	waitRunning(t, p, 2*time.Minute, "table updates of part 5", processed(before+int64(accounts)/8))
	killAt(p, "while processing")

	// 6. Killed during the join once more, with the input still arriving.
	sent := produceBackground(t, prod, part(5))
	p, _ = start()
	waitRunning(t, p, time.Minute, "the processor to start", func() bool { return strings.Contains(p.out.String(), logStarting) })
	kill9(t, p)
	if strings.Contains(p.out.String(), logGeneration) {
		t.Fatalf("the process joined its group before it was killed; the kill was not during the join")
	}
	faults = append(faults, "during group join")
	t.Logf("fault %d at %s: SIGKILL during group join", len(faults), time.Since(began).Round(time.Millisecond))

	// The last process gets the rest and must end exact.
	sent()
	produceAll(t, prod, part(6))
	p, since = start()
	recoveries = append(recoveries, waitReady(t, p, httpAddr, since, 3*time.Minute))
	var wrong int
	var examples []string
	caughtUp := time.Now()
	waitRunning(t, p, 3*time.Minute, "every account to match the reference", func() bool {
		latest := tableLatest(t, brokers, table)
		if latest == nil {
			return false
		}
		wrong, examples = bankDiff(t, latest, want)
		return wrong == 0
	})
	catchUp := time.Since(caughtUp)
	p.signal(t, os.Interrupt)
	if p.err != nil {
		t.Fatalf("the last weft run after Ctrl-C: %v", p.err)
	}
	if n := strings.Count(p.out.String(), "rejected input record"); n > 0 {
		t.Errorf("the last weft run rejected %d records", n)
	}
	if wrong > 0 {
		t.Errorf("%d accounts wrong: %s", wrong, strings.Join(examples, "; "))
	}
	joins, restores := 0, 0
	for _, f := range faults {
		joins += strings.Count(f, "group join")
		restores += strings.Count(f, "during restore")
	}
	if len(faults) < 5 || joins < 1 || restores < 1 {
		t.Errorf("faults %v: want at least 5 kills, one during the join and one during a restore", faults)
	}
	t.Logf("fault suite (bank): %d events over %d accounts, %d SIGKILLs (%s), 0 of %d accounts wrong; "+
		"ready after restart in %v; last process matched the reference %s after it was ready",
		n, len(want), len(faults), strings.Join(faults, ", "), len(want), recoveries, catchUp.Round(time.Millisecond))
}

// The fault suite on a stream-table join (orders joined with the
// customers table, then totals per customer): killed (SIGKILL) while it
// processes, during the group join and during a restore, it ends with
// every customer's order count, total and segment exactly as the fold of
// the input computes them.
func TestIntegrationFaultSuiteJoin(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	b := strings.Join(brokers, ",")
	app := kafkatest.Topic(t, "join")
	customersTopic, ordersTopic := kafkatest.Topic(t, "customers"), kafkatest.Topic(t, "orders")
	kafkatest.CreateTopic(t, brokers, customersTopic, 4)
	kafkatest.CreateTopic(t, brokers, ordersTopic, 4)
	file := filepath.Join(t.TempDir(), "join.yaml")
	topology := strings.NewReplacer("APP", app, "CUSTOMERS", customersTopic, "ORDERS", ordersTopic).Replace(`app: APP
streams:
  customer-events: {topic: CUSTOMERS, codec: json}
  order-events: {topic: ORDERS, codec: json}
pipelines:
  - name: customers
    from: customer-events
    steps:
      - latest: {codec: json}
  - name: enriched
    from: order-events
    steps:
      - select_key: "value.customer"
      - join:
          table: customers
          value: "{'amount': value.amount, 'segment': other == null ? 'unknown' : other.segment}"
  - name: totals
    from: enriched
    steps:
      - group_by_key: {}
      - aggregate:
          initial: "{'orders': 0, 'total': 0, 'segment': ''}"
          add: "{'orders': aggregate.orders + 1, 'total': aggregate.total + value.amount, 'segment': value.segment}"
          codec: json
`)
	if err := os.WriteFile(file, []byte(topology), 0o644); err != nil {
		t.Fatal(err)
	}
	n := faultEvents(t, 6000) / 2
	const customers = 60
	segments := []string{"retail", "business", "public"}
	var custs, orders []kv
	type total struct {
		Orders, Total int64
		Segment       string
	}
	want := map[string]total{}
	for c := range customers {
		id := fmt.Sprintf("c%03d", c)
		v, _ := json.Marshal(map[string]string{"customer": id, "segment": segments[c%3]})
		custs = append(custs, kv{id, v})
	}
	for i := range n {
		id := fmt.Sprintf("c%03d", i*7%customers)
		amount := int64(1 + i%97)
		v, _ := json.Marshal(map[string]any{"order": fmt.Sprintf("o%d", i), "customer": id, "amount": amount})
		orders = append(orders, kv{fmt.Sprintf("o%d", i), v})
		w := want[id]
		w.Orders++
		w.Total += amount
		w.Segment = segments[(i*7%customers)%3]
		want[id] = w
	}

	state, httpAddr := t.TempDir(), freeAddr(t)
	start := func() (*proc, time.Time) {
		return startProc(t, "run", file, "--brokers", b, "--partitions", "4", "--state-dir", state,
			"--log-format", "json", "--log-level", "debug", "--http-addr", httpAddr, "--cache-max-bytes", "16384"), time.Now()
	}
	totalsTable := app + "-totals-table"
	diff := func() (int, string) {
		latest := tableLatest(t, brokers, totalsTable)
		if latest == nil {
			return -1, "table not readable"
		}
		wrong, example := 0, ""
		for key, w := range want {
			var got total
			if v, ok := latest[key]; ok {
				_ = json.Unmarshal(v, &got)
			}
			if got != w {
				wrong++
				example = fmt.Sprintf("%s = %+v, want %+v", key, got, w)
			}
		}
		return wrong, example
	}

	// The customers table first, whole: every order finds its customer.
	produceAll(t, gokaProducer(t, brokers, customersTopic), custs)
	p, since := start()
	waitReady(t, p, httpAddr, since, 3*time.Minute)
	waitRunning(t, p, 2*time.Minute, "the customers table", func() bool {
		latest := tableLatest(t, brokers, app+"-customers-table")
		return len(latest) == customers
	})

	prod := gokaProducer(t, brokers, ordersTopic)
	const parts = 5
	part := func(i int) []kv { return orders[i*n/parts : (i+1)*n/parts] }
	var faults []string
	var recoveries []time.Duration

	// 1. While processing.
	produceAll(t, prod, part(0))
	waitRunning(t, p, 2*time.Minute, "totals of the first orders", func() bool { return tableEnd(t, brokers, totalsTable) >= customers/2 })
	kill9(t, p)
	faults = append(faults, "while processing")

	// 2. During the group join.
	produceAll(t, prod, part(1))
	p, _ = start()
	waitRunning(t, p, time.Minute, "the processors to start", func() bool { return strings.Contains(p.out.String(), logStarting) })
	kill9(t, p)
	if strings.Contains(p.out.String(), logGeneration) {
		t.Fatal("a group joined before the kill; the kill was not during the join")
	}
	faults = append(faults, "during group join")

	// 3. During a restore, the local state deleted.
	produceAll(t, prod, part(2))
	for attempt := 1; ; attempt++ {
		if err := os.RemoveAll(state); err != nil {
			t.Fatal(err)
		}
		p, _ = start()
		caught := false
		waitRunning(t, p, 3*time.Minute, "the restore", func() bool {
			if restoring(httpAddr) {
				caught = true
				return true
			}
			code, _ := readyz(httpAddr)
			out := p.out.String()
			return code == 200 && strings.Count(out, logGeneration) >= strings.Count(out, logStarting)
		})
		kill9(t, p)
		if caught {
			faults = append(faults, "during restore (local state deleted)")
			break
		}
		faults = append(faults, "while processing (after a restore too fast to catch)")
		if attempt == 8 {
			t.Fatalf("no restore caught in %d attempts", attempt)
		}
	}

	// 4. Ready, then killed while processing.
	p, since = start()
	recoveries = append(recoveries, waitReady(t, p, httpAddr, since, 3*time.Minute))
	before := tableEnd(t, brokers, totalsTable)
	produceAll(t, prod, part(3))
	waitRunning(t, p, 2*time.Minute, "totals of part 4", func() bool { return tableEnd(t, brokers, totalsTable) >= before+customers/2 })
	kill9(t, p)
	faults = append(faults, "while processing")

	// 5. During the join, with the rest of the input arriving.
	sent := produceBackground(t, prod, part(4))
	p, _ = start()
	waitRunning(t, p, time.Minute, "the processors to start", func() bool { return strings.Contains(p.out.String(), logStarting) })
	kill9(t, p)
	faults = append(faults, "during group join")
	sent()

	p, since = start()
	recoveries = append(recoveries, waitReady(t, p, httpAddr, since, 3*time.Minute))
	var wrong int
	var example string
	waitRunning(t, p, 3*time.Minute, "every customer's totals to match the reference", func() bool {
		wrong, example = diff()
		return wrong == 0
	})
	p.signal(t, os.Interrupt)
	if n := strings.Count(p.out.String(), "rejected input record"); n > 0 {
		t.Errorf("the last weft run rejected %d records", n)
	}
	if wrong != 0 {
		t.Errorf("%d customers wrong, e.g. %s", wrong, example)
	}
	t.Logf("fault suite (join): %d customers, %d orders, %d SIGKILLs (%s), 0 of %d totals wrong; ready after restart in %v",
		customers, n, len(faults), strings.Join(faults, ", "), len(want), recoveries)
}
