package processors_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/weftstream/weft/internal/kafkatest"
	"github.com/weftstream/weft/processors"
	"github.com/weftstream/weft/tracing"
)

// 50 updates of one key coalesce into one output record, emitted in a
// flush span linked to all 50 contributing spans; the inputs are committed
// only once that record is acknowledged.
func TestIntegrationCoalescedEmitLinksEveryContributor(t *testing.T) {
	for _, c := range []struct {
		name           string
		maxLinks       int
		links, dropped int64
	}{
		{"all links", 0, 50, 0},
		{"bounded links", 40, 40, 10},
	} {
		t.Run(c.name, func(t *testing.T) { testCoalescedEmit(t, c.maxLinks, c.links, c.dropped) })
	}
}

func testCoalescedEmit(t *testing.T, maxLinks int, wantLinks, wantDropped int64) {
	e := newEnv(t)
	input, output, group := kafkatest.Topic(t, "clicks"), kafkatest.Topic(t, "click-totals"), kafkatest.Group(t, "totals")
	kafkatest.CreateTopic(t, e.kafka.Brokers, input, 1)
	rt := e.runtime()
	co := processors.NewCoalescer(rt, "click-totals", goka.Stream(output), new(codec.String),
		[]processors.CoalesceOption{processors.FlushEvery(0), processors.MaxLinks(maxLinks)}, processors.WithKafka(e.kafka))
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
	var recs [][3]string
	for i := range 50 {
		tp, _, _ := traceparent(100 + i)
		recs = append(recs, [3]string{"page-1", "click", tp})
	}
	e.produce(input, recs...)

	p, err := processors.NewProcessor(t.Context(), g, processors.WithKafka(e.kafka), processors.WithStateDir(t.TempDir()),
		processors.WithCoalescer(co))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("processor: %v", err)
		}
	}()
	kafkatest.WaitFor(t, waitTimeout, "50 records handled", func() bool { return rt.Tally().Processed() >= 50 })
	// Every input's commit waits for the flush.
	if n := co.Pending(); n != 50 {
		t.Fatalf("%d records wait for the flush, want 50", n)
	}
	kafkatest.WaitFor(t, waitTimeout, "the coalescer to start", func() bool { return co.Flush() == nil })
	if n := co.Pending(); n != 0 {
		t.Fatalf("%d records still pending after the flush", n)
	}
	if co.Flushes() != 1 {
		t.Fatalf("%d flushes emitted, want 1", co.Flushes())
	}

	// The flush span links to the 50 process spans, up to the bound; the
	// rest are counted as dropped.
	flush := spanNamed(t, e, "flush click-totals")
	links := linksOfKind(flush, tracing.LinkCoalesced)
	if int64(len(links)) != wantLinks {
		t.Fatalf("%d coalesced links, want %d", len(links), wantLinks)
	}
	if d := attrInt(flush, tracing.AttrLinksDropped); d != wantDropped {
		t.Fatalf("weft.links.dropped = %d, want %d", d, wantDropped)
	}
	processed := processSpans(e, input)
	if len(processed) != 50 {
		t.Fatalf("%d process spans", len(processed))
	}
	for i, l := range links {
		if l.SpanContext.SpanID() != processed[i].SpanContext().SpanID() {
			t.Fatalf("link %d goes to %s, want contributor %s", i, l.SpanContext.SpanID(), processed[i].SpanContext().SpanID())
		}
	}

	// The output carries the flush span's context and the final value.
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.kafka.Brokers...), kgo.ConsumeTopics(output), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	kafkatest.WaitFor(t, waitTimeout, "the coalesced record", func() bool {
		pctx, pcancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer pcancel()
		cl.PollFetches(pctx).EachRecord(func(r *kgo.Record) { out = append(out, r) })
		return len(out) >= 1
	})
	if len(out) != 1 || string(out[0].Value) != "50" {
		t.Fatalf("outputs %d, first %q; want one record with 50", len(out), out[0].Value)
	}
	var tp string
	for _, h := range out[0].Headers {
		if h.Key == "traceparent" {
			tp = string(h.Value)
		}
	}
	if want := "00-" + flush.SpanContext().TraceID().String() + "-" + flush.SpanContext().SpanID().String(); len(tp) < len(want) || tp[:len(want)] != want {
		t.Fatalf("output traceparent %q, want the flush span %s", tp, want)
	}

	// Now that the output is acknowledged, the inputs get committed.
	adm := kadm.NewClient(cl)
	kafkatest.WaitFor(t, waitTimeout, "offset 50 committed", func() bool {
		offs, err := adm.FetchOffsets(t.Context(), group)
		if err != nil {
			return false
		}
		o, ok := offs.Lookup(input, 0)
		return ok && o.At == 50
	})
}
