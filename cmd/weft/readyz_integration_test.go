package main

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/weftstream/weft/internal/kafkatest"
)

// readyWatch follows the /readyz of one `weft run` process: when it first
// answered 503, when it first answered 200 (after that 503, once there
// was one), and the reasons of the 503s it gave.
type readyWatch struct {
	p        *proc
	addr     string
	first503 time.Time
	ready    time.Time // the first 200 (zero: none yet)
	reasons  []string  // distinct 503 details, in order
}

// poll asks /readyz once and records the answer; it returns the status
// code (0: no answer, e.g. not listening yet).
func (w *readyWatch) poll() int {
	code, body := readyz(w.addr)
	switch code {
	case http.StatusServiceUnavailable:
		if w.first503.IsZero() {
			w.first503 = time.Now()
		}
		var p struct {
			Detail string `json:"detail"`
		}
		_ = json.Unmarshal([]byte(body), &p)
		if !slices.Contains(w.reasons, p.Detail) {
			w.reasons = append(w.reasons, p.Detail)
		}
	case http.StatusOK:
		if w.ready.IsZero() || w.ready.Before(w.first503) {
			w.ready = time.Now()
		}
	}
	return code
}

// said reports whether one of the 503s contained s.
func (w *readyWatch) said(s string) bool {
	return slices.ContainsFunc(w.reasons, func(r string) bool { return strings.Contains(r, s) })
}

// held returns the partitions of the table served at addr that the
// instance holds and those of them it has restored (GET /tables).
func held(t *testing.T, addr string) (assigned, ready []int32) {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + "/tables")
	if err != nil {
		t.Fatalf("GET /tables: %v", err)
	}
	defer resp.Body.Close()
	var out struct {
		Tables []struct {
			Assigned []int32 `json:"assigned"`
			Ready    []int32 `json:"ready"`
		} `json:"tables"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || len(out.Tables) != 1 {
		t.Fatalf("GET /tables: %v (%d tables, want 1)", err, len(out.Tables))
	}
	return out.Tables[0].Assigned, out.Tables[0].Ready
}

// groupMembers returns the state and member count of group.
func groupMembers(t *testing.T, brokers []string, group string) (string, int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	groups, err := kadm.NewClient(cl).DescribeGroups(ctx, group)
	if err != nil {
		t.Fatalf("describe group %s: %v", group, err)
	}
	g := groups[group]
	return g.State, len(g.Members)
}

// readyzSetup creates the input of a bank projection with partitions
// partitions and some events, and returns a function that starts a `weft
// run` of it (goka's lines at debug level) with its readiness watch.
func readyzSetup(t *testing.T, partitions int32) (brokers []string, group string, start func() *readyWatch) {
	brokers = kafkatest.Brokers(t)
	input, group := kafkatest.Topic(t, "bank-events"), kafkatest.Group(t, "bank")
	kafkatest.CreateTopic(t, brokers, input, partitions)
	produceAll(t, gokaProducer(t, brokers, input), genBank(2000, 100, 29))
	return brokers, group, func() *readyWatch {
		addr := freeAddr(t)
		p := startProc(t, "run", "--input", input, "--group", group, "--state-dir", t.TempDir(),
			"--brokers", strings.Join(brokers, ","), "--partitions", strconv.Itoa(int(partitions)), "--log-format", "json", "--log-level", "debug",
			"--progress-interval", "0", "--http-addr", addr)
		return &readyWatch{p: p, addr: addr}
	}
}

// /readyz says ready only once the group's join is complete and the
// partitions it assigned are restored: a first instance is not ready
// while it joins, a second one not while it joins the running group,
// and the first one not while the rebalance revokes its partitions and
// assigns them anew. Ready again, each holds its share, restored.
func TestIntegrationReadyzWaitsForTheGroupJoin(t *testing.T) {
	brokers, group, start := readyzSetup(t, 4)
	all := []int32{0, 1, 2, 3}

	a := start()
	began := time.Now()
	waitRunning(t, a.p, 3*time.Minute, "the first instance's /readyz to say ready", func() bool { return a.poll() == http.StatusOK })
	// Ready means the assignment is there and restored; before the fix
	// the first 200 came at once, holding nothing.
	if assigned, ready := held(t, a.addr); !slices.Equal(assigned, all) || !slices.Equal(ready, all) {
		t.Fatalf("the first instance answered ready holding partitions %v (%v restored), want all of %v restored", assigned, ready, all)
	}
	if state, n := groupMembers(t, brokers, group); state != "Stable" || n != 1 {
		t.Fatalf("the first instance answered ready while its group is %s with %d members, want Stable with 1", state, n)
	}
	t.Logf("first instance: ready %s after start (not ready for %s; said %q)", a.ready.Sub(began).Round(time.Millisecond),
		since(a.first503, a.ready), a.reasons)

	// A second instance: both are not ready during the rebalance.
	b := start()
	joined := time.Now()
	a.first503, a.ready, a.reasons = time.Time{}, time.Time{}, nil
	waitRunning(t, b.p, 3*time.Minute, "both instances to be ready after the rebalance", func() bool {
		wasReady := !b.ready.IsZero()
		bCode := b.poll()
		if !wasReady && bCode == http.StatusOK {
			// Checked at once: the first 200 only with the assignment.
			assigned, ready := held(t, b.addr)
			if len(assigned) != 2 || !slices.Equal(assigned, ready) {
				t.Fatalf("the second instance answered ready holding partitions %v (%v restored), want 2 of them restored", assigned, ready)
			}
		}
		aCode := a.poll()
		if !a.running() {
			t.Fatalf("the first instance exited: %v", a.p.err)
		}
		return !b.ready.IsZero() && bCode == http.StatusOK && !a.first503.IsZero() && aCode == http.StatusOK
	})
	if !b.said("is joining its consumer group") {
		t.Errorf("the second instance never said it was joining its group; it said %q", b.reasons)
	}
	if !a.said("is rebalancing") {
		t.Errorf("the first instance never said it was rebalancing; it said %q", a.reasons)
	}
	aHeld, aReady := held(t, a.addr)
	bHeld, bReady := held(t, b.addr)
	if len(aHeld) != 2 || len(bHeld) != 2 || !slices.Equal(slices.Sorted(slices.Values(append(slices.Clone(aHeld), bHeld...))), all) ||
		!slices.Equal(aHeld, aReady) || !slices.Equal(bHeld, bReady) {
		t.Fatalf("after the rebalance the instances hold %v (%v restored) and %v (%v restored), want two each of %v, restored",
			aHeld, aReady, bHeld, bReady, all)
	}
	t.Logf("second instance: ready %s after start (not ready for %s; said %q)", b.ready.Sub(joined).Round(time.Millisecond),
		since(b.first503, b.ready), b.reasons)
	t.Logf("first instance during the rebalance: not ready for %s (from %s after the second started; said %q)",
		since(a.first503, a.ready), a.first503.Sub(joined).Round(time.Millisecond), a.reasons)
}

// An instance that the completed join gives no partition (more instances
// than partitions) is ready: it holds a current assignment, of nothing.
func TestIntegrationReadyzMemberWithoutPartitions(t *testing.T) {
	brokers, group, start := readyzSetup(t, 1)
	a := start()
	waitRunning(t, a.p, 3*time.Minute, "the first instance's /readyz to say ready", func() bool { return a.poll() == http.StatusOK })
	b := start()
	joined := time.Now()
	waitRunning(t, b.p, 3*time.Minute, "the second instance's /readyz to say ready", func() bool { return b.poll() == http.StatusOK })
	// Ready only after the join that gave it its (empty) assignment.
	if state, n := groupMembers(t, brokers, group); state != "Stable" || n != 2 {
		t.Fatalf("the second instance answered ready while its group is %s with %d members, want Stable with 2", state, n)
	}
	t.Logf("second instance: ready %s after start (not ready for %s; said %q)", b.ready.Sub(joined).Round(time.Millisecond),
		since(b.first503, b.ready), b.reasons)
	waitRunning(t, a.p, 3*time.Minute, "the first instance's /readyz to say ready after the rebalance", func() bool {
		return a.poll() == http.StatusOK
	})
	aHeld, aReady := held(t, a.addr)
	bHeld, bReady := held(t, b.addr)
	if len(aHeld)+len(bHeld) != 1 || !slices.Equal(aHeld, aReady) || !slices.Equal(bHeld, bReady) {
		t.Fatalf("the instances hold %v (%v restored) and %v (%v restored), want partition 0 on one of them, restored", aHeld, aReady, bHeld, bReady)
	}
	for _, w := range []*readyWatch{a, b} {
		if code, body := readyz(w.addr); code != http.StatusOK {
			assigned, _ := held(t, w.addr)
			t.Errorf("an instance holding %v: /readyz %d %s, want 200", assigned, code, body)
		}
	}
}

func (w *readyWatch) running() bool { return w.p.running() }

// since is b-a rounded, or "never" if a is zero.
func since(a, b time.Time) string {
	if a.IsZero() {
		return "never (no 503 seen)"
	}
	return b.Sub(a).Round(time.Millisecond).String()
}
