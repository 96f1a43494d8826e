package serve_test

import (
	"fmt"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/weftstream/weft/internal/kafkatest"
	"github.com/weftstream/weft/processors"
	"github.com/weftstream/weft/serve"
)

// With a lineage retention of 7 days, key "old" written at event times
// 20, 10, 5 and 1 days ago keeps versions 2 to 4 (version 1 was replaced
// 10 days ago, before the retention; version 2 was the value 6 days
// ago). An as_of older than 7 days answers 422 with the oldest time
// available and the replay command that can answer it; version 1 is
// no longer answered either.
func TestIntegrationLineageRetention(t *testing.T) {
	f := newFixture(t, serve.WithLineageRetention(0, 7*24*time.Hour, "shop.yaml"))
	now := time.Now()
	days := []int{20, 10, 5, 1}
	em, err := processors.NewEmitter(t.Context(), f.input, processors.WithKafka(f.k), processors.WithTracerProvider(f.tp))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range days {
		at := now.Add(-time.Duration(d) * 24 * time.Hour)
		em.Emit("old", []byte("x"), map[string]string{processors.HeaderEventTime: strconv.FormatInt(at.UnixMilli(), 10)})
	}
	if err := em.Close(); err != nil {
		t.Fatal(err)
	}
	kafkatest.WaitFor(t, time.Minute, "34 records processed", func() bool { return f.rt.Tally().Processed() == 34 })

	var lin struct {
		Versions []value `json:"versions"`
	}
	if resp := f.get("/tables/"+f.group+"/old/lineage", nil, &lin); resp.StatusCode != 200 || len(lin.Versions) != 3 ||
		lin.Versions[0].Version != 4 || lin.Versions[2].Version != 2 {
		t.Fatalf("lineage of old: %d %+v, want versions 4 to 2", resp.StatusCode, lin.Versions)
	}
	sixDaysAgo := now.Add(-6 * 24 * time.Hour).UTC().Format(time.RFC3339)
	var v value
	if resp := f.get("/tables/"+f.group+"/old?as_of="+url.QueryEscape(sixDaysAgo), nil, &v); resp.StatusCode != 200 || v.Version != 2 {
		t.Fatalf("as_of 6 days ago: %d %+v, want version 2", resp.StatusCode, v)
	}
	type problem struct {
		Status          int    `json:"status"`
		Detail          string `json:"detail"`
		OldestAvailable string `json:"oldest_available"`
		OldestRecorded  string `json:"oldest_recorded"`
		Replay          string `json:"replay"`
	}
	fifteenDaysAgo := now.Add(-15 * 24 * time.Hour).UTC().Format(time.RFC3339)
	var p problem
	if resp := f.get("/tables/"+f.group+"/old?as_of="+url.QueryEscape(fifteenDaysAgo), nil, &p); resp.StatusCode != 422 {
		t.Fatalf("as_of 15 days ago: %d %+v, want 422", resp.StatusCode, p)
	}
	oldest, err := time.Parse(time.RFC3339Nano, p.OldestAvailable)
	if want := now.Add(-7 * 24 * time.Hour); err != nil || oldest.Before(want.Add(-time.Minute)) || oldest.After(want.Add(time.Minute)) {
		t.Errorf("oldest_available %q, want about %s", p.OldestAvailable, want.UTC())
	}
	if want := fmt.Sprintf("weft replay shop.yaml --key old --until-time %s", fifteenDaysAgo); p.Replay != want {
		t.Errorf("replay %q, want %q", p.Replay, want)
	}
	p = problem{}
	if resp := f.get("/tables/"+f.group+"/old?as_of=1", nil, &p); resp.StatusCode != 422 || p.OldestRecorded == "" {
		t.Errorf("as_of=1 (replaced before the retention): %d %+v, want 422 naming the oldest version kept", resp.StatusCode, p)
	}
	if resp := f.get("/tables/"+f.group+"/old?as_of=2", nil, &v); resp.StatusCode != 200 || v.Version != 2 {
		t.Errorf("as_of=2: %d %+v", resp.StatusCode, v)
	}
}
