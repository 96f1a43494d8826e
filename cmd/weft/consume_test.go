package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/weftstream/weft/internal/kafkatest"
	"github.com/weftstream/weft/statestore"
)

// weft consume prints every record of a topic as a JSON line, from where
// --from says, stops at the end (or after -n), and decodes envelopes.
func TestIntegrationConsume(t *testing.T) {
	bl := kafkatest.Brokers(t)
	brokers := strings.Join(bl, ",")
	topic := kafkatest.Topic(t, "consume")
	kafkatest.CreateTopic(t, bl, topic, 1)
	events := filepath.Join(t.TempDir(), "events.jsonl")
	lines := `{"key":"a","value":{"n":1},"headers":{"h":"x"}}
{"key":"b","value":"plain"}
{"key":"c","value":{"n":3}}
`
	if err := os.WriteFile(events, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	common := []string{"--brokers", brokers, "--log-level", "warn"}
	if out, err := weft(t.Context(), append([]string{"produce", topic, events}, common...)...); err != nil {
		t.Fatalf("produce: %v\n%s", err, out)
	}
	type line struct {
		Partition int32             `json:"partition"`
		Offset    int64             `json:"offset"`
		Key       string            `json:"key"`
		Value     json.RawMessage   `json:"value"`
		Headers   map[string]string `json:"headers"`
	}
	read := func(args ...string) []line {
		t.Helper()
		out, err := weft(t.Context(), append(append([]string{"consume", topic}, args...), common...)...)
		if err != nil {
			t.Fatalf("consume %v: %v\n%s", args, err, out)
		}
		var got []line
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if l == "" {
				continue
			}
			var r line
			if err := json.Unmarshal([]byte(l), &r); err != nil {
				t.Fatalf("not a JSON line: %q", l)
			}
			got = append(got, r)
		}
		return got
	}
	all := read()
	if len(all) != 3 {
		t.Fatalf("%d records, want 3: %+v", len(all), all)
	}
	for i, want := range []struct{ key, value string }{{"a", `{"n":1}`}, {"b", `"plain"`}, {"c", `{"n":3}`}} {
		if r := all[i]; r.Offset != int64(i) || r.Key != want.key || string(r.Value) != want.value {
			t.Errorf("record %d = %+v, want offset %d key %s value %s", i, r, i, want.key, want.value)
		}
	}
	if all[0].Headers["h"] != "x" || all[0].Headers["traceparent"] == "" {
		t.Errorf("headers of a = %v, want h=x and a traceparent", all[0].Headers)
	}
	if got := read("--from", "1", "-n", "1"); len(got) != 1 || got[0].Key != "b" {
		t.Errorf("--from 1 -n 1 = %+v, want b", got)
	}
	if got := read("--from", "latest"); len(got) != 0 {
		t.Errorf("--from latest = %+v, want nothing", got)
	}
	if got := read("--from", "2000-01-01T00:00:00Z"); len(got) != 3 {
		t.Errorf("--from 2000 = %d records, want 3", len(got))
	}
	if got := read("--from", "2999-01-01T00:00:00Z"); len(got) != 0 {
		t.Errorf("--from 2999 = %+v, want nothing", got)
	}

	// A weft envelope, decoded with --envelope.
	envTopic := kafkatest.Topic(t, "consume-table")
	kafkatest.CreateTopic(t, bl, envTopic, 1)
	cl, err := kgo.NewClient(kgo.SeedBrokers(bl...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	env := statestore.Envelope{Version: 7, Value: []byte(`{"balance":5}`)}
	if err := cl.ProduceSync(t.Context(), &kgo.Record{Topic: envTopic, Key: []byte("k"), Value: statestore.AppendEnvelope(nil, &env)},
		&kgo.Record{Topic: envTopic, Key: []byte("gone")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	out, err := weft(t.Context(), append([]string{"consume", envTopic, "--envelope"}, common...)...)
	if err != nil {
		t.Fatalf("consume --envelope: %v\n%s", err, out)
	}
	got := strings.Split(strings.TrimSpace(out), "\n")
	if len(got) != 2 || !strings.Contains(got[0], `"value":{"value":{"balance":5},`) || !strings.Contains(got[0], `"version":7`) ||
		!strings.Contains(got[1], `"key":"gone","value":null`) {
		t.Fatalf("consume --envelope:\n%s", out)
	}

	// Mistakes: one sentence, naming the flag or the topic.
	_, err = weft(t.Context(), append([]string{"consume", topic, "--from", "yesterday"}, common...)...)
	var ue *usageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "--from") {
		t.Errorf("--from yesterday: %v, want a usage error naming --from", err)
	}
	_, err = weft(t.Context(), append([]string{"consume", kafkatest.Topic(t, "missing")}, common...)...)
	if err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing topic: %v, want 'does not exist'", err)
	}
}
