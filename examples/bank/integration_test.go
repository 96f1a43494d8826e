package bank

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weftstream/weft/eventfile"
	"github.com/weftstream/weft/internal/kafkatest"
	"github.com/weftstream/weft/kafkaclient"
	"github.com/weftstream/weft/processors"
)

const processTimeout = 2 * time.Minute

type bankEnv struct {
	kafka kafkaclient.Config
	input string
	group string
	state string
}

func newBankEnv(t *testing.T) bankEnv {
	return bankEnv{
		kafka: kafkaclient.Config{Brokers: kafkatest.Brokers(t), Partitions: 4},
		input: kafkatest.Topic(t, "bank-events"),
		group: kafkatest.Group(t, "bank"),
		state: t.TempDir(),
	}
}

func (e bankEnv) opts() []processors.Option {
	return []processors.Option{processors.WithKafka(e.kafka), processors.WithStateDir(e.state)}
}

// produce sends lines (keyed by account) to the input topic.
func (e bankEnv) produce(t *testing.T, lines []string) {
	t.Helper()
	em, err := processors.NewEmitter(t.Context(), e.input, processors.WithKafka(e.kafka))
	if err != nil {
		t.Fatal(err)
	}
	for rec, err := range eventfile.Read(strings.NewReader(strings.Join(lines, "\n")), "account") {
		if err != nil {
			t.Fatal(err)
		}
		em.Emit(rec.Key, rec.Value, rec.Headers)
	}
	if err := em.Close(); err != nil {
		t.Fatal(err)
	}
	if em.Sent() != int64(len(lines)) {
		t.Fatalf("sent %d records, want %d", em.Sent(), len(lines))
	}
}

// runningProcessor is a bank processor running in the background.
type runningProcessor struct {
	p      *processors.Processor
	tally  *processors.Tally
	cancel context.CancelFunc
	done   chan error
}

func (e bankEnv) start(t *testing.T) *runningProcessor {
	t.Helper()
	rt := processors.NewRuntime()
	tally := rt.Tally()
	p, err := processors.NewProcessor(t.Context(), Graph(e.input, e.group, rt), e.opts()...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rp := &runningProcessor{p: p, tally: tally, cancel: cancel, done: make(chan error, 1)}
	go func() { rp.done <- p.Run(ctx) }()
	t.Cleanup(func() { rp.stop(t) })
	return rp
}

// stop cancels the processor and checks that it shut down cleanly.
func (rp *runningProcessor) stop(t *testing.T) {
	if rp.cancel == nil {
		return
	}
	rp.cancel()
	rp.cancel = nil
	select {
	case err := <-rp.done:
		if err != nil {
			t.Errorf("processor stopped with error: %v", err)
		}
	case <-time.After(time.Minute):
		t.Error("processor did not stop within a minute")
	}
}

func (rp *runningProcessor) waitHandled(t *testing.T, n int64) {
	t.Helper()
	kafkatest.WaitFor(t, processTimeout, strconv.FormatInt(n, 10)+" records handled", func() bool {
		select {
		case err := <-rp.done:
			t.Fatalf("processor stopped: %v", err)
		default:
		}
		return rp.tally.Processed()+rp.tally.Rejected() >= n
	})
	if got := rp.tally.Processed() + rp.tally.Rejected(); got != n {
		t.Fatalf("handled %d records, want %d", got, n)
	}
}

// readModel reads every expected account from get.
func readModel(t *testing.T, want map[string]expectedAccount, get func(string) (any, error)) map[string]*Account {
	t.Helper()
	got := map[string]*Account{}
	for id := range want {
		v, err := get(id)
		if err != nil {
			t.Fatalf("get %s: %v", id, err)
		}
		if v != nil {
			got[id] = v.(*processors.Stored).Value.(*Account)
		}
	}
	return got
}

func TestIntegrationBankProjection(t *testing.T) {
	env := newBankEnv(t)
	lines := readLines(t, "events.jsonl")
	want := readExpected(t, "expected.jsonl")
	env.produce(t, lines)

	rp := env.start(t)
	rp.waitHandled(t, int64(len(lines)))
	if rp.tally.Rejected() != 0 {
		t.Fatalf("rejected %d valid events: %v", rp.tally.Rejected(), rp.tally.RejectedByReason())
	}
	compare(t, readModel(t, want, rp.p.Goka().Get), want)
	rp.stop(t)

	// The table topic (changelog) holds the same read model: a view that
	// restores it from Kafka into a fresh Pebble store agrees.
	viewDir := t.TempDir()
	v, err := processors.StartView(t.Context(), Table(env.group), processors.EnvelopeCodec(AccountCodec{}),
		processors.WithKafka(env.kafka), processors.WithStateDir(viewDir))
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	compare(t, readModel(t, want, v.Get), want)
}

func TestIntegrationBadInputDoesNotStopTheProcessor(t *testing.T) {
	env := newBankEnv(t)
	lines := readLines(t, "bad-events.jsonl")
	wantRejects, err := strconv.Atoi(strings.TrimSpace(readLines(t, "bad-expected-rejects.txt")[0]))
	if err != nil {
		t.Fatal(err)
	}
	want := readExpected(t, "bad-expected.jsonl")
	env.produce(t, lines)

	rp := env.start(t)
	rp.waitHandled(t, int64(len(lines)))
	if got := rp.tally.Rejected(); got != int64(wantRejects) {
		t.Fatalf("rejected %d, want %d (%v)", got, wantRejects, rp.tally.RejectedByReason())
	}
	if got := rp.tally.Processed(); got != int64(len(lines)-wantRejects) {
		t.Fatalf("processed %d, want %d", got, len(lines)-wantRejects)
	}
	compare(t, readModel(t, want, rp.p.Goka().Get), want)
}

// A clean stop commits the consumed offsets and keeps the state: a restart
// resumes where it stopped without processing anything twice.
func TestIntegrationRestartResumesWithoutReprocessing(t *testing.T) {
	env := newBankEnv(t)
	lines := readLines(t, "events.jsonl")
	want := readExpected(t, "expected.jsonl")
	half := len(lines) / 2

	env.produce(t, lines[:half])
	rp := env.start(t)
	rp.waitHandled(t, int64(half))
	rp.stop(t)

	env.produce(t, lines[half:])
	rp = env.start(t)
	rp.waitHandled(t, int64(len(lines)-half))
	if rp.tally.Rejected() != 0 {
		t.Fatalf("after restart %d records rejected (reprocessed?): %v", rp.tally.Rejected(), rp.tally.RejectedByReason())
	}
	compare(t, readModel(t, want, rp.p.Goka().Get), want)

	// The state directory holds one Pebble store per table partition.
	entries, err := os.ReadDir(filepath.Join(env.state, "processors", env.group, string(Table(env.group))))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != env.kafka.Partitions {
		t.Fatalf("%d partition stores, want %d", len(entries), env.kafka.Partitions)
	}
}
