package serve_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/weftstream/weft/internal/kafkatest"
	"github.com/weftstream/weft/kafkaclient"
	"github.com/weftstream/weft/processors"
	"github.com/weftstream/weft/serve"
)

// The lineage with ?events=true carries, for every version, the input
// record that made it, fetched from Kafka at the version's source offset:
// the three records produced for key "ev" ({"n":1..3}), newest first,
// with their key and headers (the
// fixture's server has WithKafka). Once the oldest record is deleted from
// the topic, its version says so and the others still come. Without
// WithKafka, and for a malformed value, events= answers 400.
func TestIntegrationLineageEvents(t *testing.T) {
	f := newFixture(t)
	em, err := processors.NewEmitter(t.Context(), f.input, processors.WithKafka(f.k), processors.WithTracerProvider(f.tp))
	if err != nil {
		t.Fatal(err)
	}
	for n := 1; n <= 3; n++ {
		em.Emit("ev", []byte(fmt.Sprintf(`{"n":%d}`, n)), map[string]string{"order": fmt.Sprint(n)})
	}
	if err := em.Close(); err != nil {
		t.Fatal(err)
	}
	kafkatest.WaitFor(t, time.Minute, "33 records processed", func() bool { return f.rt.Tally().Processed() == 33 })

	var lin struct {
		Versions []struct {
			Version uint64 `json:"version"`
			Sources []struct {
				Topic     string `json:"topic"`
				Partition int32  `json:"partition"`
				Offset    int64  `json:"offset"`
			} `json:"sources"`
			Event *struct {
				Topic     string            `json:"topic"`
				Partition int32             `json:"partition"`
				Offset    int64             `json:"offset"`
				Key       string            `json:"key"`
				Value     json.RawMessage   `json:"value"`
				Headers   map[string]string `json:"headers"`
				Error     string            `json:"error"`
			} `json:"event"`
		} `json:"versions"`
	}
	if resp := f.get("/tables/"+f.group+"/ev/lineage?events=true", nil, &lin); resp.StatusCode != 200 || len(lin.Versions) != 3 {
		t.Fatalf("lineage?events=true: %d %+v, want 3 versions", resp.StatusCode, lin)
	}
	for i, v := range lin.Versions {
		n := 3 - i
		e, src := v.Event, v.Sources[0]
		if v.Version != uint64(n) || e == nil || e.Error != "" || e.Key != "ev" || string(e.Value) != fmt.Sprintf(`{"n":%d}`, n) ||
			e.Topic != src.Topic || e.Partition != src.Partition || e.Offset != src.Offset || e.Topic != f.input ||
			e.Headers["order"] != fmt.Sprint(n) {
			t.Errorf("version %d: %+v event %+v, want the record {\"n\":%d} at its source offset", v.Version, v, e, n)
		}
	}
	// The oldest record deleted from the topic (its log start moves past
	// it): that version says so, the others still come.
	oldest := lin.Versions[2].Sources[0]
	cl, err := kgo.NewClient(kgo.SeedBrokers(f.k.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	del := kadm.Offsets{}
	del.Add(kadm.Offset{Topic: oldest.Topic, Partition: oldest.Partition, At: oldest.Offset + 1})
	if res, err := kadm.NewClient(cl).DeleteRecords(t.Context(), del); err != nil || res.Error() != nil {
		t.Fatalf("delete records: %v %v", err, res.Error())
	}
	lin.Versions = nil
	f.get("/tables/"+f.group+"/ev/lineage?events=true", nil, &lin)
	if e := lin.Versions[2].Event; e == nil || !strings.Contains(e.Error, "no longer in") || e.Value != nil {
		t.Errorf("the deleted record of version 1: %+v, want an error saying it is no longer in the topic", e)
	}
	if e := lin.Versions[1].Event; e == nil || e.Error != "" || string(e.Value) != `{"n":2}` {
		t.Errorf("version 2 after the deletion of version 1's record: %+v", e)
	}
	// Without events=true: no events.
	var plain struct {
		Versions []map[string]any `json:"versions"`
	}
	f.get("/tables/"+f.group+"/ev/lineage", nil, &plain)
	if _, ok := plain.Versions[0]["event"]; ok || len(plain.Versions) != 3 {
		t.Errorf("lineage without events=true: %+v", plain)
	}
	if resp := f.get("/tables/"+f.group+"/ev/lineage?events=maybe", nil, nil); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("events=maybe: %d, want 400", resp.StatusCode)
	}
	g := newFixture(t, serve.WithKafka(kafkaclient.Config{}))
	if resp := g.get("/tables/"+g.group+"/k00/lineage?events=true", nil, nil); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("events=true without WithKafka: %d, want 400", resp.StatusCode)
	}
}
