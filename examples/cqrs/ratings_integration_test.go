package cqrs_test

import (
	"path/filepath"
	"reflect"
	"testing"
)

// ratings.yaml: the ratings of testdata/cqrs/rating-events.jsonl give the
// rating read model, exactly the classification changes (commands, then
// events, per customer in order) and the email-campaign read model the
// reference computes. Then one more rating, of a new customer, is followed
// across the three hops of the saga (rating -> UpdateCustomerClassification
// -> CustomerClassificationUpdated -> email campaign): one trace, each span
// the child of the one before, and each table value written by its hop's
// span.
func TestIntegrationRatingsSaga(t *testing.T) {
	a := loadApp(t, "ratings.yaml")
	ratings := readLines(t, filepath.Join(cqrsDir, "rating-events.jsonl"))
	events := readLines(t, filepath.Join(cqrsDir, "expected-classification-events.jsonl"))
	wantRatings := byField(t, filepath.Join(cqrsDir, "expected-customer-ratings.jsonl"), "customer")
	wantCampaign := byField(t, filepath.Join(cqrsDir, "expected-email-campaign.jsonl"), "customer")

	a.produce("rating-events", ratings, "customer")
	a.start(nil)
	// Ratings pass customer-ratings; each change passes the classifier
	// (its command) and email-campaign (its event).
	a.waitHandled(int64(len(ratings) + 2*len(events)))
	if n, reasons := a.rejected(); n != 0 {
		t.Fatalf("%d records rejected: %v", n, reasons)
	}
	a.compareTable("customer-ratings", wantRatings)
	a.compareTable("email-campaign", wantCampaign)

	want := map[string][]any{}
	for _, e := range events {
		v := decodeJSON(t, []byte(e)).(map[string]any)
		want[v["customer"].(string)] = append(want[v["customer"].(string)], v)
	}
	if got := sequencesByKey(t, a.consume("classification-events", len(events))); !reflect.DeepEqual(got, want) {
		for c := range want {
			if !reflect.DeepEqual(got[c], want[c]) {
				t.Errorf("classification events of %s:\n got  %s\n want %s", c, jsonText(got[c]), jsonText(want[c]))
			}
		}
		t.Fatal("classification-events differ from expected-classification-events.jsonl")
	}
	// The commands carry the same changes.
	commands := sequencesByKey(t, a.consume("classification-commands", len(events)))
	for c, evs := range want {
		if len(commands[c]) != len(evs) {
			t.Fatalf("%d commands for %s, want %d", len(commands[c]), c, len(evs))
		}
		for i, ev := range evs {
			cmd := commands[c][i].(map[string]any)
			if cmd["type"] != "UpdateCustomerClassification" || cmd["class"] != ev.(map[string]any)["class"] {
				t.Errorf("command %d of %s: %v, want class %v", i, c, cmd, ev.(map[string]any)["class"])
			}
		}
	}

	// One rating of a new customer: a first class, so the whole saga runs.
	root, chain := a.traceOf("rating-events", "rc-trace", `{"type":"RatingGiven","customer":"rc-trace","stars":5}`,
		"send "+a.topic("rating-events"),
		"process "+a.topic("rating-events"),
		"process "+a.topic("classification-commands"),
		"process "+a.topic("classification-events"))
	checkChain(t, root, chain)
	checkWriter(t, "customer-ratings[rc-trace]", a.get("customer-ratings", "rc-trace"), chain[1])
	campaign := a.get("email-campaign", "rc-trace")
	checkWriter(t, "email-campaign[rc-trace]", campaign, chain[3])
	if got, want := normalize(t, campaign.Value), decodeJSON(t, []byte(`{"customer":"rc-trace","class":"A","campaign":"loyalty-rewards","classifications":1}`)); !reflect.DeepEqual(got, want) {
		t.Errorf("email-campaign[rc-trace] = %s, want %s", jsonText(got), jsonText(want))
	}
}
