package processors_test

import (
	"testing"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/lovoo/goka/tester"
	"github.com/weftstream/weft/processors"
)

// Without an exporter (NewRuntime without a tracer provider), the process
// span keeps the parent's trace id and trace flags: the stored writer, the
// table record and the emitted record carry the flags the input arrived
// with, under a new span id. A root record (no traceparent) starts a new
// trace that is not sampled (weft recorded nothing of it).
func TestUnexportedSpansForwardTheSampledFlag(t *testing.T) {
	rt := processors.NewRuntime()
	cb := processors.Handle(rt, func(b []byte) ([]byte, error) { return b, nil }, func(ctx goka.Context, msg []byte) error {
		ctx.SetValue(int64(len(msg)))
		ctx.Emit("flags-out", ctx.Key(), msg)
		return nil
	})
	g := processors.DefineGroup(rt, "flags", goka.Input("flags-in", new(codec.Bytes), cb),
		goka.Output("flags-out", new(codec.Bytes)), processors.Persist(new(codec.Int64)))
	tt := runOnTester(t, g)
	out, table := tt.NewQueueTracker("flags-out"), tt.NewQueueTracker("flags-table")

	const parentTrace, parentSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	for _, c := range []struct {
		name, traceparent, flags string
	}{
		{"sampled", "00-" + parentTrace + "-" + parentSpan + "-01", "01"},
		{"unsampled", "00-" + parentTrace + "-" + parentSpan + "-00", "00"},
		{"root", "", "00"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var opts []tester.EmitOption
			if c.traceparent != "" {
				opts = append(opts, tester.WithHeaders(goka.Headers{"traceparent": []byte(c.traceparent)}))
			}
			tt.Consume("flags-in", c.name, []byte("x"), opts...)

			w := processors.SpanContextOf(tt.TableValue("flags-table", c.name).(*processors.Stored).Meta.Writer)
			if got := w.TraceFlags().String(); got != c.flags {
				t.Errorf("stored writer flags %s, want %s", got, c.flags)
			}
			if !w.SpanID().IsValid() || w.SpanID().String() == parentSpan {
				t.Errorf("stored writer span id %s: want a new one", w.SpanID())
			}
			if c.traceparent != "" && w.TraceID().String() != parentTrace {
				t.Errorf("stored writer trace id %s, want the parent's %s", w.TraceID(), parentTrace)
			}
			if c.traceparent == "" && !w.TraceID().IsValid() {
				t.Error("root record: stored writer has no trace id")
			}
			want := "00-" + w.TraceID().String() + "-" + w.SpanID().String() + "-" + c.flags
			for name, q := range map[string]*tester.QueueTracker{"emitted": out, "table": table} {
				h, key, _, ok := q.NextWithHeaders()
				if !ok || key != c.name {
					t.Fatalf("no %s record for %s (got %q, %v)", name, c.name, key, ok)
				}
				if got := string(h["traceparent"]); got != want {
					t.Errorf("%s record traceparent %q, want %q", name, got, want)
				}
			}
		})
	}
}
