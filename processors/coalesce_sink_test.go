package processors_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/weftstream/weft/processors"
	"github.com/weftstream/weft/tracing"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// sunk is a record a CoalesceSink received.
type sunk struct {
	output      goka.Stream
	key, value  string
	traceparent string
}

// On goka's tester, a coalescer with a sink (CoalesceTo) and CommitOnAdd:
// every input is committed when its callback returns (the tester's Consume
// returns only then), and Flush hands the sink the latest value of each
// key, in the order the keys first changed, each in a flush span linked to
// its contributors.
func TestCoalescerSinkOnTester(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	rt := processors.NewRuntime(processors.WithTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))))
	var got []sunk
	sink := processors.CoalesceSinkFunc(func(ctx context.Context, output goka.Stream, key string, value []byte, h goka.Headers) error {
		got = append(got, sunk{output, key, string(value), string(h["traceparent"])})
		return nil
	})
	co := processors.NewCoalescer(rt, "latest", "latest-out", new(codec.String),
		[]processors.CoalesceOption{processors.FlushEvery(0), processors.CoalesceTo(sink), processors.CommitOnAdd()})
	cb := processors.Handle(rt, func(b []byte) (string, error) { return string(b), nil }, func(ctx goka.Context, v string) error {
		co.Add(ctx, ctx.Key(), v)
		return nil
	})
	g := processors.DefineGroup(rt, "sink", goka.Input("sink-in", new(codec.Bytes), cb))
	tt := runOnTester(t, g)

	for _, in := range [][2]string{{"a", "a1"}, {"b", "b1"}, {"a", "a2"}, {"a", "a3"}} {
		done := make(chan struct{})
		go func() { defer close(done); tt.Consume("sink-in", in[0], []byte(in[1])) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("input %s=%s was not committed", in[0], in[1])
		}
	}
	if n := co.Pending(); n != 0 {
		t.Errorf("%d inputs wait for a commit, want 0 (CommitOnAdd)", n)
	}
	if len(got) != 0 {
		t.Fatalf("the sink got %v before Flush", got)
	}
	if err := co.Flush(); err != nil {
		t.Fatal(err)
	}
	want := []sunk{{"latest-out", "a", "a3", ""}, {"latest-out", "b", "b1", ""}}
	if len(got) != len(want) {
		t.Fatalf("the sink got %v, want %v", got, want)
	}
	flushes := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range rec.Ended() {
		if s.Name() == "flush latest" {
			for _, a := range s.Attributes() {
				if a.Key == tracing.AttrStateKey {
					flushes[a.Value.AsString()] = s
				}
			}
		}
	}
	for i, w := range want {
		g := got[i]
		if g.output != w.output || g.key != w.key || g.value != w.value {
			t.Errorf("record %d: got %s %s=%s, want %s %s=%s", i, g.output, g.key, g.value, w.output, w.key, w.value)
		}
		s := flushes[w.key]
		if s == nil {
			t.Errorf("no flush span for %s", w.key)
			continue
		}
		tp := fmt.Sprintf("00-%s-%s-01", s.SpanContext().TraceID(), s.SpanContext().SpanID())
		if g.traceparent != tp {
			t.Errorf("record %d: traceparent %q, want the flush span's %q", i, g.traceparent, tp)
		}
	}
	if n := len(flushes["a"].Links()); n != 3 {
		t.Errorf("flush of a: %d links, want 3 (a1, a2, a3)", n)
	}
	if n := len(flushes["b"].Links()); n != 1 {
		t.Errorf("flush of b: %d links, want 1", n)
	}
	if co.Flushes() != 1 {
		t.Errorf("%d flushes, want 1", co.Flushes())
	}
	got = nil
	if err := co.Flush(); err != nil || len(got) != 0 {
		t.Errorf("a second flush: %v, records %v; want none", err, got)
	}
}

// commitContext records the commits deferred by Add.
type commitContext struct {
	*fakeContext
	commits *[]string // "key:error", in the order they were called
}

func (c commitContext) DeferCommit() func(error) {
	key := c.key
	return func(err error) { *c.commits = append(*c.commits, fmt.Sprintf("%s:%v", key, err)) }
}

// Without CommitOnAdd, a coalescer with a sink defers the commit of each
// input until the flush that hands its key's value to the sink, and
// commits it with the sink's error; it needs no Run.
func TestCoalescerSinkDefersCommits(t *testing.T) {
	boom := errors.New("boom")
	var got []string
	sink := processors.CoalesceSinkFunc(func(_ context.Context, _ goka.Stream, key string, value []byte, _ goka.Headers) error {
		got = append(got, key+"="+string(value))
		if key == "b" {
			return boom
		}
		return nil
	})
	co := processors.NewCoalescer(processors.NewRuntime(), "deferred", "out", new(codec.String),
		[]processors.CoalesceOption{processors.CoalesceTo(sink)})
	var commits []string
	for _, in := range [][2]string{{"a", "a1"}, {"b", "b1"}, {"a", "a2"}} {
		co.Add(commitContext{&fakeContext{key: in[0]}, &commits}, in[0], in[1])
	}
	if n := co.Pending(); n != 3 || len(commits) != 0 {
		t.Fatalf("before the flush: %d pending, commits %v; want 3 pending, none committed", n, commits)
	}
	err := co.Flush()
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), `coalescer deferred: emit "b" to out`) {
		t.Errorf("Flush: %v, want the sink's error for b", err)
	}
	if want := "a=a2 b=b1"; strings.Join(got, " ") != want {
		t.Errorf("the sink got %v, want %s", got, want)
	}
	want := `a:<nil> a:<nil> b:coalescer deferred: emit "b" to out: boom`
	if strings.Join(commits, " ") != want {
		t.Errorf("commits %q, want %q", strings.Join(commits, " "), want)
	}
	if n := co.Pending(); n != 0 {
		t.Errorf("%d pending after the flush, want 0", n)
	}
}
