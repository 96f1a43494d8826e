package serve_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/weftstream/weft/internal/kafkatest"
	"github.com/weftstream/weft/kafkaclient"
	"github.com/weftstream/weft/processors"
	"github.com/weftstream/weft/serve/client"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// scanPage is the answer of a scan.
type scanPage struct {
	Items       []value `json:"items"`
	Next        string  `json:"next"`
	Partitions  []int32 `json:"partitions"`
	Complete    bool    `json:"complete"`
	Unavailable []int32 `json:"unavailable"`
}

// TestIntegrationFanoutScansAndWatchesSpanInstances runs two members of a
// group, A and B, each holding some partitions. A scan at A pages through
// every key of both, in key order, with its cursor (pages of 3 of 20
// keys); a prefix scan too; a watch at A of a key B holds streams B's
// changes; a prefix watch at A says which partitions B holds; once B's API
// is down, a scan at A answers A's keys and names B's partitions
// unavailable (complete false).
func TestIntegrationFanoutScansAndWatchesSpanInstances(t *testing.T) {
	const partitions = 4
	brokers := kafkatest.Brokers(t)
	input, group := kafkatest.Topic(t, "fan-in"), kafkatest.Group(t, "fan")
	kafkatest.CreateTopic(t, brokers, input, partitions)
	tp := sdktrace.NewTracerProvider()
	a := startInstance(t, brokers, input, group, true, tp)
	b := startInstance(t, brokers, input, group, true, tp)
	kafkatest.WaitFor(t, 2*time.Minute, "the partitions split over two restored members", func() bool {
		na, nb := len(a.reader.Served()), len(b.reader.Served())
		return na > 0 && nb > 0 && na == len(a.reader.Assigned()) && nb == len(b.reader.Assigned()) && na+nb == partitions
	})

	// Key k-NN is counted NN+1 times.
	var keys []string
	want := map[string]int{}
	em, err := processors.NewEmitter(t.Context(), input, processors.WithKafka(kafkaclient.Config{Brokers: brokers}))
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for i := range 20 {
		k := fmt.Sprintf("k-%02d", i)
		keys = append(keys, k)
		for range i + 1 {
			em.Emit(k, []byte("x"), nil)
			want[k]++
			total++
		}
	}
	if err := em.Close(); err != nil {
		t.Fatal(err)
	}
	kafkatest.WaitFor(t, time.Minute, fmt.Sprintf("%d records processed", total), func() bool {
		return a.rt.Tally().Processed()+b.rt.Tally().Processed() == int64(total)
	})
	var aKeys, bKeys []string
	for _, k := range keys {
		if a.owns(a.reader.Partition(k)) {
			aKeys = append(aKeys, k)
		} else {
			bKeys = append(bKeys, k)
		}
	}
	if len(aKeys) == 0 || len(bKeys) == 0 {
		t.Fatalf("A holds %v, B %v: both should hold keys", aKeys, bKeys)
	}

	scanAll := func(query string) (got []string, pages int) {
		t.Helper()
		from := ""
		for {
			u := a.url + "/tables/" + group + "?limit=3" + query
			if from != "" {
				u += "&from=" + url.QueryEscape(from)
			}
			resp, body := forwardGet(t, u, nil)
			var p scanPage
			if resp.StatusCode != 200 || json.Unmarshal(body, &p) != nil {
				t.Fatalf("scan %s: %d %s", u, resp.StatusCode, body)
			}
			if !p.Complete || !slices.Equal(p.Partitions, []int32{0, 1, 2, 3}) || len(p.Unavailable) != 0 || len(p.Items) > 3 {
				t.Fatalf("scan %s: %s, want a complete page of at most 3 over partitions 0-3", u, body)
			}
			for _, v := range p.Items {
				if string(v.Value) != fmt.Sprint(want[v.Key]) {
					t.Errorf("scan: %s = %s, want %d", v.Key, v.Value, want[v.Key])
				}
				got = append(got, v.Key)
			}
			pages++
			if p.Next == "" {
				return got, pages
			}
			from = p.Next
		}
	}
	if got, pages := scanAll(""); !slices.Equal(got, keys) || pages != 7 {
		t.Fatalf("scan at A in %d pages: %v, want %v in 7 pages", pages, got, keys)
	}
	if got, _ := scanAll("&prefix=k-1"); !slices.Equal(got, keys[10:20]) {
		t.Fatalf("scan of k-1 at A: %v, want %v", got, keys[10:20])
	}

	// A key B holds, watched at A: the stream is B's.
	c, err := client.New(a.url, forwardToken)
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan client.Event, 16)
	watch := func(q client.WatchQuery) context.CancelFunc {
		ctx, cancel := context.WithCancel(t.Context())
		go func() {
			_, err := c.Watch(ctx, group, q, func(e client.Event) error { events <- e; return nil })
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("watch %+v at A: %v", q, err)
			}
		}()
		return cancel
	}
	next := func() client.Event {
		t.Helper()
		select {
		case e := <-events:
			return e
		case <-time.After(30 * time.Second):
			t.Fatal("no watch event in 30 s")
		}
		return client.Event{}
	}
	// B's head id counts the changes B's changelog acknowledged: one per
	// record of B's keys once settled.
	bKey, bChanges := bKeys[0], 0
	for _, k := range bKeys {
		bChanges += want[k]
	}
	var stop context.CancelFunc
	deadline := time.Now().Add(time.Minute)
	for {
		stop = watch(client.WatchQuery{Key: bKey})
		e := next()
		if e.Kind != "open" {
			t.Fatalf("the watch of B's key %s at A started with %+v", bKey, e)
		}
		if n := seq(t, e.ID); n == uint64(bChanges) {
			break
		} else if n > uint64(bChanges) || time.Now().After(deadline) {
			t.Fatalf("B acknowledged %d changes, want %d", n, bChanges)
		}
		stop()
		time.Sleep(20 * time.Millisecond) // poll interval of the condition
	}
	em, err = processors.NewEmitter(t.Context(), input, processors.WithKafka(kafkaclient.Config{Brokers: brokers}))
	if err != nil {
		t.Fatal(err)
	}
	em.Emit(bKey, []byte("x"), nil)
	if err := em.Close(); err != nil {
		t.Fatal(err)
	}
	want[bKey]++
	if e := next(); e.Kind != "" || e.Change.Key != bKey || string(e.Change.Value) != fmt.Sprint(want[bKey]) {
		t.Fatalf("the watch of B's key %s at A: %+v, want its count %d", bKey, e, want[bKey])
	}
	stop()

	// A prefix watch at A names B and its partitions.
	stop = watch(client.WatchQuery{Key: "k-", IsPrefix: true})
	if e := next(); e.Kind != "open" {
		t.Fatalf("the prefix watch at A started with %+v", e)
	}
	e := next()
	var partial struct {
		Partitions []int32 `json:"partitions"`
		Elsewhere  []struct {
			URL        string  `json:"url"`
			Partitions []int32 `json:"partitions"`
		} `json:"elsewhere"`
	}
	if e.Kind != "partial" || json.Unmarshal(e.Data, &partial) != nil || !slices.Equal(partial.Partitions, a.reader.Served()) ||
		len(partial.Elsewhere) != 1 || partial.Elsewhere[0].URL != b.url || !slices.Equal(partial.Elsewhere[0].Partitions, b.reader.Served()) {
		t.Fatalf("the prefix watch at A: %+v %s, want partial with A's partitions %v and B (%s) with %v", e, e.Data, a.reader.Served(), b.url, b.reader.Served())
	}
	stop()

	// B's API is down: A's keys only, B's partitions named.
	b.stopAPI()
	resp, body := forwardGet(t, a.url+"/tables/"+group+"?limit=100", nil)
	var p scanPage
	if resp.StatusCode != 200 || json.Unmarshal(body, &p) != nil {
		t.Fatalf("scan with B down: %d %s", resp.StatusCode, body)
	}
	var got []string
	for _, v := range p.Items {
		got = append(got, v.Key)
	}
	if p.Complete || !slices.Equal(got, aKeys) || !slices.Equal(p.Unavailable, b.reader.Served()) || !slices.Equal(p.Partitions, a.reader.Served()) {
		t.Fatalf("scan with B's API down: %s, want A's keys %v and B's partitions %v unavailable", body, aKeys, b.reader.Served())
	}
}
