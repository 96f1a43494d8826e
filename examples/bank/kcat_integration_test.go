package bank

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lovoo/goka"
	"github.com/weftstream/weft/internal/kafkatest"
	"github.com/weftstream/weft/processors"
	"github.com/weftstream/weft/statestore"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// kcatTimeout bounds one kcat invocation.
const kcatTimeout = time.Minute

// kcatEvents is how many lines of events.jsonl the kcat test produces.
const kcatEvents = 50

// kcatPartitions is the partition count of the kcat test's input topic
// (and, by goka's co-partitioning, of its table topic).
const kcatPartitions = 4

// kcatFormat makes kcat print each consumed record as
// "partition offset keylen valuelen|<key><value><headers>\n": the lengths
// let the parser take binary values (envelopes) as they are.
const kcatFormat = `%p %o %K %S|%k%s%h\n`

// kcat runs the kcat command line client (librdkafka), a Kafka client
// that shares no code with weft, goka or sarama.
type kcat struct {
	path    string
	brokers string
}

// lookKcat finds kcat on PATH. Without it the test is skipped, except in CI
// (CI=true), which installs it and must not skip silently.
func lookKcat(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("kcat")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("kcat is not installed but CI=true: CI must install it (Debian/Ubuntu package kcat): %v", err)
		}
		t.Skipf("kcat is not installed (Debian/Ubuntu: apt-get install kcat); skipping the kcat interop test: %v", err)
	}
	return path
}

// run runs kcat with args and stdin and returns its standard output.
func (k kcat) run(t *testing.T, stdin []byte, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), kcatTimeout)
	defer cancel()
	args = append([]string{"-b", k.brokers}, args...)
	cmd := exec.CommandContext(ctx, k.path, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kcat %s: %v\nstderr:\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.Bytes()
}

// consume reads topic from the beginning to its end (-e) with kcat.
func (k kcat) consume(t *testing.T, topic string) []kcatRecord {
	t.Helper()
	out := k.run(t, nil, "-C", "-q", "-t", topic, "-o", "beginning", "-e", "-f", kcatFormat)
	recs, err := parseKcat(out)
	if err != nil {
		t.Fatalf("kcat output of %s: %v", topic, err)
	}
	return recs
}

// consumeAtLeast consumes topic until it holds at least n records.
func (k kcat) consumeAtLeast(t *testing.T, topic string, n int) []kcatRecord {
	t.Helper()
	var recs []kcatRecord
	kafkatest.WaitFor(t, processTimeout, fmt.Sprintf("%d records in %s (kcat)", n, topic), func() bool {
		recs = k.consume(t, topic)
		return len(recs) >= n
	})
	return recs
}

// kcatRecord is one record as printed by kcat with kcatFormat.
type kcatRecord struct {
	partition int32
	offset    int64
	key       string
	value     []byte
	headers   string // kcat's n=v CSV
}

func parseKcat(out []byte) ([]kcatRecord, error) {
	var recs []kcatRecord
	for len(out) > 0 {
		bar := bytes.IndexByte(out, '|')
		if bar < 0 {
			return nil, fmt.Errorf("record %d: no '|' after the lengths in %q", len(recs), out)
		}
		var r kcatRecord
		var klen, vlen int
		if _, err := fmt.Sscanf(string(out[:bar]), "%d %d %d %d", &r.partition, &r.offset, &klen, &vlen); err != nil {
			return nil, fmt.Errorf("record %d: prefix %q: %w", len(recs), out[:bar], err)
		}
		out = out[bar+1:]
		klen, vlen = max(klen, 0), max(vlen, 0) // -1: NULL
		if len(out) < klen+vlen {
			return nil, fmt.Errorf("record %d: %d bytes left, want key %d + value %d", len(recs), len(out), klen, vlen)
		}
		r.key = string(out[:klen])
		r.value = bytes.Clone(out[klen : klen+vlen])
		out = out[klen+vlen:]
		nl := bytes.IndexByte(out, '\n')
		if nl < 0 {
			return nil, fmt.Errorf("record %d: headers not terminated by a newline", len(recs))
		}
		r.headers = string(out[:nl])
		out = out[nl+1:]
		recs = append(recs, r)
	}
	return recs, nil
}

var traceparentHeader = regexp.MustCompile(`(?:^|,)traceparent=([^,]*)`)

// traceparent returns the span context in the record's traceparent header,
// parsed by OTel's W3C propagator.
func (r kcatRecord) traceparent() (trace.SpanContext, error) {
	m := traceparentHeader.FindStringSubmatch(r.headers)
	if m == nil {
		return trace.SpanContext{}, fmt.Errorf("no traceparent header (headers %q)", r.headers)
	}
	ctx := propagation.TraceContext{}.Extract(context.Background(), propagation.MapCarrier{"traceparent": m[1]})
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return trace.SpanContext{}, fmt.Errorf("invalid traceparent %q", m[1])
	}
	return sc, nil
}

// gokaPartition is the partition goka (and sarama's hash partitioner)
// assign to key: FNV-1a 32 of the key as int32, absolute value, modulo n.
// Processor.Get and views look keys up there.
func gokaPartition(key string, n int32) int32 {
	h := goka.DefaultHasher()()
	h.Write([]byte(key))
	p := int32(h.Sum32())
	if p < 0 {
		p = -p
	}
	return p % n
}

// kcatInput is one event produced with kcat.
type kcatInput struct {
	line     string
	key      string
	sc       trace.SpanContext // the traceparent it was produced with
	accepted bool              // whether the projection accepts it
	rec      kcatRecord        // as read back from the input topic
}

// kcat (librdkafka) is the peer on both ends of the bank processor: it
// produces the events with traceparent headers, and it reads the table
// topic. Every table record carries a traceparent in the trace of the event
// that produced it, naming weft's process span (a child, so a new span id),
// and an envelope that names the same span and the event's source offset.
func TestIntegrationKcatInterop(t *testing.T) {
	path := lookKcat(t)
	env := newBankEnv(t)
	kc := kcat{path: path, brokers: strings.Join(env.kafka.Brokers, ",")}
	kafkatest.CreateTopic(t, env.kafka.Brokers, env.input, kcatPartitions)

	// Events, each with its own trace; which ones the projection accepts.
	lines := readLines(t, "events.jsonl")[:kcatEvents]
	inputs := make([]*kcatInput, len(lines))
	bySpan := map[trace.SpanID]*kcatInput{}
	state := map[string]*Account{}
	accepted := 0
	for i, l := range lines {
		e, err := DecodeEvent([]byte(l))
		if err != nil || e.Account == "" {
			t.Fatalf("line %d is not an event with an account: %v", i+1, err)
		}
		in := &kcatInput{line: l, key: e.Account, sc: randomSpanContext(t)}
		if next, err := Apply(state[e.Account], e); err == nil {
			state[e.Account], in.accepted = next, true
			accepted++
		}
		inputs[i], bySpan[in.sc.SpanID()] = in, in
	}

	// 1. Produce with kcat, one invocation per event (kcat's -H applies to
	// every record of an invocation), keyed by account. librdkafka's fnv1a
	// partitioner is FNV-1a 32 with sarama's absolute value, so kcat puts
	// every key where goka's hasher looks for it; librdkafka's default
	// (consistent_random, CRC32) would not.
	for _, in := range inputs {
		tp := fmt.Sprintf("traceparent=00-%s-%s-01", in.sc.TraceID(), in.sc.SpanID())
		kc.run(t, []byte(in.key+"\t"+in.line+"\n"),
			"-P", "-q", "-t", env.input, "-K", "\t", "-H", tp,
			"-X", "topic.partitioner=fnv1a", "-X", "acks=all")
	}
	// Read the input back with kcat: every event arrived once, with its
	// traceparent, in goka's partition for its key.
	for _, r := range kc.consumeAtLeast(t, env.input, len(inputs)) {
		sc, err := r.traceparent()
		if err != nil {
			t.Fatalf("input record %d/%d: %v", r.partition, r.offset, err)
		}
		in := bySpan[sc.SpanID()]
		if in == nil || in.rec.key != "" {
			t.Fatalf("input record %d/%d: traceparent %s is not one produced once", r.partition, r.offset, sc.SpanID())
		}
		if r.key != in.key || string(r.value) != in.line || sc.TraceID() != in.sc.TraceID() {
			t.Fatalf("input record %d/%d: key %q value %q trace %s, want %q %q %s",
				r.partition, r.offset, r.key, r.value, sc.TraceID(), in.key, in.line, in.sc.TraceID())
		}
		if want := gokaPartition(r.key, kcatPartitions); r.partition != want {
			t.Fatalf("kcat put key %s in partition %d, goka's hasher expects %d", r.key, r.partition, want)
		}
		in.rec = r
	}
	for i, in := range inputs {
		if in.rec.key == "" {
			t.Fatalf("event %d (%s) not found in the input topic", i+1, in.key)
		}
	}

	// 2. Run the processor until it handled every event.
	rp := env.start(t)
	rp.waitHandled(t, int64(len(inputs)))
	if got := rp.tally.Processed(); got != int64(accepted) {
		t.Fatalf("processed %d events, want %d (rejected: %v)", got, accepted, rp.tally.RejectedByReason())
	}
	// The processor finds each key's state where goka hashes it: the
	// partition kcat produced it to.
	stored := map[string]*processors.Stored{}
	for key, want := range state {
		v, err := rp.p.Goka().Get(key)
		if err != nil {
			t.Fatalf("get %s: %v", key, err)
		}
		if v == nil {
			t.Fatalf("get %s: no value (state not in goka's partition for the key?)", key)
		}
		s := v.(*processors.Stored)
		if got := s.Value.(*Account); got.Owner != want.Owner || got.Balance != want.Balance ||
			got.Status != want.Status || got.Events != want.Events || !got.UpdatedAt.Equal(want.UpdatedAt) {
			t.Fatalf("get %s = %+v, want %+v", key, got, want)
		}
		stored[key] = s
	}
	// A clean stop waits for the table produces and commits.
	rp.stop(t)

	// 3. Read the table topic with kcat.
	table := string(Table(env.group))
	outputs := kc.consumeAtLeast(t, table, accepted)
	if len(outputs) != accepted {
		t.Fatalf("table topic %s holds %d records, want one per accepted event: %d", table, len(outputs), accepted)
	}
	// Records of one key are in one partition, in input order: match the
	// n-th record of a key with the n-th accepted event of the key.
	pending := map[string][]*kcatInput{}
	for _, in := range inputs {
		if in.accepted {
			pending[in.key] = append(pending[in.key], in)
		}
	}
	last := map[string]statestore.SpanRef{}
	for _, out := range outputs {
		where := fmt.Sprintf("table record %d/%d (key %s)", out.partition, out.offset, out.key)
		if len(pending[out.key]) == 0 {
			t.Fatalf("%s: more table records for the key than accepted events", where)
		}
		in := pending[out.key][0]
		pending[out.key] = pending[out.key][1:]
		version := uint64(state[out.key].Events) - uint64(len(pending[out.key]))

		sc, err := out.traceparent()
		if err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		if sc.TraceID() != in.sc.TraceID() {
			t.Errorf("%s: traceparent trace id %s, want the input event's %s", where, sc.TraceID(), in.sc.TraceID())
		}
		if sc.SpanID() == in.sc.SpanID() {
			t.Errorf("%s: traceparent span id %s is the input's: want weft's process span", where, sc.SpanID())
		}
		if out.partition != in.rec.partition {
			t.Errorf("%s: in partition %d, its event in input partition %d", where, out.partition, in.rec.partition)
		}

		envl, err := statestore.DecodeEnvelope(out.value)
		if err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		if envl.Writer.TraceID != [16]byte(sc.TraceID()) || envl.Writer.SpanID != [8]byte(sc.SpanID()) {
			t.Errorf("%s: envelope writer %x/%x, header %s/%s", where, envl.Writer.TraceID, envl.Writer.SpanID, sc.TraceID(), sc.SpanID())
		}
		if envl.Version != version {
			t.Errorf("%s: envelope version %d, want %d", where, envl.Version, version)
		}
		src := statestore.SourceOffset{Topic: env.input, Partition: in.rec.partition, Offset: in.rec.offset}
		found := false
		for _, s := range envl.Sources {
			found = found || s == src
		}
		if !found {
			t.Errorf("%s: envelope sources %v lack the event's %v", where, envl.Sources, src)
		}
		v, err := AccountCodec{}.Decode(envl.Value)
		if err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		if a := v.(*Account); a.Account != out.key || uint64(a.Events) != version {
			t.Errorf("%s: value %+v, want account %s after %d events", where, a, out.key, version)
		}
		last[out.key] = envl.Writer
	}
	for key, rest := range pending {
		if len(rest) > 0 {
			t.Errorf("key %s: %d accepted events without a table record", key, len(rest))
		}
	}
	// The processor's state names the writer of the key's last record.
	for key, s := range stored {
		if w := last[key]; s.Meta.Writer.TraceID != w.TraceID || s.Meta.Writer.SpanID != w.SpanID {
			t.Errorf("key %s: state written by %x/%x, last table record by %x/%x",
				key, s.Meta.Writer.TraceID, s.Meta.Writer.SpanID, w.TraceID, w.SpanID)
		}
	}
	t.Logf("kcat produced %d events to %s (%d partitions, fnv1a); kcat read %d traced table records from %s",
		len(inputs), env.input, kcatPartitions, len(outputs), table)
}

// randomSpanContext returns a sampled span context with random ids.
func randomSpanContext(t *testing.T) trace.SpanContext {
	t.Helper()
	var tid trace.TraceID
	var sid trace.SpanID
	rand.Read(tid[:])
	rand.Read(sid[:])
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled})
	if !sc.IsValid() {
		t.Fatal("random span context is invalid")
	}
	return sc
}
