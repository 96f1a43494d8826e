package processors

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/weftstream/weft/statestore"
)

// guardContext is the goka.Context of one record of a stateful group, the
// key's stored value in memory: what the guard reads and writes.
type guardContext struct {
	topic     goka.Stream
	partition int32
	offset    int64
	headers   goka.Headers
	stored    *Stored // the key's value; SetValue replaces it
	writes    int
	emits     int
}

func (c *guardContext) Topic() goka.Stream    { return c.topic }
func (c *guardContext) Key() string           { return "k" }
func (c *guardContext) Partition() int32      { return c.partition }
func (c *guardContext) Offset() int64         { return c.offset }
func (c *guardContext) Group() goka.Group     { return "g" }
func (c *guardContext) Headers() goka.Headers { return c.headers }
func (c *guardContext) Timestamp() time.Time  { return time.Unix(1700000000, 0) }
func (c *guardContext) Join(goka.Table) any   { return nil }
func (c *guardContext) Lookup(goka.Table, string) any {
	return nil
}
func (c *guardContext) Context() context.Context { return context.Background() }
func (c *guardContext) DeferCommit() func(error) { return func(error) {} }

// Fail panics, as goka's does: it does not return.
func (c *guardContext) Fail(err error)                              { panic(err) }
func (c *guardContext) Delete(...goka.ContextOption)                { c.stored = nil }
func (c *guardContext) Loopback(string, any, ...goka.ContextOption) {}
func (c *guardContext) Emit(goka.Stream, string, any, ...goka.ContextOption) {
	c.emits++
}

func (c *guardContext) Value() any {
	if c.stored == nil {
		return nil
	}
	return c.stored
}

func (c *guardContext) SetValue(v any, _ ...goka.ContextOption) {
	c.stored = v.(*Stored)
	c.writes++
}

// The effectively-once guard, record by record: which records are
// replayed (their state write skipped), what a new version's sources are,
// what a re-run runs against and how its emits are named, and that a
// stored value that does not decode stops the callback.
func TestEffectivelyOnceGuard(t *testing.T) {
	src := func(topic string, p int32, off int64) statestore.SourceOffset {
		return statestore.SourceOffset{Topic: topic, Partition: p, Offset: off}
	}
	up := func(p int32, off int64, idx uint32) statestore.SourceOffset {
		return statestore.SourceOffset{Topic: "up", Partition: p, Offset: off, Index: idx, Upstream: true}
	}
	stored := func(n int64, sources ...statestore.SourceOffset) *Stored {
		return &Stored{Meta: statestore.Envelope{Version: uint64(n), Sources: sources}, Value: n}
	}
	type lineage struct {
		prev *Stored
		made []statestore.SourceOffset
	}
	for _, tc := range []struct {
		name      string
		partition int32
		offset    int64
		from      string // the record's HeaderFrom; "" none
		stored    *Stored
		lineage   *lineage // what the lineage index knows; nil nothing
		// Expected: the record replayed; the handler's runs and the value
		// it read; the sources of the version written (nil: no write); the
		// HeaderFrom of its emit.
		replayed    bool
		runs        int
		read        any
		wantSources []statestore.SourceOffset
		wantFrom    string
		wantFail    string
	}{
		{name: "first record of the key", offset: 5,
			runs: 1, read: nil, wantSources: []statestore.SourceOffset{src("in", 0, 5)}, wantFrom: "in/0/5/0"},
		{name: "redelivered", offset: 5, stored: stored(1, src("in", 0, 5)),
			replayed: true},
		{name: "older than the applied offset", offset: 4, stored: stored(1, src("in", 0, 5)),
			replayed: true},
		{name: "newer offset", offset: 6, stored: stored(1, src("in", 0, 5)),
			runs: 1, read: int64(1), wantSources: []statestore.SourceOffset{src("in", 0, 6)}, wantFrom: "in/0/6/0"},
		{name: "another partition is another slot", offset: 5, stored: stored(1, src("in", 1, 9)),
			runs: 1, read: int64(1), wantSources: []statestore.SourceOffset{src("in", 0, 5), src("in", 1, 9)}, wantFrom: "in/0/5/0"},
		{name: "upstream copy at another offset", offset: 8, from: "up/2/40/1", stored: stored(1, up(2, 40, 1), src("in", 0, 3)),
			replayed: true},
		{name: "upstream identity, later index", offset: 8, from: "up/2/40/2", stored: stored(1, up(2, 40, 1), src("in", 0, 3)),
			runs: 1, read: int64(1), wantSources: []statestore.SourceOffset{up(2, 40, 2), src("in", 0, 8)}, wantFrom: "in/0/8/0"},
		{name: "an own offset does not cover an upstream identity", offset: 1, from: "up/2/40/0", stored: stored(1, src("up", 2, 50)),
			runs: 1, read: int64(1), wantSources: []statestore.SourceOffset{up(2, 40, 0), src("up", 2, 50), src("in", 0, 1)}, wantFrom: "in/0/1/0"},
		{name: "a malformed weft.from is ignored", offset: 5, from: "up/x/40/0", stored: stored(1, src("in", 0, 5)),
			replayed: true},
		{name: "re-run against the lineage", offset: 5, stored: stored(3, src("in", 0, 7)),
			lineage:  &lineage{prev: stored(1, src("in", 0, 4)), made: []statestore.SourceOffset{src("in", 0, 5)}},
			replayed: true, runs: 1, read: int64(1), wantFrom: "in/0/5/0"},
		{name: "re-run of an upstream copy emits as the first copy", offset: 8, from: "up/2/40/1", stored: stored(2, up(2, 40, 1), src("in", 0, 3)),
			lineage:  &lineage{prev: stored(1, src("in", 0, 1)), made: []statestore.SourceOffset{up(2, 40, 1), src("in", 0, 3)}},
			replayed: true, runs: 1, read: int64(1), wantFrom: "in/0/3/0"},
		{name: "a stored value that does not decode stops the callback", offset: 5, stored: &Stored{err: errors.New("bad bytes")},
			wantFail: "cannot decode (bad bytes)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := NewRuntime()
			var runs int
			var read any
			var from string
			cb := Handle(rt, func(b []byte) ([]byte, error) { return b, nil }, func(gctx goka.Context, _ []byte) error {
				ctx := gctx.(*Context)
				runs++
				read = ctx.Value()
				from = string(ctx.appendFrom(nil))
				n, _ := read.(int64)
				ctx.SetValue(n + 1)
				ctx.Emit("out", ctx.Key(), []byte("x"))
				return nil
			})
			DefineGroup(rt, "g", goka.Input("in", new(codec.Bytes), cb), Persist(new(codec.Int64)))
			if l := tc.lineage; l != nil {
				rt.previous = func(key string, id statestore.SourceOffset) (*Stored, []statestore.SourceOffset, bool) {
					return l.prev, l.made, true
				}
			}
			g := &guardContext{topic: "in", partition: tc.partition, offset: tc.offset, headers: goka.Headers{}, stored: tc.stored}
			if tc.from != "" {
				g.headers[HeaderFrom] = []byte(tc.from)
			}
			failed := func() (failed any) {
				defer func() { failed = recover() }()
				cb(g, []byte("x"))
				return nil
			}()

			if tc.wantFail != "" {
				if failed == nil || rt.Failure() == nil || !strings.Contains(rt.Failure().Error(), tc.wantFail) {
					t.Fatalf("failed %v, Failure() %v, want %q", failed, rt.Failure(), tc.wantFail)
				}
				if runs != 0 || g.writes != 0 {
					t.Fatalf("after the failure the handler ran %d times and wrote %d values", runs, g.writes)
				}
				return
			}
			if failed != nil {
				t.Fatalf("the callback failed: %v", failed)
			}
			wantReplayed, wantProcessed := int64(0), int64(1)
			if tc.replayed {
				wantReplayed, wantProcessed = 1, 0
			}
			if got := rt.Tally().Replayed(); got != wantReplayed {
				t.Errorf("replayed %d, want %d", got, wantReplayed)
			}
			if got := rt.Tally().Processed(); got != wantProcessed {
				t.Errorf("processed %d, want %d", got, wantProcessed)
			}
			if runs != tc.runs || read != tc.read || g.emits != tc.runs {
				t.Errorf("the handler ran %d times, read %v and emitted %d records; want %d, %v, %d", runs, read, g.emits, tc.runs, tc.read, tc.runs)
			}
			if from != tc.wantFrom {
				t.Errorf("emitted as %q, want %q", from, tc.wantFrom)
			}
			switch {
			case tc.wantSources == nil && g.writes != 0:
				t.Errorf("%d state writes, want none", g.writes)
			case tc.wantSources != nil:
				if g.writes != 1 {
					t.Fatalf("%d state writes, want 1", g.writes)
				}
				if d := cmp.Diff(tc.wantSources, g.stored.Meta.Sources); d != "" {
					t.Errorf("sources of the version written (-want +got):\n%s", d)
				}
			}
		})
	}
}

// covers: same slot (topic, partition, kind) and not newer (offset, then
// index).
func TestCovers(t *testing.T) {
	applied := statestore.SourceOffset{Topic: "o", Partition: 1, Offset: 10, Index: 2, Upstream: true}
	for _, c := range []struct {
		r    statestore.SourceOffset
		want bool
	}{
		{statestore.SourceOffset{Topic: "o", Partition: 1, Offset: 10, Index: 2, Upstream: true}, true},
		{statestore.SourceOffset{Topic: "o", Partition: 1, Offset: 10, Index: 1, Upstream: true}, true},
		{statestore.SourceOffset{Topic: "o", Partition: 1, Offset: 9, Index: 7, Upstream: true}, true},
		{statestore.SourceOffset{Topic: "o", Partition: 1, Offset: 10, Index: 3, Upstream: true}, false},
		{statestore.SourceOffset{Topic: "o", Partition: 1, Offset: 11, Upstream: true}, false},
		{statestore.SourceOffset{Topic: "o", Partition: 1, Offset: 5}, false}, // a direct input of the same name
		{statestore.SourceOffset{Topic: "o", Partition: 2, Offset: 5, Upstream: true}, false},
		{statestore.SourceOffset{Topic: "p", Partition: 1, Offset: 5, Upstream: true}, false},
	} {
		if got := covers(applied, c.r); got != c.want {
			t.Errorf("%+v covers %+v = %v, want %v", applied, c.r, got, c.want)
		}
		slots := appliedSlots{}
		slots.note(applied)
		if got := slots.covers(c.r); got != c.want {
			t.Errorf("appliedSlots{%+v} covers %+v = %v, want %v", applied, c.r, got, c.want)
		}
	}
	// note keeps the newest identity of a slot.
	slots := appliedSlots{}
	slots.note(applied)
	slots.note(statestore.SourceOffset{Topic: "o", Partition: 1, Offset: 3, Upstream: true})
	if !slots.covers(applied) {
		t.Error("an older identity replaced the newest of its slot")
	}
}
