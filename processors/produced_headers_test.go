package processors_test

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/lovoo/goka/tester"
	"github.com/weftstream/weft/processors"
)

// The headers of every record a processor produces are those of the
// record it was produced for, also when they are read after later records
// were processed: the traceparent of that record's span, its event time
// and, for emitted records, its identity; with tracestate and baggage the
// propagator's as well.
func TestProducedHeadersStayTheRecords(t *testing.T) {
	rt := processors.NewRuntime()
	cb := processors.Handle(rt, func(b []byte) ([]byte, error) { return b, nil }, func(ctx goka.Context, msg []byte) error {
		ctx.Emit("ph-out", ctx.Key(), msg)
		ctx.SetValue(int64(len(msg)))
		ctx.Emit("ph-out", ctx.Key(), msg)
		return nil
	})
	g := processors.DefineGroup(rt, "ph", goka.Input("ph-in", new(codec.Bytes), cb),
		goka.Output("ph-out", new(codec.Bytes)), processors.Persist(new(codec.Int64)))
	tt := runOnTester(t, g)
	out, table := tt.NewQueueTracker("ph-out"), tt.NewQueueTracker("ph-table")

	type input struct {
		key, traceID, eventTime string
		extra                   goka.Headers
	}
	var inputs []input
	for i := range 40 {
		in := input{key: fmt.Sprintf("k%d", i), traceID: fmt.Sprintf("%032x", 1000+i), eventTime: strconv.Itoa(1700000000000 + i)}
		switch i % 4 {
		case 1:
			in.extra = goka.Headers{"tracestate": []byte(fmt.Sprintf("v=%d", i))}
		case 2:
			in.extra = goka.Headers{"baggage": []byte(fmt.Sprintf("n=%d", i))}
		}
		inputs = append(inputs, in)
		h := goka.Headers{
			"traceparent":              []byte("00-" + in.traceID + "-00f067aa0ba902b7-01"),
			processors.HeaderEventTime: []byte(in.eventTime),
		}
		for k, v := range in.extra {
			h[k] = v
		}
		tt.Consume("ph-in", in.key, []byte("x"), tester.WithHeaders(h))
	}
	check := func(what string, in input, h goka.Headers, from string) {
		t.Helper()
		tp := string(h["traceparent"])
		if len(tp) != 55 || tp[3:35] != in.traceID || tp[53:] != "01" {
			t.Errorf("%s of %s: traceparent %q, want one of trace %s, sampled", what, in.key, tp, in.traceID)
		}
		if got := string(h[processors.HeaderEventTime]); got != in.eventTime {
			t.Errorf("%s of %s: event time %q, want %q", what, in.key, got, in.eventTime)
		}
		if got := string(h[processors.HeaderFrom]); got != from {
			t.Errorf("%s of %s: %s %q, want %q", what, in.key, processors.HeaderFrom, got, from)
		}
		want := 2 + len(in.extra)
		if from != "" {
			want++
		}
		if len(h) != want {
			t.Errorf("%s of %s: headers %q, want %d", what, in.key, h, want)
		}
		for k, v := range in.extra {
			if string(h[k]) != string(v) {
				t.Errorf("%s of %s: %s %q, want %q", what, in.key, k, h[k], v)
			}
		}
	}
	for i, in := range inputs {
		var tps []string
		for j := range 2 {
			h, key, _, ok := out.NextWithHeaders()
			if !ok || key != in.key {
				t.Fatalf("emitted record %d of %s: got %q, %v", j, in.key, key, ok)
			}
			check("emitted record", in, h, fmt.Sprintf("ph-in/0/%d/%d", i, j))
			tps = append(tps, string(h["traceparent"]))
		}
		h, key, _, ok := table.NextWithHeaders()
		if !ok || key != in.key {
			t.Fatalf("table record of %s: got %q, %v", in.key, key, ok)
		}
		check("table record", in, h, "")
		if tp := string(h["traceparent"]); tp != tps[0] || tp != tps[1] {
			t.Errorf("%s: traceparents %q and %q of the emitted records, %q of the table record: want the span's", in.key, tps[0], tps[1], tp)
		}
	}
}
