package processors_test

import (
	"strings"
	"testing"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/weftstream/weft/internal/kafkatest"
	"github.com/weftstream/weft/processors"
)

// produceRaw sends records with franz-go, keeping nil values as nulls
// (tombstones), to partition 0 of topic.
func produceRaw(t *testing.T, e *env, topic string, recs ...[2]*string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.kafka.Brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, r := range recs {
		rec := &kgo.Record{Topic: topic, Key: []byte(*r[0]), Partition: 0}
		if r[1] != nil {
			rec.Value = []byte(*r[1])
		}
		if err := cl.ProduceSync(t.Context(), rec).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

func str(s string) *string { return &s }

// A null value (tombstone) on a stateful group's input is neither dropped
// nor applied: it goes to the dead-letter topic with reason null, and the
// tally accounts for every input. A handler that accepts nulls gets them.
func TestIntegrationNullValuesAreDeadLettered(t *testing.T) {
	e := newEnv(t)
	input := kafkatest.Topic(t, "nulls-in")
	kafkatest.CreateTopic(t, e.kafka.Brokers, input, 1)
	group := kafkatest.Group(t, "nulls")
	rt := e.runtime()
	g := counterGraph(rt, group, input)
	produceRaw(t, e, input, [2]*string{str("a"), str("x")}, [2]*string{str("a"), nil}, [2]*string{str("a"), str("y")})
	r := e.start(rt, g, t.TempDir())
	r.waitHandled(t, 3)
	if p, rej := rt.Tally().Processed(), rt.Tally().RejectedByReason(); p != 2 || rej[processors.ReasonNull] != 1 || len(rej) != 1 {
		t.Fatalf("processed %d, rejected %v; want 2 processed and 1 rejected as %q", p, rej, processors.ReasonNull)
	}
	dead := kafkatest.Consume(t, e.kafka.Brokers, string(processors.DeadLetterTopic(goka.Group(group))), 1, waitTimeout)
	if d := dead[0]; string(d.Key) != "a" || d.Value != nil || header(d, processors.HeaderErrorReason) != processors.ReasonNull {
		t.Fatalf("dead letter %+v", d)
	}
	kafkatest.WaitFor(t, waitTimeout, "count of a is 2", func() bool {
		v, err := r.p.Goka().Get("a")
		s, _ := v.(*processors.Stored)
		return err == nil && s != nil && s.Value == int64(2)
	})

	// A handler that gives nulls a meaning (here: delete) gets them.
	rt2 := e.runtime()
	group2 := kafkatest.Group(t, "nulls-delete")
	g2 := processors.DefineGroup(rt2, goka.Group(group2),
		goka.Input(goka.Stream(input), new(codec.Bytes), processors.Handle(rt2, identity, func(ctx goka.Context, v []byte) error {
			if v == nil {
				ctx.Delete()
				return nil
			}
			ctx.SetValue(string(v))
			return nil
		}, processors.AcceptNull())),
		processors.Persist(new(codec.String)),
	)
	produceRaw(t, e, input, [2]*string{str("b"), str("z")}, [2]*string{str("b"), nil})
	r2 := e.start(rt2, g2, t.TempDir())
	r2.waitHandled(t, 5)
	if rt2.Tally().Processed() != 5 || rt2.Tally().Rejected() != 0 {
		t.Fatalf("processed %d rejected %d, want 5 and 0", rt2.Tally().Processed(), rt2.Tally().Rejected())
	}
	for key, want := range map[string]any{"a": "y", "b": nil} {
		v, err := r2.p.Goka().Get(key)
		if err != nil {
			t.Fatal(err)
		}
		var got any
		if s, ok := v.(*processors.Stored); ok && s != nil {
			got = s.Value
		}
		if got != want {
			t.Fatalf("%s = %v, want %v", key, got, want)
		}
	}
}

// runUntilStopped runs a processor that must stop by itself and returns
// its error.
func runUntilStopped(t *testing.T, p *processors.Processor) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- p.Run(t.Context()) }()
	select {
	case err := <-done:
		return err
	case <-time.After(waitTimeout):
		t.Fatal("processor did not stop")
		return nil
	}
}

// notAStackTrace fails if err reads like goka's panic report.
func notAStackTrace(t *testing.T, err error) {
	t.Helper()
	for _, s := range []string{"panic", "goroutine", ".go:", "\n"} {
		if strings.Contains(err.Error(), s) {
			t.Fatalf("error contains %q, want one sentence: %v", s, err)
		}
	}
}

// A group name reused by a topology whose table holds values of another
// shape stops the processor with a sentence that says so, not with
// goka's panic and stack trace.
func TestIntegrationOtherTopologyUnderSameGroupName(t *testing.T) {
	e := newEnv(t)
	input := kafkatest.Topic(t, "shape-in")
	kafkatest.CreateTopic(t, e.kafka.Brokers, input, 1)
	group := kafkatest.Group(t, "shape")
	stateDir := t.TempDir()

	// First topology: the table holds strings.
	rt := e.runtime()
	g := processors.DefineGroup(rt, goka.Group(group),
		goka.Input(goka.Stream(input), new(codec.Bytes), processors.Handle(rt, identity, func(ctx goka.Context, v []byte) error {
			ctx.SetValue("name-" + string(v))
			return nil
		})),
		processors.Persist(new(codec.String)),
	)
	produceRaw(t, e, input, [2]*string{str("k"), str("1")})
	r := e.start(rt, g, stateDir)
	r.waitHandled(t, 1)
	r.stop(t)

	// Second topology, same group: the table holds counts.
	rt2 := e.runtime()
	produceRaw(t, e, input, [2]*string{str("k"), str("2")})
	p, err := processors.NewProcessor(t.Context(), counterGraph(rt2, group, input), processors.WithKafka(e.kafka),
		processors.WithStateDir(stateDir), processors.WithRuntime(rt2))
	if err != nil {
		t.Fatal(err)
	}
	err = runUntilStopped(t, p)
	if err == nil || !strings.Contains(err.Error(), "cannot decode") || !strings.Contains(err.Error(), "different topology") {
		t.Fatalf("processor stopped with %v, want the sentence about a different topology", err)
	}
	notAStackTrace(t, err)
}

// on_error: stop ends the processor with the bad record's sentence (no
// panic, no stack trace), and nothing past the bad record is committed.
func TestIntegrationStopOnRejectionSaysOneSentence(t *testing.T) {
	e := newEnv(t)
	input, group := kafkatest.Topic(t, "stop-in"), kafkatest.Group(t, "stop")
	kafkatest.CreateTopic(t, e.kafka.Brokers, input, 1)
	rt := processors.NewRuntime(processors.WithTracerProvider(e.tp), processors.StopOnRejection())
	g := processors.DefineGroup(rt, goka.Group(group),
		goka.Input(goka.Stream(input), new(codec.Bytes), processors.Handle(rt, func(b []byte) (string, error) {
			if string(b) != "ok" {
				return "", errBad
			}
			return "ok", nil
		}, func(goka.Context, string) error { return nil })),
	)
	// Offsets 0, 1 ok; 2 bad; 3 ok.
	produceRaw(t, e, input, [2]*string{str("a"), str("ok")}, [2]*string{str("b"), str("ok")},
		[2]*string{str("c"), str("garbage")}, [2]*string{str("d"), str("ok")})
	p, err := processors.NewProcessor(t.Context(), g, processors.WithKafka(e.kafka), processors.WithStateDir(t.TempDir()),
		processors.WithRuntime(rt))
	if err != nil {
		t.Fatal(err)
	}
	err = runUntilStopped(t, p)
	if err == nil || !strings.Contains(err.Error(), "on_error: stop") || !strings.Contains(err.Error(), input+"/0@2") {
		t.Fatalf("processor stopped with %v, want the bad record's sentence", err)
	}
	notAStackTrace(t, err)
	// One partition: the sum of committed offsets is partition 0's.
	if got := committed(t, e, group, input); got > 2 {
		t.Fatalf("committed offset %d, want at most 2 (nothing past the bad record)", got)
	}
	if rt.Tally().Processed() != 2 {
		t.Fatalf("processed %d, want 2", rt.Tally().Processed())
	}
}
