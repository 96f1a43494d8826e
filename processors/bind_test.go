package processors_test

import (
	"context"
	"strings"
	"testing"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/weftstream/weft/processors"
)

// countCallback counts the records of a key in the group table.
func countCallback(rt *processors.Runtime) goka.ProcessCallback {
	return processors.Handle(rt, identity, func(ctx goka.Context, _ []byte) error {
		var n int64
		if v := ctx.Value(); v != nil {
			n = v.(int64)
		}
		ctx.SetValue(n + 1)
		return nil
	})
}

// handleOne runs cb on one record of fake and returns what the callback
// failed with (goka's Fail panics), or nil.
func handleOne(cb goka.ProcessCallback, fake *fakeContext) (failed any) {
	defer func() { failed = recover() }()
	cb(fake, []byte("x"))
	return nil
}

// A Runtime is bound to one group: NewProcessor refuses, before it connects
// to anything, a Runtime that was not given to DefineGroup, one defined for
// another group, and one given to DefineGroup for two groups, whose
// callbacks also stop at their first record instead of using the other
// group's settings. Defining the same group again is allowed.
func TestRuntimeBindsOneGroup(t *testing.T) {
	define := func(rt *processors.Runtime, group goka.Group, table bool) *goka.GroupGraph {
		edges := []goka.Edge{goka.Input(goka.Stream(group+"-in"), new(codec.Bytes), countCallback(rt))}
		if table {
			edges = append(edges, processors.Persist(new(codec.Int64)))
		}
		return processors.DefineGroup(rt, group, edges...)
	}
	for _, tc := range []struct {
		name string
		// setup defines groups with rt and returns the graph given to
		// NewProcessor with it.
		setup   func(rt *processors.Runtime) *goka.GroupGraph
		wantErr string // of NewProcessor; "" none
		misuse  bool   // the callbacks fail with wantErr too
	}{
		{"not defined", func(rt *processors.Runtime) *goka.GroupGraph {
			return goka.DefineGroup("a", goka.Input("a-in", new(codec.Bytes), countCallback(rt)), processors.Persist(new(codec.Int64)))
		}, "was not given to processors.DefineGroup", false},
		{"other group's graph", func(rt *processors.Runtime) *goka.GroupGraph {
			define(rt, "a", true)
			return define(processors.NewRuntime(), "b", true)
		}, "is the runtime of group a", false},
		{"two groups", func(rt *processors.Runtime) *goka.GroupGraph {
			define(rt, "a", true)
			return define(rt, "b", true)
		}, "given for group a and then for b", true},
		{"with and without a table", func(rt *processors.Runtime) *goka.GroupGraph {
			define(rt, "a", true)
			return define(rt, "a", false)
		}, "with and without a table", true},
		{"same group twice", func(rt *processors.Runtime) *goka.GroupGraph {
			define(rt, "a", true)
			return define(rt, "a", true)
		}, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := processors.NewRuntime()
			g := tc.setup(rt)
			if tc.wantErr != "" {
				// No brokers: NewProcessor must fail on the runtime before
				// it tries to connect.
				_, err := processors.NewProcessor(context.Background(), g, processors.WithRuntime(rt), processors.WithStateDir(t.TempDir()))
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("NewProcessor: %v, want an error with %q", err, tc.wantErr)
				}
			}
			fake := &fakeContext{topic: "a-in", key: "k", table: map[string][]byte{}, codec: processors.EnvelopeCodec(new(codec.Int64))}
			failed := handleOne(countCallback(rt), fake)
			misuse := tc.misuse
			switch {
			case misuse && failed == nil:
				t.Fatal("the callback of a runtime given for two groups handled a record")
			case misuse && (rt.Failure() == nil || !strings.Contains(rt.Failure().Error(), tc.wantErr)):
				t.Fatalf("Failure() = %v, want an error with %q", rt.Failure(), tc.wantErr)
			case !misuse && failed != nil:
				t.Fatalf("the callback failed: %v", failed)
			case !misuse && rt.Tally().Processed() != 1:
				t.Fatalf("processed %d records, want 1", rt.Tally().Processed())
			}
		})
	}
}
