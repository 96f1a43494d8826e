package processors_test

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/weftstream/weft/broker"
	"github.com/weftstream/weft/internal/kafkatest"
	"github.com/weftstream/weft/kafkaclient"
	"github.com/weftstream/weft/processors"
)

// TestIntegrationBrokerOutage stops the broker under a running processor
// and starts it again on the same address and data dir a few seconds
// later: the processor must notice, keep retrying without returning, and
// resume by itself, with every key's count exact in its table and as the
// last value its coalescer emitted for the key.
func TestIntegrationBrokerOutage(t *testing.T) {
	kafkatest.SkipUnlessControllable(t)
	b := newOutageBroker(t)

	k := kafkaclient.Config{Brokers: b.addrs, Partitions: 4}
	input, output, group := kafkatest.Topic(t, "outage-in"), kafkatest.Topic(t, "outage-out"), kafkatest.Group(t, "outage")
	kafkatest.CreateTopic(t, k.Brokers, input, 4)

	logs := &logRecorder{}
	t.Cleanup(func() {
		if t.Failed() {
			logs.dump(t)
		}
	})
	rt := processors.NewRuntime()
	co := processors.NewCoalescer(rt, "outage-counts", goka.Stream(output), new(codec.String),
		[]processors.CoalesceOption{processors.FlushEvery(100 * time.Millisecond)}, processors.WithKafka(k))
	g := processors.DefineGroup(rt, goka.Group(group),
		goka.Input(goka.Stream(input), new(codec.Bytes), processors.Handle(rt, identity, func(ctx goka.Context, _ []byte) error {
			var n int64
			if v := ctx.Value(); v != nil {
				n = v.(int64)
			}
			ctx.SetValue(n + 1)
			co.Add(ctx, ctx.Key(), strconv.FormatInt(n+1, 10))
			return nil
		})),
		processors.Persist(new(codec.Int64)),
	)
	p, err := processors.NewProcessor(t.Context(), g,
		processors.WithKafka(k), processors.WithStateDir(t.TempDir()), processors.WithRuntime(rt), processors.WithCoalescer(co),
		processors.WithLogger(slog.New(logs)), processors.WithReconnectBackoff(200*time.Millisecond, 2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	running := func() {
		t.Helper()
		select {
		case err := <-done:
			t.Fatalf("processor returned during the outage: %v", err)
		default:
		}
	}

	const keys, perHalf = 20, 300
	want := map[string]int64{}
	batch := func(from int) [][3]string {
		recs := make([][3]string, 0, perHalf)
		for i := from; i < from+perHalf; i++ {
			key := fmt.Sprintf("k%02d", (i*7)%keys)
			want[key]++
			recs = append(recs, [3]string{key, "x", ""})
		}
		return recs
	}
	e := &env{t: t, kafka: k}
	e.produce(input, batch(0)...)
	tl := rt.Tally()
	kafkatest.WaitFor(t, waitTimeout, "the processor to handle records before the outage", func() bool {
		running()
		return tl.Processed() >= perHalf/2
	})

	b.down()
	outage := time.Now()
	kafkatest.WaitFor(t, time.Minute, "the processor to notice the outage", func() bool {
		running()
		return logs.has(slog.LevelWarn, "processor lost the Kafka cluster")
	})
	t.Logf("outage noticed after %s", time.Since(outage).Round(time.Millisecond))
	// Stay down for a few seconds, over several reconnection attempts.
	time.Sleep(3 * time.Second)
	running()
	b.up()
	back := time.Now()

	e.produce(input, batch(perHalf)...)
	kafkatest.WaitFor(t, waitTimeout, "every key's count in the table", func() bool {
		running()
		gp := p.Goka()
		if !gp.Recovered() { // goka's Get needs a processor that has recovered
			return false
		}
		for key, n := range want {
			v, err := gp.Get(key)
			if err != nil {
				return false
			}
			st, ok := v.(*processors.Stored)
			if !ok || st.Value != n {
				return false
			}
		}
		return true
	})
	t.Logf("caught up %s after the broker came back", time.Since(back).Round(time.Millisecond))

	// The coalescer's last value of every key is its final count (outputs
	// are at-least-once: earlier values may come more than once).
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Brokers...), kgo.ConsumeTopics(output),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	last := map[string]string{}
	kafkatest.WaitFor(t, waitTimeout, "the coalescer's final value of every key", func() bool {
		pctx, pcancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer pcancel()
		cl.PollFetches(pctx).EachRecord(func(r *kgo.Record) { last[string(r.Key)] = string(r.Value) })
		for key, n := range want {
			if last[key] != strconv.FormatInt(n, 10) {
				return false
			}
		}
		return true
	})
	if !logs.has(slog.LevelInfo, "processor reconnected to the Kafka cluster") {
		t.Error("the processor did not log that it reconnected")
	}
	if got := tl.Processed(); got < 2*perHalf {
		t.Errorf("processed %d records, want at least %d", got, 2*perHalf)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after cancel: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("processor did not stop within a minute")
	}
}

// TestIntegrationBrokerOutageGiveUp checks the give-up limit: a processor
// whose broker stays away returns an error once the outage has lasted
// WithGiveUpAfter.
func TestIntegrationBrokerOutageGiveUp(t *testing.T) {
	kafkatest.SkipUnlessControllable(t)
	b := newOutageBroker(t)
	k := kafkaclient.Config{Brokers: b.addrs, Partitions: 2}
	input, group := kafkatest.Topic(t, "giveup-in"), kafkatest.Group(t, "giveup")
	kafkatest.CreateTopic(t, k.Brokers, input, 2)
	rt := processors.NewRuntime()
	const giveUp = 2 * time.Second
	p, err := processors.NewProcessor(t.Context(), counterGraph(rt, group, input),
		processors.WithKafka(k), processors.WithStateDir(t.TempDir()), processors.WithRuntime(rt),
		processors.WithReconnectBackoff(100*time.Millisecond, 500*time.Millisecond), processors.WithGiveUpAfter(giveUp))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Run(t.Context()) }()
	kafkatest.WaitFor(t, waitTimeout, "the processor to get ready", func() bool { return p.Goka().Recovered() })
	b.down()
	closed := time.Now()
	select {
	case err := <-done:
		took := time.Since(closed)
		t.Logf("gave up %s after the broker closed: %v", took.Round(time.Millisecond), err)
		if err == nil || !strings.Contains(err.Error(), "lost the Kafka cluster for longer than 2s and gave up") {
			t.Fatalf("Run: %v, want the give-up error", err)
		}
		if took < giveUp {
			t.Fatalf("gave up after %s, before the limit %s", took, giveUp)
		}
	case <-time.After(time.Minute):
		t.Fatal("the processor did not give up within a minute")
	}
}

// outageBroker is a broker a test stops and starts again on the same
// address and data: an embedded one of its own, or the real cluster of
// kafkatest.EnvBrokers through kafkatest.EnvControl. The real one is
// running again when the test ends.
type outageBroker struct {
	t        *testing.T
	addrs    []string
	dir      string
	embedded *broker.Broker // nil while down, and with real Kafka
	realDown bool
}

func newOutageBroker(t *testing.T) *outageBroker {
	t.Helper()
	o := &outageBroker{t: t}
	if kafkatest.RealKafka() {
		o.addrs = kafkatest.Brokers(t)
		t.Cleanup(func() {
			if o.realDown {
				kafkatest.ControlBroker(t, "start")
			}
		})
		return o
	}
	o.dir = t.TempDir()
	o.embedded = startOutageBroker(t, "127.0.0.1:0", o.dir)
	o.addrs = o.embedded.Addrs()
	t.Cleanup(func() {
		if o.embedded != nil {
			_ = o.embedded.Close()
		}
	})
	return o
}

// down stops the broker (SIGTERM for the real one).
func (o *outageBroker) down() {
	o.t.Helper()
	if o.embedded == nil {
		kafkatest.ControlBroker(o.t, "stop")
		o.realDown = true
		return
	}
	if err := o.embedded.Close(); err != nil {
		o.t.Fatal(err)
	}
	o.embedded = nil
}

// up starts the broker again on the same address and data.
func (o *outageBroker) up() {
	o.t.Helper()
	if kafkatest.RealKafka() {
		kafkatest.ControlBroker(o.t, "start")
		o.realDown = false
		return
	}
	o.embedded = startOutageBroker(o.t, o.addrs[0], o.dir)
}

func startOutageBroker(t *testing.T, addr, dir string) *broker.Broker {
	t.Helper()
	b, err := broker.Start(t.Context(), broker.WithAddr(addr), broker.WithDataDir(dir),
		broker.WithLogger(slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelError}))))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// logRecorder is a slog.Handler that keeps every record's level and
// message.
type logRecorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recs = append(l.recs, r)
	return nil
}
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }

func (l *logRecorder) has(level slog.Level, msg string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.recs {
		if r.Level == level && strings.Contains(r.Message, msg) {
			return true
		}
	}
	return false
}

// dump logs the records at info level and above.
func (l *logRecorder) dump(t *testing.T) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.recs {
		if r.Level < slog.LevelInfo {
			continue
		}
		var attrs strings.Builder
		r.Attrs(func(a slog.Attr) bool {
			attrs.WriteString(" " + a.String())
			return true
		})
		t.Logf("log: %s %s%s", r.Level, r.Message, attrs.String())
	}
}
