package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weftstream/weft/internal/kafkatest"
)

// cutProxy forwards TCP connections to a target and can cut them all.
type cutProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	down   bool
	// received counts the bytes that came back from the target.
	received atomic.Int64
}

type countingWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); p.cut(true) })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			if p.down {
				p.mu.Unlock()
				c.Close()
				continue
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				p.mu.Unlock()
				c.Close()
				continue
			}
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { io.Copy(up, c); up.Close() }()
			go func() { io.Copy(countingWriter{c, &p.received}, up); c.Close() }()
		}
	}()
	return p
}

// cut closes every connection; down refuses new ones until cut(false).
func (p *cutProxy) cut(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// accountEvents writes n deposits of 100 cents to account after its
// creation (when create), as an events file.
func accountEvents(t *testing.T, account string, create bool, from, n int) string {
	var b strings.Builder
	if create {
		fmt.Fprintf(&b, `{"type":"AccountCreated","account":%q,"owner":"Watch Test","at":"2026-03-01T00:00:00Z"}`+"\n", account)
	}
	for i := range n {
		fmt.Fprintf(&b, `{"type":"Deposited","account":%q,"amount":100,"at":"2026-03-01T00:%02d:00Z"}`+"\n", account, from+i)
	}
	path := filepath.Join(t.TempDir(), "events.jsonl")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// watchLine is a --json line of weft watch.
type watchLine struct {
	Key     string `json:"key"`
	Version uint64 `json:"version"`
	Value   struct {
		Balance int64 `json:"balance"`
		Events  int64 `json:"events"`
	} `json:"value"`
	Writer string `json:"writer_traceparent"`
}

func parseWatchLines(t *testing.T, out string) []watchLine {
	var lines []watchLine
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		var w watchLine
		if err := json.Unmarshal([]byte(l), &w); err != nil {
			t.Fatalf("weft watch --json printed %q: %v", l, err)
		}
		lines = append(lines, w)
	}
	return lines
}

// weft watch prints every change of a key from a running weft run, as
// JSON lines; when the stream breaks it reconnects and resumes after the
// last change it printed (the changes made meanwhile come once each, in
// order); Ctrl-C (the context ending) exits 0.
func TestIntegrationWatchCommandFollowsAndResumes(t *testing.T) {
	brokers := strings.Join(kafkatest.Brokers(t), ",")
	input, group := kafkatest.Topic(t, "bank-events"), kafkatest.Group(t, "bank")
	common := []string{"--brokers", brokers, "--log-level", "error", "--partitions", "2"}
	addr := freeAddr(t)
	runCtx, stopRun := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() {
		_, err := weft(runCtx, append([]string{"run", "--input", input, "--group", group, "--state-dir", t.TempDir(), "--http-addr", addr,
			"--cache-max-bytes", "0"}, common...)...)
		runDone <- err
	}()
	defer func() {
		stopRun()
		if err := <-runDone; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	produce := func(path string) {
		t.Helper()
		if out, err := weft(t.Context(), append([]string{"produce", input, path, "--key-field", "account"}, common...)...); err != nil {
			t.Fatalf("produce: %v\n%s", err, out)
		}
	}
	produce(accountEvents(t, "w-1", true, 0, 0))
	kafkatest.WaitFor(t, time.Minute, "w-1 served", func() bool {
		resp, err := http.Get("http://" + addr + "/tables/" + group + "/w-1")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})

	proxy := newCutProxy(t, addr)
	var out lockedBuffer
	watchCtx, stopWatch := context.WithCancel(context.Background())
	watchDone := make(chan error, 1)
	go func() {
		root := newRootCommand()
		root.SetArgs(append([]string{"watch", group, "w-1", "--json", "--server", "http://" + proxy.ln.Addr().String()}, common...))
		root.SetOut(&out)
		root.SetErr(io.Discard)
		watchDone <- root.ExecuteContext(watchCtx)
	}()
	defer stopWatch()
	// waitVersion waits until weft watch printed version v of w-1.
	waitVersion := func(v uint64) []watchLine {
		t.Helper()
		var lines []watchLine
		kafkatest.WaitFor(t, time.Minute, fmt.Sprintf("version %d from weft watch", v), func() bool {
			select {
			case err := <-watchDone:
				t.Fatalf("watch ended: %v\n%s", err, out.String())
			default:
			}
			lines = parseWatchLines(t, out.String())
			return len(lines) > 0 && lines[len(lines)-1].Version >= v
		})
		return lines
	}
	// The server subscribes the watch before it answers.
	kafkatest.WaitFor(t, time.Minute, "the watch subscribed", func() bool { return proxy.received.Load() > 0 })
	produce(accountEvents(t, "w-1", false, 1, 2))
	waitVersion(3)

	// Break the stream and keep it broken while two more changes happen:
	// the watch resumes after version 3 and prints 4 and 5 once each.
	proxy.cut(true)
	produce(accountEvents(t, "w-1", false, 3, 2))
	kafkatest.WaitFor(t, time.Minute, "w-1 at version 5", func() bool {
		resp, err := http.Get("http://" + addr + "/tables/" + group + "/w-1")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var v watchLine
		return json.NewDecoder(resp.Body).Decode(&v) == nil && v.Version == 5
	})
	if got := parseWatchLines(t, out.String()); got[len(got)-1].Version != 3 {
		t.Fatalf("weft watch printed version %d while cut off, want 3 still", got[len(got)-1].Version)
	}
	proxy.cut(false)
	waitVersion(5)
	produce(accountEvents(t, "w-1", false, 5, 1))
	lines := waitVersion(6)

	// The creation is version 1 (acknowledged by the changelog before or
	// after the watch subscribed: it may be printed); deposits of 100
	// make versions 2..6 with balances 100..500. Each once, in order.
	if len(lines) == 0 || lines[0].Version > 2 {
		t.Fatalf("weft watch printed:\n%s\nwant versions from 1 or 2 to 6", out.String())
	}
	for i, l := range lines {
		v := lines[0].Version + uint64(i)
		if l.Key != "w-1" || l.Version != v || l.Value.Balance != int64(100*(v-1)) || l.Value.Events != int64(v) ||
			!strings.HasPrefix(l.Writer, "00-") {
			t.Errorf("change %d = %+v, want w-1 version %d balance %d", i, l, v, 100*(v-1))
		}
	}
	if lines[len(lines)-1].Version != 6 {
		t.Errorf("the last change is version %d, want 6", lines[len(lines)-1].Version)
	}
	stopWatch()
	select {
	case err := <-watchDone:
		if err != nil {
			t.Fatalf("weft watch after Ctrl-C: %v, want exit 0", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("weft watch did not end with its context")
	}

	// Mistakes are final: an unknown table, and nothing listening.
	if _, err := weft(t.Context(), append([]string{"watch", "no-such-table", "k", "--server", "http://" + addr}, common...)...); err == nil ||
		!strings.Contains(err.Error(), "does not serve") {
		t.Errorf("watch of an unknown table: %v", err)
	}
	if _, err := weft(t.Context(), append([]string{"watch", group, "k", "--server", "http://" + freeAddr(t)}, common...)...); err == nil {
		t.Error("watch with nothing listening succeeded")
	}
	if _, err := weft(t.Context(), append([]string{"watch", group, "--server", "http://" + addr}, common...)...); exitCode(err) != 2 {
		t.Errorf("watch without a key: %v, want a usage error", err)
	}
}

// weft watch --prefix at one of two instances of a group watches the
// prefix at both: the first names the other in its "partial" event, and
// the changes of the keys of both instances' partitions are printed, each
// once.
func TestIntegrationWatchCommandPrefixAtTwoInstances(t *testing.T) {
	brokers := strings.Join(kafkatest.Brokers(t), ",")
	input, group := kafkatest.Topic(t, "bank-events"), kafkatest.Group(t, "bank")
	common := []string{"--brokers", brokers, "--log-level", "error", "--partitions", "4"}
	addrs := []string{freeAddr(t), freeAddr(t)}
	ctx, stop := context.WithCancel(context.Background())
	var runs sync.WaitGroup
	for _, addr := range addrs {
		runs.Go(func() {
			if out, err := weft(ctx, append([]string{"run", "--input", input, "--group", group, "--state-dir", t.TempDir(), "--http-addr", addr,
				"--cache-max-bytes", "0"}, common...)...); err != nil {
				t.Errorf("run at %s: %v\n%s", addr, err, out)
			}
		})
	}
	defer func() { stop(); runs.Wait() }()
	// Both members hold restored partitions, four in all.
	kafkatest.WaitFor(t, 2*time.Minute, "the partitions split over two ready instances", func() bool {
		total := 0
		for _, addr := range addrs {
			resp, err := http.Get("http://" + addr + "/tables")
			if err != nil {
				return false
			}
			var ts struct {
				Tables []struct {
					Assigned []int32 `json:"assigned"`
					Ready    []int32 `json:"ready"`
				} `json:"tables"`
			}
			err = json.NewDecoder(resp.Body).Decode(&ts)
			resp.Body.Close()
			if err != nil || len(ts.Tables) != 1 || len(ts.Tables[0].Ready) == 0 || len(ts.Tables[0].Ready) != len(ts.Tables[0].Assigned) {
				return false
			}
			total += len(ts.Tables[0].Ready)
		}
		return total == 4
	})

	var out, errOut lockedBuffer
	watchCtx, stopWatch := context.WithCancel(context.Background())
	watchDone := make(chan error, 1)
	go func() {
		root := newRootCommand()
		root.SetArgs(append([]string{"watch", group, "--prefix", "p-", "--json", "--server", "http://" + addrs[0]}, common...))
		root.SetOut(&out)
		root.SetErr(&errOut)
		watchDone <- root.ExecuteContext(watchCtx)
	}()
	defer stopWatch()
	kafkatest.WaitFor(t, time.Minute, "the watch subscribed at the second instance", func() bool {
		return strings.Contains(errOut.String(), "watching http://"+addrs[1]+" too")
	})

	// Eight accounts: with four partitions over two instances, keys of
	// both (goka's hash of p-0..p-7 covers every partition).
	var events strings.Builder
	for i := range 8 {
		fmt.Fprintf(&events, `{"type":"AccountCreated","account":"p-%d","owner":"Prefix Test","at":"2026-03-01T00:00:00Z"}`+"\n", i)
	}
	path := filepath.Join(t.TempDir(), "events.jsonl")
	if err := os.WriteFile(path, []byte(events.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if o, err := weft(t.Context(), append([]string{"produce", input, path, "--key-field", "account"}, common...)...); err != nil {
		t.Fatalf("produce: %v\n%s", err, o)
	}
	var lines []watchLine
	kafkatest.WaitFor(t, time.Minute, "the creation of p-0..p-7 printed", func() bool {
		select {
		case err := <-watchDone:
			t.Fatalf("watch ended: %v\n%s\n%s", err, out.String(), errOut.String())
		default:
		}
		lines = parseWatchLines(t, out.String())
		return len(lines) >= 8
	})
	got := map[string]int{}
	for _, l := range lines {
		if l.Version != 1 || l.Value.Events != 1 {
			t.Errorf("change %+v, want a creation (version 1)", l)
		}
		got[l.Key]++
	}
	for i := range 8 {
		if k := fmt.Sprintf("p-%d", i); got[k] != 1 {
			t.Errorf("%s printed %d times, want once; all: %v", k, got[k], got)
		}
	}
	// Some of the keys are the second instance's own.
	second := 0
	for i := range 8 {
		resp, err := http.Get(fmt.Sprintf("http://%s/tables/%s/p-%d", addrs[1], group, i))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == 200 && resp.Header.Get("Weft-Served-By") == "" {
			second++
		}
	}
	if second == 0 || second == 8 {
		t.Fatalf("the second instance holds %d of the 8 keys: the test needs keys at both", second)
	}
	stopWatch()
	if err := <-watchDone; err != nil {
		t.Fatalf("weft watch after Ctrl-C: %v", err)
	}
}
