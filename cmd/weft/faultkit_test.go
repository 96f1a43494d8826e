package main

// The fault suite's tools: generated bank input and its reference fold,
// a producer that partitions like goka, a reader of a table topic's latest
// values, and the phases of a `weft run` process (group join, restore,
// ready) read from its log and its /readyz.

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/weftstream/weft/statestore"
)

// envFaultEvents sets the size of the fault suite's inputs (events of the
// bank tests; the other tests scale with it). The default fits CI; e.g.
// WEFT_FAULTSUITE_EVENTS=100000 for a long run.
const envFaultEvents = "WEFT_FAULTSUITE_EVENTS"

// faultEvents returns the number of events of the fault suite's bank
// input: def, or the value of envFaultEvents.
func faultEvents(t *testing.T, def int) int {
	t.Helper()
	v := os.Getenv(envFaultEvents)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 100 {
		t.Fatalf("%s=%q: want a number of events, at least 100", envFaultEvents, v)
	}
	return n
}

// kv is one record to produce; a nil value is a tombstone.
type kv struct {
	key   string
	value []byte
}

// bankAccount is an account as the reference fold computes it (the
// fields of the read model the table must hold).
type bankAccount struct {
	Account string `json:"account"`
	Owner   string `json:"owner"`
	Balance int64  `json:"balance"`
	Status  string `json:"status"`
	Events  int64  `json:"events"`
}

// genBank returns n valid bank events over accounts accounts (seeded, so
// every run produces the same input): each account is created by its
// first event, then deposits, withdrawals within the balance and, rarely,
// a close (after which the account gets no more events).
func genBank(n, accounts int, seed uint64) []kv {
	rng := rand.New(rand.NewPCG(seed, 1))
	type st struct {
		created, closed bool
		balance         int64
	}
	state := make([]st, accounts)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	out := make([]kv, 0, n)
	for len(out) < n {
		a := rng.IntN(accounts)
		s := &state[a]
		if s.closed {
			continue
		}
		id := fmt.Sprintf("acc-%05d", a)
		at := base.Add(time.Duration(len(out)) * time.Second).Format(time.RFC3339)
		ev := map[string]any{"account": id, "at": at}
		switch r := rng.IntN(1000); {
		case !s.created:
			ev["type"], ev["owner"] = "AccountCreated", fmt.Sprintf("Owner %d", a)
			s.created = true
		case r < 3:
			ev["type"] = "Closed"
			s.closed = true
		case r < 600 || s.balance == 0:
			amount := 1 + rng.Int64N(1000)
			ev["type"], ev["amount"] = "Deposited", amount
			s.balance += amount
		default:
			amount := 1 + rng.Int64N(s.balance)
			ev["type"], ev["amount"] = "Withdrawn", amount
			s.balance -= amount
		}
		v, _ := json.Marshal(ev)
		out = append(out, kv{id, v})
	}
	return out
}

// foldBank is the reference: the accounts the events make, by the rules
// of the bank (written here again, independently of package bank).
func foldBank(t *testing.T, events []kv) map[string]bankAccount {
	t.Helper()
	out := map[string]bankAccount{}
	for _, r := range events {
		var e struct {
			Type, Account, Owner string
			Amount               int64
		}
		if err := json.Unmarshal(r.value, &e); err != nil {
			t.Fatalf("reference: %s: %v", r.value, err)
		}
		a := out[e.Account]
		switch e.Type {
		case "AccountCreated":
			a = bankAccount{Account: e.Account, Owner: e.Owner, Status: "open"}
		case "Deposited":
			a.Balance += e.Amount
		case "Withdrawn":
			a.Balance -= e.Amount
		case "Closed":
			a.Status = "closed"
		}
		a.Events++
		out[e.Account] = a
	}
	return out
}

// gokaProducer returns a client that puts each key where goka looks for
// it (fnv-1a, as goka's and weft's producers hash).
func gokaProducer(t *testing.T, brokers []string, topic string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic),
		kgo.ProducerBatchMaxBytes(2<<20),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(kgo.SaramaCompatHasher(func(b []byte) uint32 {
			h := fnv.New32a()
			_, _ = h.Write(b)
			return h.Sum32()
		}))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// produceAll produces recs in order and waits until all are acknowledged.
func produceAll(t *testing.T, cl *kgo.Client, recs []kv) {
	t.Helper()
	for _, r := range recs {
		cl.Produce(context.Background(), &kgo.Record{Key: []byte(r.key), Value: r.value}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce %s: %v", r.key, err)
			}
		})
	}
	if err := cl.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// tableLatest reads table (a weft table topic) from its start to its end
// and returns each key's latest stored value (the envelope's user
// encoding); a tombstone deletes the key. It returns nil if the topic
// cannot be read to its end now.
func tableLatest(t *testing.T, brokers []string, table string) map[string][]byte {
	t.Helper()
	recs := topicRecords(t, brokers, table)
	if recs == nil {
		return nil
	}
	out := map[string][]byte{}
	for _, r := range recs {
		if r.Value == nil {
			delete(out, string(r.Key))
			continue
		}
		env, err := statestore.DecodeEnvelope(r.Value)
		if err != nil {
			t.Errorf("table %s: key %s: %v", table, r.Key, err)
			continue
		}
		out[string(r.Key)] = append([]byte(nil), env.Value...)
	}
	return out
}

// topicRecords reads every record of topic, from its start to the end it
// has when the call starts; nil if that fails within 30 s.
func topicRecords(t *testing.T, brokers []string, topic string) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	admCl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return nil
	}
	defer admCl.Close()
	ends, err := kadm.NewClient(admCl).ListEndOffsets(ctx, topic)
	if err != nil || ends.Error() != nil {
		return nil
	}
	parts := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			parts[o.Partition] = kgo.NewOffset().AtStart()
		}
	})
	out := []*kgo.Record{}
	if len(parts) == 0 {
		return out
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.FetchMaxBytes(8<<20),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}))
	if err != nil {
		return nil
	}
	defer cl.Close()
	done := map[int32]bool{}
	for len(done) < len(parts) {
		if ctx.Err() != nil {
			return nil
		}
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) {
			end, _ := ends.Lookup(topic, r.Partition)
			if r.Offset < end.Offset {
				out = append(out, r)
			}
			if r.Offset >= end.Offset-1 {
				done[r.Partition] = true
			}
		})
	}
	return out
}

// tableEnd returns the number of records in topic (the sum of its
// partitions' end offsets), or -1.
func tableEnd(t *testing.T, brokers []string, topic string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return -1
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil || ends.Error() != nil {
		return -1
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n
}

// bankDiff compares the accounts in table with want and returns the
// differences (at most 5, and their count).
func bankDiff(t *testing.T, table map[string][]byte, want map[string]bankAccount) (int, []string) {
	t.Helper()
	var bad []string
	n := 0
	for key, w := range want {
		var got bankAccount
		if v, ok := table[key]; ok {
			if err := json.Unmarshal(v, &got); err != nil {
				t.Errorf("account %s: %q: %v", key, v, err)
			}
		}
		if got != w {
			n++
			if len(bad) < 5 {
				bad = append(bad, fmt.Sprintf("%s = %+v, want %+v", key, got, w))
			}
		}
	}
	for key := range table {
		if _, ok := want[key]; !ok {
			n++
			if len(bad) < 5 {
				bad = append(bad, fmt.Sprintf("%s is in the table, but in no event", key))
			}
		}
	}
	sort.Strings(bad)
	return n, bad
}

// Phases of a `weft run` process, from its log (--log-format json
// --log-level debug: goka's lines are at debug level) and its /readyz.
const (
	logStarting   = `"msg":"processor starting"`
	logGeneration = `setup generation`
	logDiscarding = `discarding local state`
)

// readyz asks the /readyz of the query API at addr: the status code and
// the body, or 0 if it did not answer.
func readyz(addr string) (int, string) {
	c := http.Client{Timeout: 500 * time.Millisecond}
	resp, err := c.Get("http://" + addr + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// restoring reports whether the process's /readyz says a table is
// restoring.
func restoring(addr string) bool {
	code, body := readyz(addr)
	return code == http.StatusServiceUnavailable && strings.Contains(body, "restoring")
}

// waitReady waits until p has joined its group (a generation is set up)
// and its /readyz at addr says ready, and returns how long that took from
// since.
func waitReady(t *testing.T, p *proc, addr string, since time.Time, timeout time.Duration) time.Duration {
	t.Helper()
	var took time.Duration
	waitRunning(t, p, timeout, "weft run to join its group and restore", func() bool {
		if !strings.Contains(p.out.String(), logGeneration) {
			return false
		}
		code, _ := readyz(addr)
		took = time.Since(since)
		return code == http.StatusOK
	})
	return took
}

// waitRunning waits for cond like kafkatest.WaitFor, failing at once if p
// exits.
func waitRunning(t *testing.T, p *proc, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if !p.running() {
			t.Fatalf("weft %s exited while waiting for %s: %v", strings.Join(p.cmd.Args[1:], " "), what, p.err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// kill9 kills p (SIGKILL) and waits for it to exit.
func kill9(t *testing.T, p *proc) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.exited
}

// summaryOf returns the processed, rejected and replayed counts of the
// last summary line of a --log-format json process's output.
func summaryOf(t *testing.T, out string) (processed, rejected, replayed int64) {
	t.Helper()
	found := false
	for _, line := range strings.Split(out, "\n") {
		if !strings.Contains(line, `"msg":"summary"`) {
			continue
		}
		var s struct{ Processed, Rejected, Replayed int64 }
		if err := json.Unmarshal([]byte(line), &s); err != nil {
			t.Fatalf("summary %s: %v", line, err)
		}
		processed, rejected, replayed, found = s.Processed, s.Rejected, s.Replayed, true
	}
	if !found {
		t.Fatal("weft run logged no summary")
	}
	return processed, rejected, replayed
}

// produceBackground produces recs like produceAll, in a goroutine; wait
// for it with the returned function, which fails the test on an error.
func produceBackground(t *testing.T, cl *kgo.Client, recs []kv) (wait func()) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		for _, r := range recs {
			cl.Produce(context.Background(), &kgo.Record{Key: []byte(r.key), Value: r.value}, nil)
		}
		done <- cl.Flush(context.Background())
	}()
	return func() {
		t.Helper()
		if err := <-done; err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
}
