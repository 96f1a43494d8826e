package main

import (
	"bytes"
	"encoding/json"
	"regexp"
	"testing"
	"time"

	"github.com/weftstream/weft/statestore"
)

var snakeCase = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)

// checkSnakeKeys fails for every object key in v that is not snake_case,
// at any depth.
func checkSnakeKeys(t *testing.T, what string, v any) int {
	t.Helper()
	n := 0
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			n++
			if !snakeCase.MatchString(k) {
				t.Errorf("%s: key %q is not snake_case", what, k)
			}
			n += checkSnakeKeys(t, what, e)
		}
	case []any:
		for _, e := range x {
			n += checkSnakeKeys(t, what, e)
		}
	}
	return n
}

// get --meta and explain --json use snake_case keys everywhere, with every
// field set (the user's value is left out: its keys are the user's).
func TestMetaAndExplainJSONKeysAreSnakeCase(t *testing.T) {
	ref := statestore.SpanRef{TraceID: [16]byte{1}, SpanID: [8]byte{2}, Flags: 1}
	env := statestore.Envelope{
		Writer: ref, Version: 3, EventTime: time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC),
		Sources:      []statestore.SourceOffset{{Topic: "t", Partition: 1, Offset: 7, Index: 2, Upstream: true}},
		Contributors: []statestore.SpanRef{ref}, Dropped: 4, Value: []byte("not json"),
	}
	meta, err := formatValue(statestore.AppendEnvelope(nil, &env), true)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := writeVersionsJSON(&buf, []statestore.Envelope{env}); err != nil {
		t.Fatal(err)
	}
	for what, data := range map[string][]byte{"get --meta": meta, "explain --json": buf.Bytes()} {
		var v map[string]any
		if err := json.Unmarshal(data, &v); err != nil {
			t.Fatalf("%s: %v: %s", what, err, data)
		}
		// version, writer_traceparent, event_time, sources (5 keys) and at
		// least value_text and a contributors key: every field appears.
		if n := checkSnakeKeys(t, what, v); n < 11 {
			t.Errorf("%s has %d keys, want every field set: %s", what, n, data)
		}
	}
}
