package processors_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/weftstream/weft/internal/kafkatest"
	"github.com/weftstream/weft/processors"
	"github.com/weftstream/weft/tracing"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

func spanNamed(t *testing.T, e *env, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	var found []sdktrace.ReadOnlySpan
	for _, s := range e.spans.Ended() {
		if s.Name() == name {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d spans named %q, want 1", len(found), name)
	}
	return found[0]
}

// A command becomes an event, the event is projected into a table that
// joins and looks up another table, the projection emits an output, and a
// downstream processor consumes it: every span is in the command's trace,
// each a child of the one before, and the projection links to the writers
// of the values it read.
func TestIntegrationCommandEventProjectionChain(t *testing.T) {
	e := newEnv(t)
	owners := kafkatest.Topic(t, "owner-events")
	commands := kafkatest.Topic(t, "commands")
	events := kafkatest.Topic(t, "events")
	outputs := kafkatest.Topic(t, "outputs")
	gOwners, gCmd, gProj, gDown := kafkatest.Group(t, "owners"), kafkatest.Group(t, "cmd"), kafkatest.Group(t, "proj"), kafkatest.Group(t, "down")
	ownersTable := goka.GroupTable(goka.Group(gOwners))

	// owners: key -> owner name
	rtOwners := e.runtime()
	ownersGraph := processors.DefineGroup(rtOwners, goka.Group(gOwners),
		goka.Input(goka.Stream(owners), new(codec.Bytes), processors.Handle(rtOwners, identity, func(ctx goka.Context, v []byte) error {
			ctx.SetValue(string(v))
			return nil
		})),
		processors.Persist(new(codec.String)),
	)
	// ratings: key -> length of the owner's name, a second table
	gRatings := kafkatest.Group(t, "ratings")
	ratingsTable := goka.GroupTable(goka.Group(gRatings))
	rtRatings := e.runtime()
	ratingsGraph := processors.DefineGroup(rtRatings, goka.Group(gRatings),
		goka.Input(goka.Stream(owners), new(codec.Bytes), processors.Handle(rtRatings, identity, func(ctx goka.Context, v []byte) error {
			ctx.SetValue(int64(len(v)))
			return nil
		})),
		processors.Persist(new(codec.Int64)),
	)
	tpA, _, _ := traceparent(10)
	tpB, _, _ := traceparent(11)
	e.produce(owners, [3]string{"acc-1", "Alice", tpA}, [3]string{"acc-2", "Bob", tpB})
	rOwners := e.start(rtOwners, ownersGraph, t.TempDir())
	rOwners.waitHandled(t, 2)
	rRatings := e.start(rtRatings, ratingsGraph, t.TempDir())
	rRatings.waitHandled(t, 2)

	// cmd: command -> event
	rtCmd := e.runtime()
	cmdGraph := processors.DefineGroup(rtCmd, goka.Group(gCmd),
		goka.Input(goka.Stream(commands), new(codec.Bytes), processors.Handle(rtCmd, identity, func(ctx goka.Context, v []byte) error {
			ctx.Emit(goka.Stream(events), ctx.Key(), []byte("Deposited:"+string(v)))
			return nil
		})),
		goka.Output(goka.Stream(events), new(codec.Bytes)),
	)
	// proj: event -> table, joining owners (same key) and looking up acc-2
	rtProj := e.runtime()
	projGraph := processors.DefineGroup(rtProj, goka.Group(gProj),
		goka.Input(goka.Stream(events), new(codec.Bytes), processors.Handle(rtProj, identity, func(ctx goka.Context, v []byte) error {
			owner, _ := ctx.Join(ownersTable).(string)
			rating, _ := ctx.Lookup(ratingsTable, "acc-2").(int64)
			summary := fmt.Sprintf("%s %s (acc-2 rated %d)", owner, v, rating)
			ctx.SetValue(summary)
			ctx.Emit(goka.Stream(outputs), ctx.Key(), []byte(summary))
			return nil
		})),
		processors.Join(ownersTable, new(codec.String)),
		processors.Lookup(ratingsTable, new(codec.Int64)),
		processors.Persist(new(codec.String)),
		goka.Output(goka.Stream(outputs), new(codec.Bytes)),
	)
	// down: consumes outputs
	rtDown := e.runtime()
	var got []string
	downGraph := processors.DefineGroup(rtDown, goka.Group(gDown),
		goka.Input(goka.Stream(outputs), new(codec.Bytes), processors.Handle(rtDown, identity, func(ctx goka.Context, v []byte) error {
			got = append(got, string(v))
			return nil
		})),
	)
	// Create the intermediate topics with the owners' partition count, so
	// that the join is co-partitioned.
	for _, topic := range []string{commands, events, outputs} {
		kafkatest.CreateTopic(t, e.kafka.Brokers, topic, 4)
	}
	rCmd := e.start(rtCmd, cmdGraph, t.TempDir())
	rProj := e.start(rtProj, projGraph, t.TempDir())
	rDown := e.start(rtDown, downGraph, t.TempDir())

	// A service publishes the command in its own span.
	pub, err := processors.NewEmitter(t.Context(), commands, processors.WithKafka(e.kafka), processors.WithTracerProvider(e.tp))
	if err != nil {
		t.Fatal(err)
	}
	pub.Publish(context.Background(), "acc-1", []byte("300"), nil, nil)
	if err := pub.Close(); err != nil {
		t.Fatal(err)
	}

	rCmd.waitHandled(t, 1)
	rProj.waitHandled(t, 1)
	rDown.waitHandled(t, 1)
	if len(got) != 1 || got[0] != "Alice Deposited:300 (acc-2 rated 3)" {
		t.Fatalf("downstream got %q", got)
	}

	sendSpan := spanNamed(t, e, "send "+commands)
	cmdSpan := spanNamed(t, e, "process "+commands)
	projSpan := spanNamed(t, e, "process "+events)
	downSpan := spanNamed(t, e, "process "+outputs)
	chain := []sdktrace.ReadOnlySpan{sendSpan, cmdSpan, projSpan, downSpan}
	for i := 1; i < len(chain); i++ {
		if chain[i].SpanContext().TraceID() != sendSpan.SpanContext().TraceID() {
			t.Errorf("%s is in trace %s, want the command's trace %s", chain[i].Name(), chain[i].SpanContext().TraceID(), sendSpan.SpanContext().TraceID())
		}
		if chain[i].Parent().SpanID() != chain[i-1].SpanContext().SpanID() {
			t.Errorf("%s has parent %s, want %s (%s)", chain[i].Name(), chain[i].Parent().SpanID(), chain[i-1].SpanContext().SpanID(), chain[i-1].Name())
		}
	}
	if sendSpan.SpanKind() != trace.SpanKindProducer || projSpan.SpanKind() != trace.SpanKindConsumer {
		t.Errorf("kinds: send %v, process %v", sendSpan.SpanKind(), projSpan.SpanKind())
	}

	// The projection links to the writers of the owner values it read.
	ownerSpans := processSpans(e, owners)
	writerOf := map[string]trace.SpanID{}
	for _, s := range ownerSpans {
		if attrString(s, "messaging.consumer.group.name") == gOwners {
			writerOf[attrString(s, "messaging.kafka.message.key")] = s.SpanContext().SpanID()
		}
	}
	ratingWriter := map[string]trace.SpanID{}
	for _, s := range e.spans.Ended() {
		if s.Name() == "process "+owners && attrString(s, "messaging.consumer.group.name") == gRatings {
			ratingWriter[attrString(s, "messaging.kafka.message.key")] = s.SpanContext().SpanID()
		}
	}
	join := linksOfKind(projSpan, tracing.LinkJoin)
	lookup := linksOfKind(projSpan, tracing.LinkLookup)
	if len(join) != 1 || join[0].SpanContext.SpanID() != writerOf["acc-1"] {
		t.Errorf("join links %v, want one to acc-1's writer %s", join, writerOf["acc-1"])
	}
	if len(lookup) != 1 || lookup[0].SpanContext.SpanID() != ratingWriter["acc-2"] {
		t.Errorf("lookup links %v, want one to the writer of acc-2's rating %s", lookup, ratingWriter["acc-2"])
	}
	if n := len(linksOfKind(projSpan, tracing.LinkPreviousValue)); n != 0 {
		t.Errorf("first write of the projection has %d previous_value links", n)
	}
}

// A record that cannot be decoded goes to the dead-letter topic with its
// original headers and weft.error.* headers; its span records the error.
func TestIntegrationDeadLetter(t *testing.T) {
	e := newEnv(t)
	input, group := kafkatest.Topic(t, "dlq-in"), kafkatest.Group(t, "strict")
	rt := e.runtime()
	g := processors.DefineGroup(rt, goka.Group(group),
		goka.Input(goka.Stream(input), new(codec.Bytes), processors.Handle(rt, func(b []byte) (string, error) {
			if !strings.HasPrefix(string(b), "ok") {
				return "", errBad
			}
			return string(b), nil
		}, func(ctx goka.Context, s string) error {
			if s == "ok-but-rejected" {
				return processors.Reject("rule", "value %q breaks a rule", s)
			}
			return nil
		})),
	)
	tp, tid, sid := traceparent(3)
	e.produce(input, [3]string{"a", "ok", ""}, [3]string{"b", "garbage", tp}, [3]string{"c", "ok-but-rejected", ""})
	r := e.start(rt, g, t.TempDir())
	r.waitHandled(t, 3)
	if rt.Tally().Processed() != 1 || rt.Tally().Rejected() != 2 {
		t.Fatalf("processed %d rejected %d, want 1 and 2", rt.Tally().Processed(), rt.Tally().Rejected())
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(e.kafka.Brokers...),
		kgo.ConsumeTopics(string(processors.DeadLetterTopic(goka.Group(group)))), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	dead := map[string]*kgo.Record{}
	kafkatest.WaitFor(t, waitTimeout, "2 dead letters", func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), 200e6)
		defer cancel()
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { dead[string(r.Key)] = r })
		return len(dead) >= 2
	})
	header := func(r *kgo.Record, k string) string {
		for _, h := range r.Headers {
			if h.Key == k {
				return string(h.Value)
			}
		}
		return ""
	}
	b := dead["b"]
	if b == nil || string(b.Value) != "garbage" || header(b, "traceparent") != tp ||
		header(b, processors.HeaderErrorReason) != "decode" || header(b, processors.HeaderErrorTopic) != input ||
		header(b, processors.HeaderErrorGroup) != group || header(b, processors.HeaderErrorOffset) == "" {
		t.Fatalf("dead letter b = %+v", b)
	}
	if c := dead["c"]; c == nil || header(c, processors.HeaderErrorReason) != "rule" || !strings.Contains(header(c, processors.HeaderErrorMessage), "breaks a rule") {
		t.Fatalf("dead letter c = %+v", c)
	}
	for _, s := range processSpans(e, input) {
		if s.Parent().TraceID() == tid && s.Parent().SpanID() == sid {
			if s.Status().Code != 1 /* codes.Error */ || len(s.Events()) == 0 || s.Events()[0].Name != "exception" {
				t.Fatalf("span of the bad record: status %v events %v", s.Status(), s.Events())
			}
			return
		}
	}
	t.Fatal("no span for the bad record")
}

func attrString(s sdktrace.ReadOnlySpan, key string) string {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.Emit()
		}
	}
	return ""
}

type badRecordError struct{}

func (badRecordError) Error() string { return "not an ok record" }

var errBad = badRecordError{}

// With StopOnRejection a bad record stops the processor instead of going to
// the dead-letter topic.
func TestIntegrationStopOnRejection(t *testing.T) {
	e := newEnv(t)
	input, group := kafkatest.Topic(t, "strict-in"), kafkatest.Group(t, "strict")
	rt := processors.NewRuntime(processors.WithTracerProvider(e.tp), processors.StopOnRejection())
	g := processors.DefineGroup(rt, goka.Group(group),
		goka.Input(goka.Stream(input), new(codec.Bytes), processors.Handle(rt, func(b []byte) (string, error) {
			if string(b) != "ok" {
				return "", errBad
			}
			return "ok", nil
		}, func(goka.Context, string) error { return nil })),
	)
	e.produce(input, [3]string{"a", "ok", ""}, [3]string{"b", "garbage", ""})
	p, err := processors.NewProcessor(t.Context(), g, processors.WithKafka(e.kafka), processors.WithStateDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Run(t.Context()) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "on_error: stop") {
			t.Fatalf("processor stopped with %v, want the bad record's error", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("processor did not stop on the bad record")
	}
	if rt.Tally().Rejected() != 1 {
		t.Fatalf("rejected %d, want 1", rt.Tally().Rejected())
	}
}
