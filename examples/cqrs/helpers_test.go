package cqrs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lovoo/goka"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/weftstream/weft/eventfile"
	"github.com/weftstream/weft/internal/kafkatest"
	"github.com/weftstream/weft/kafkaclient"
	"github.com/weftstream/weft/processors"
	"github.com/weftstream/weft/topofile"
	"github.com/weftstream/weft/topology"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

const (
	cqrsDir = "../../testdata/cqrs"
	bankDir = "../../testdata/bank"
	timeout = 2 * time.Minute
)

// app is a topology file of testdata/cqrs running like `weft run` runs it,
// with its application and topic names prefixed to be unique to the test.
type app struct {
	t        *testing.T
	prefix   string
	kafka    kafkaclient.Config
	file     *topofile.File
	compiled *topology.Compiled
	spans    *tracetest.SpanRecorder
	tp       *sdktrace.TracerProvider
	stateDir string
	procs    map[goka.Group]*processors.Processor
}

var (
	appLine   = regexp.MustCompile(`(?m)^app:[ \t]*([A-Za-z0-9._-]+)`)
	topicRefs = regexp.MustCompile(`\btopic:[ \t]*([A-Za-z0-9._-]+)`)
)

// uniqueNames prefixes the app name and every `topic:` of a topology file.
// The app prefixes the consumer groups and the table, repartition and
// dead-letter topics, so that no name is shared with other tests or runs
// on a shared Kafka cluster.
func uniqueNames(data []byte, prefix string) []byte {
	data = appLine.ReplaceAll(data, []byte("app: "+prefix+"$1"))
	return topicRefs.ReplaceAll(data, []byte("topic: "+prefix+"$1"))
}

// loadApp loads testdata/cqrs/<name> with unique names and compiles it
// with a span recorder as tracer provider.
func loadApp(t *testing.T, name string) *app {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(cqrsDir, name))
	if err != nil {
		t.Fatal(err)
	}
	prefix := kafkatest.Topic(t, "cqrs") + "-"
	f, err := topofile.Load(name, uniqueNames(data, prefix))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range append(append([]topofile.Source{}, f.Streams...), f.Outputs...) {
		if !strings.HasPrefix(s.Topic, prefix) {
			t.Fatalf("topic %s of %s is not made unique", s.Topic, s.Name)
		}
	}
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithSpanProcessor(spans))
	k := kafkaclient.Config{Brokers: kafkatest.Brokers(t), Partitions: 4}
	compiled, err := topology.Compile(f.Topology, topology.WithProcessorOptions(
		processors.WithKafka(k), processors.WithTracerProvider(tp)))
	if err != nil {
		t.Fatal(err)
	}
	return &app{t: t, prefix: prefix, kafka: k, file: f, compiled: compiled, spans: spans, tp: tp,
		stateDir: t.TempDir(), procs: map[goka.Group]*processors.Processor{}}
}

// topic is the unique name of a topic the file names.
func (a *app) topic(name string) string { return a.prefix + name }

// group is the consumer group of a pipeline (or of a stream's stateless
// work, named by its topic).
func (a *app) group(name string) goka.Group { return goka.Group(a.file.App + "-" + name) }

// start runs the groups that pick selects (all when nil), like `weft run`:
// one processor per group with its runtime and coalescers, all in RunAll,
// stopped when the test ends or when the returned function is called.
func (a *app) start(pick func(*topology.Group) bool) (stop func()) {
	t := a.t
	t.Helper()
	var procs []*processors.Processor
	for _, g := range a.compiled.Groups {
		if pick != nil && !pick(g) {
			continue
		}
		if a.procs[g.Name] != nil {
			t.Fatalf("group %s started twice", g.Name)
		}
		opts := append([]processors.Option{processors.WithKafka(a.kafka), processors.WithStateDir(a.stateDir)}, g.Options()...)
		p, err := processors.NewProcessor(t.Context(), g.Graph, opts...)
		if err != nil {
			t.Fatal(err)
		}
		a.procs[g.Name] = p
		procs = append(procs, p)
	}
	if len(procs) == 0 {
		t.Fatal("no group to start")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- processors.RunAll(ctx, procs...) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("processors stopped with error: %v", err)
				}
			case <-time.After(time.Minute):
				t.Error("processors did not stop within a minute")
			}
			for name, p := range a.procs {
				if slices.Contains(procs, p) {
					delete(a.procs, name)
				}
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// handled is the number of records the groups (all when none is named)
// processed or rejected.
func (a *app) handled(groups ...goka.Group) int64 {
	var n int64
	for _, g := range a.compiled.Groups {
		if len(groups) == 0 || contains(groups, g.Name) {
			n += g.Runtime.Tally().Processed() + g.Runtime.Tally().Rejected()
		}
	}
	return n
}

func (a *app) rejected() (int64, map[string]int64) {
	var n int64
	reasons := map[string]int64{}
	for _, g := range a.compiled.Groups {
		n += g.Runtime.Tally().Rejected()
		for r, c := range g.Runtime.Tally().RejectedByReason() {
			reasons[string(g.Name)+"/"+r] += c
		}
	}
	return n, reasons
}

// waitHandled waits until the groups handled exactly want records.
func (a *app) waitHandled(want int64, groups ...goka.Group) {
	a.t.Helper()
	what := fmt.Sprintf("%d records handled by %v", want, groups)
	if len(groups) == 0 {
		what = fmt.Sprintf("%d records handled by the groups of %s", want, a.file.App)
	}
	kafkatest.WaitFor(a.t, timeout, what, func() bool { return a.handled(groups...) >= want })
	if got := a.handled(groups...); got != want {
		a.t.Fatalf("handled %d records, want %d", got, want)
	}
	// What the groups' tables hold reaches their changelogs (read by the
	// groups that join them) when their record caches flush.
	for g, p := range a.procs {
		if len(groups) == 0 || contains(groups, g) {
			if err := p.Flush(); err != nil {
				a.t.Fatalf("flush %s: %v", g, err)
			}
		}
	}
}

func contains(gs []goka.Group, g goka.Group) bool {
	for _, x := range gs {
		if x == g {
			return true
		}
	}
	return false
}

// produce publishes the lines of an event file to a topic of the file,
// keyed by keyField, each in its own "send" span.
func (a *app) produce(topic string, lines []string, keyField string) {
	a.t.Helper()
	em, err := processors.NewEmitter(a.t.Context(), a.topic(topic), processors.WithKafka(a.kafka), processors.WithTracerProvider(a.tp))
	if err != nil {
		a.t.Fatal(err)
	}
	for rec, err := range eventfile.Read(strings.NewReader(strings.Join(lines, "\n")), keyField) {
		if err != nil {
			a.t.Fatal(err)
		}
		em.Publish(context.Background(), rec.Key, rec.Value, rec.Headers, nil)
	}
	if err := em.Close(); err != nil {
		a.t.Fatal(err)
	}
	if em.Sent() != int64(len(lines)) {
		a.t.Fatalf("sent %d records, want %d", em.Sent(), len(lines))
	}
}

// publish publishes one record in the span of ctx.
func (a *app) publish(ctx context.Context, topic, key, value string) {
	a.t.Helper()
	em, err := processors.NewEmitter(a.t.Context(), a.topic(topic), processors.WithKafka(a.kafka), processors.WithTracerProvider(a.tp))
	if err != nil {
		a.t.Fatal(err)
	}
	em.Publish(ctx, key, []byte(value), nil, nil)
	if err := em.Close(); err != nil {
		a.t.Fatal(err)
	}
}

// get reads the value of key in the table of a pipeline, from the
// processor that owns it (nil: no value).
func (a *app) get(pipeline, key string) *processors.Stored {
	a.t.Helper()
	p := a.procs[a.group(pipeline)]
	if p == nil {
		a.t.Fatalf("no running processor for the table of %s", pipeline)
	}
	v, err := p.Get(key) // the record cache's values included
	if err != nil {
		a.t.Fatalf("get %s %s: %v", pipeline, key, err)
	}
	st, _ := v.(*processors.Stored)
	return st
}

// value is the value of key in the table of a pipeline, in generic JSON
// form (nil: none).
func (a *app) value(pipeline, key string) any {
	a.t.Helper()
	st := a.get(pipeline, key)
	if st == nil {
		return nil
	}
	return normalize(a.t, st.Value)
}

// compareTable checks every expected key of a table; want maps keys to
// values in generic JSON form.
func (a *app) compareTable(pipeline string, want map[string]any) {
	a.t.Helper()
	bad := 0
	for key, w := range want {
		if got := a.value(pipeline, key); !reflect.DeepEqual(got, w) {
			if bad++; bad <= 10 {
				a.t.Errorf("%s[%s] = %s, want %s", pipeline, key, jsonText(got), jsonText(w))
			}
		}
	}
	if bad > 0 {
		a.t.Fatalf("%s: %d of %d values differ", pipeline, bad, len(want))
	}
}

// consume reads n records of a topic of the file, from its start.
func (a *app) consume(topic string, n int) []*kgo.Record {
	a.t.Helper()
	return consumeTopic(a.t, a.kafka.Brokers, a.topic(topic), n)
}

func consumeTopic(t *testing.T, brokers []string, topic string, n int) []*kgo.Record {
	t.Helper()
	return kafkatest.Consume(t, brokers, topic, n, timeout)
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// normalize turns a value into its generic JSON form (numbers float64).
func normalize(t testing.TB, v any) any {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return decodeJSON(t, data)
}

func decodeJSON(t testing.TB, data []byte) any {
	t.Helper()
	var out any
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatalf("decode %s: %v", data, err)
	}
	return out
}

func jsonText(v any) string {
	data, _ := json.Marshal(v)
	return string(data)
}

// readLines reads the lines of a data file.
func readLines(t testing.TB, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
}

// readObjects reads a JSON-lines file of objects in generic JSON form.
func readObjects(t testing.TB, path string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range readLines(t, path) {
		m, ok := decodeJSON(t, []byte(line)).(map[string]any)
		if !ok {
			t.Fatalf("%s: line %q is not an object", path, line)
		}
		out = append(out, m)
	}
	return out
}

// byField maps each object of a JSON-lines file by the string in field.
func byField(t testing.TB, path, field string) map[string]any {
	t.Helper()
	out := map[string]any{}
	for _, m := range readObjects(t, path) {
		k, _ := m[field].(string)
		out[k] = m
	}
	return out
}

// sequencesByKey groups JSON values by record key, in order.
func sequencesByKey(t testing.TB, recs []*kgo.Record) map[string][]any {
	t.Helper()
	out := map[string][]any{}
	for _, r := range recs {
		out[string(r.Key)] = append(out[string(r.Key)], decodeJSON(t, bytes.TrimSpace(r.Value)))
	}
	return out
}

// sourceGroup is the group of the stateless work on a stream of the file.
func (a *app) sourceGroup(topic string) goka.Group {
	return goka.Group(a.file.App + "-" + a.topic(topic))
}
