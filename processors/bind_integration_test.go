package processors_test

import (
	"strings"
	"testing"

	"github.com/weftstream/weft/internal/kafkatest"
	"github.com/weftstream/weft/processors"
)

// A Runtime is bound to one processor at a time: a second NewProcessor
// with it is refused while the first one runs (it would have replaced the
// first one's lineage, partitions and record cache), and the first
// processor goes on counting; once it has stopped, a new processor of the
// group (a restart) takes the runtime and goes on from its state.
func TestIntegrationRuntimeBindsOneProcessor(t *testing.T) {
	e := newEnv(t)
	input, group := kafkatest.Topic(t, "bound-in"), kafkatest.Group(t, "bound")
	rt := e.runtime()
	g := counterGraph(rt, group, input)
	state := t.TempDir()
	run := e.start(rt, g, state)
	_, err := processors.NewProcessor(t.Context(), g, processors.WithKafka(e.kafka),
		processors.WithStateDir(t.TempDir()), processors.WithRuntime(rt))
	if err == nil || !strings.Contains(err.Error(), "is the runtime of the processor of group "+group+" already") {
		t.Fatalf("second NewProcessor: %v, want the runtime refused", err)
	}
	e.produce(input, [3]string{"a", "x", ""}, [3]string{"a", "x", ""})
	run.waitHandled(t, 2)
	v, err := run.p.Goka().Get("a")
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := v.(*processors.Stored); !ok || s.Value != int64(2) {
		t.Fatalf("count of a = %#v, want 2", v)
	}

	run.stop(t)
	run = e.start(rt, g, state)
	e.produce(input, [3]string{"a", "x", ""})
	run.waitHandled(t, 3)
	if v, err = run.p.Goka().Get("a"); err != nil {
		t.Fatal(err)
	}
	if s, ok := v.(*processors.Stored); !ok || s.Value != int64(3) {
		t.Fatalf("count of a after the restart = %#v, want 3", v)
	}
}
