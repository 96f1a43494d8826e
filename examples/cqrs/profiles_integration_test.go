package cqrs_test

import (
	"path/filepath"
	"reflect"
	"testing"

	"go.opentelemetry.io/otel/trace"
)

// profiles.yaml: the command processor turns the commands of
// testdata/cqrs/profile-commands.jsonl into exactly the events the
// reference computes (per user, in order), its table holds each user's
// profile version, and the search index the latest document per user; the
// malformed commands are dead-lettered. Then one more command is followed
// through command -> event -> projection: one trace, each span the child
// of the one before.
func TestIntegrationUserProfiles(t *testing.T) {
	a := loadApp(t, "profiles.yaml")
	commands := readLines(t, filepath.Join(cqrsDir, "profile-commands.jsonl"))
	events := readLines(t, filepath.Join(cqrsDir, "expected-profile-events.jsonl"))
	wantProfiles := byField(t, filepath.Join(cqrsDir, "expected-profiles.jsonl"), "user")
	wantIndex := byField(t, filepath.Join(cqrsDir, "expected-search-index.jsonl"), "id")
	malformed := len(commands) - len(events)

	a.produce("profile-commands", commands, "user")
	a.start(nil)
	// Every command passes the command processor, every event the search
	// index (which skips the rejections).
	a.waitHandled(int64(len(commands) + len(events)))
	if n, reasons := a.rejected(); n != int64(malformed) {
		t.Fatalf("rejected %d records, want the %d malformed commands: %v", n, malformed, reasons)
	}
	got := sequencesByKey(t, a.consume("profile-events", len(events)))
	want := map[string][]any{}
	for _, e := range events {
		v := decodeJSON(t, []byte(e))
		user := v.(map[string]any)["user"].(string)
		want[user] = append(want[user], v)
	}
	if !reflect.DeepEqual(got, want) {
		for user := range want {
			if !reflect.DeepEqual(got[user], want[user]) {
				t.Errorf("events of %s:\n got  %s\n want %s", user, jsonText(got[user]), jsonText(want[user]))
			}
		}
		t.Fatalf("profile-events differ from expected-profile-events.jsonl")
	}
	a.compareTable("profiles", wantProfiles)
	a.compareTable("search-index", wantIndex)

	// One command, followed through the chain.
	root, chain := a.traceOf("profile-commands", "user-trace",
		`{"type":"UpdateUserProfileCommand","user":"user-trace","expected_version":0,"name":"Trace Me","email":"trace@example.org"}`,
		"send "+a.topic("profile-commands"), "process "+a.topic("profile-commands"), "process "+a.topic("profile-events"))
	checkChain(t, root, chain)
	if chain[1].SpanKind() != trace.SpanKindConsumer || chain[2].SpanKind() != trace.SpanKindConsumer {
		t.Errorf("process spans of kinds %v, %v, want consumer", chain[1].SpanKind(), chain[2].SpanKind())
	}
	checkWriter(t, "profiles[user-trace]", a.get("profiles", "user-trace"), chain[1])
	doc := a.get("search-index", "user-trace")
	checkWriter(t, "search-index[user-trace]", doc, chain[2])
	if v := normalize(t, doc.Value).(map[string]any); v["version"] != 1.0 || v["email_domain"] != "example.org" {
		t.Errorf("search document %v", v)
	}
}
