package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/weftstream/weft/internal/kafkatest"
	"github.com/weftstream/weft/kafkaclient"
	"github.com/weftstream/weft/statestore"
)

// lockedBuffer is an io.Writer whose contents can be read while a process
// writes to it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// proc is `weft args...` running as a process (this test binary as weft),
// whose output can be read while it runs.
type proc struct {
	cmd    *exec.Cmd
	out    *lockedBuffer
	exited chan struct{}
	err    error
}

func startProc(t *testing.T, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(os.Args[0], args...), out: &lockedBuffer{}, exited: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), envAsWeft+"=1")
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("output of weft %s:\n%s", strings.Join(args, " "), p.out.String())
		}
	})
	return p
}

func (p *proc) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// signal sends sig and waits for the process to exit.
func (p *proc) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(time.Minute):
		t.Fatalf("weft %s did not exit on %s", strings.Join(p.cmd.Args[1:], " "), sig)
	}
}

// envOutage sets how long TestIntegrationRunRidesOutBrokerRestarts keeps
// the broker down (a Go duration; default 3s), e.g. 90s for outages longer
// than every client timeout.
const envOutage = "WEFT_TEST_OUTAGE"

// A `weft run` against a `weft broker` process rides out the broker being
// stopped (SIGTERM) and, later, killed (SIGKILL), each time started again
// on the same address and data dir a few seconds later ($WEFT_TEST_OUTAGE):
// it never exits,
// logs that it lost the cluster and that it reconnected, and ends with
// every account of testdata/bank exactly as the reference computes it.
func TestIntegrationRunRidesOutBrokerRestarts(t *testing.T) {
	kafkatest.SkipUnlessControllable(t)
	outage := 3 * time.Second
	if v := os.Getenv(envOutage); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("%s: %v", envOutage, err)
		}
		outage = d
	}
	// The broker: a `weft broker` process, or the real cluster (stopped
	// and started through kafkatest.EnvControl).
	var addr, dataDir string
	var b *proc
	realDown := false
	if kafkatest.RealKafka() {
		addr = strings.Join(kafkatest.Brokers(t), ",")
		t.Cleanup(func() {
			if realDown {
				kafkatest.ControlBroker(t, "start")
			}
		})
	} else {
		addr, dataDir = freeAddr(t), t.TempDir()
	}
	startBroker := func() {
		if kafkatest.RealKafka() {
			kafkatest.ControlBroker(t, "start")
			realDown = false
			return
		}
		b = startProc(t, "broker", "--embedded-addr", addr, "--data-dir", dataDir, "--log-level", "error")
		kafkatest.WaitFor(t, time.Minute, "weft broker to serve on "+addr, func() bool {
			if !b.running() {
				t.Fatalf("weft broker exited: %v", b.err)
			}
			_, err := (kafkaclient.Config{Brokers: []string{addr}}).PartitionCounts(t.Context(), nil)
			return err == nil
		})
	}
	stopBroker := func(sig os.Signal) {
		if kafkatest.RealKafka() {
			action := "stop"
			if sig == syscall.SIGKILL {
				action = "kill"
			}
			kafkatest.ControlBroker(t, action)
			realDown = true
			return
		}
		b.signal(t, sig)
	}
	if !kafkatest.RealKafka() {
		startBroker()
	}

	input, group := kafkatest.Topic(t, "bank-events"), kafkatest.Group(t, "bank")
	// Created before weft run and weft produce start, which would both
	// create it (on real Kafka the second creation fails).
	kafkatest.CreateTopic(t, strings.Split(addr, ","), input, 4)
	common := []string{"--brokers", addr, "--log-level", "warn", "--partitions", "4"}
	lines, want := bankReference(t)
	produce := bankProducer(t, input, common)

	run := startProc(t, append([]string{"run", "--input", input, "--group", group, "--state-dir", t.TempDir(),
		"--log-format", "json", "--progress-interval", "0"}, append(common, "--log-level", "info")...)...)
	const lost, back = `"msg":"processor lost the Kafka cluster; reconnecting"`, `"msg":"processor reconnected to the Kafka cluster"`
	third := len(lines) / 3
	count := func(msg string) int { return strings.Count(run.out.String(), msg) }
	for i, sig := range []os.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		produce(lines[i*third : (i+1)*third])
		time.Sleep(300 * time.Millisecond) // stop the broker while the processor works on the records
		lostBefore, backBefore := count(lost), count(back)
		stopBroker(sig)
		down := time.Now()
		kafkatest.WaitFor(t, time.Minute, fmt.Sprintf("weft run to notice the broker's %s", sig), func() bool {
			if !run.running() {
				t.Fatalf("weft run exited after the broker's %s: %v", sig, run.err)
			}
			return count(lost) > lostBefore
		})
		t.Logf("%s: outage noticed after %s", sig, time.Since(down).Round(time.Millisecond))
		time.Sleep(outage)
		startBroker()
		up := time.Now()
		kafkatest.WaitFor(t, 2*time.Minute, fmt.Sprintf("weft run to reconnect after the broker's %s", sig), func() bool {
			if !run.running() {
				t.Fatalf("weft run exited: %v", run.err)
			}
			return count(back) > backBefore
		})
		t.Logf("%s: reconnected %s after the broker was back", sig, time.Since(up).Round(time.Millisecond))
	}
	produce(lines[2*third:])

	// The table topic, read from the start to its end each time (a goka
	// view of it raced with goka's own close under -race when the view's
	// run ended).
	tableCl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(addr, ",")...))
	if err != nil {
		t.Fatal(err)
	}
	defer tableCl.Close()
	table := group + "-table"
	latest := func() map[string]map[string]any {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		ends, err := kadm.NewClient(tableCl).ListEndOffsets(ctx, table)
		if err != nil {
			return nil
		}
		parts := map[int32]kgo.Offset{}
		left := 0
		ends.Each(func(o kadm.ListedOffset) {
			if o.Offset > 0 {
				parts[o.Partition] = kgo.NewOffset().AtStart()
				left++
			}
		})
		out := map[string]map[string]any{}
		if left == 0 {
			return out
		}
		cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(addr, ",")...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{table: parts}))
		if err != nil {
			return nil
		}
		defer cl.Close()
		done := map[int32]bool{}
		for len(done) < left && ctx.Err() == nil {
			cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
				env, err := statestore.DecodeEnvelope(r.Value)
				if err == nil {
					var acc map[string]any
					if json.Unmarshal(env.Value, &acc) == nil {
						out[string(r.Key)] = acc
					}
				} else if r.Value == nil {
					delete(out, string(r.Key))
				}
				if end, _ := ends.Lookup(table, r.Partition); r.Offset >= end.Offset-1 {
					done[r.Partition] = true
				}
			})
		}
		return out
	}
	differ := func() []string {
		var bad []string
		accounts := latest()
		for key, w := range want {
			got := accounts[key]
			for field, wv := range w {
				if !reflect.DeepEqual(got[field], wv) {
					bad = append(bad, fmt.Sprintf("%s = %v, want %v", key, got, w))
					break
				}
			}
		}
		return bad
	}
	kafkatest.WaitFor(t, 2*time.Minute, "every account to match the reference", func() bool {
		if !run.running() {
			t.Fatalf("weft run exited: %v", run.err)
		}
		return len(differ()) == 0
	})
	run.signal(t, os.Interrupt)
	if run.err != nil {
		t.Fatalf("weft run after Ctrl-C: %v", run.err)
	}
	if n := strings.Count(run.out.String(), "rejected input record"); n > 0 {
		t.Errorf("weft run rejected %d records", n)
	}
	if b != nil {
		b.signal(t, os.Interrupt)
	}
}
