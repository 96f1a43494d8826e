package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/weftstream/weft/internal/kafkatest"
)

// 1% poison pills mixed into the bank input: null values (tombstones),
// oversized values (900 KB, close to Kafka's default limit of a record,
// that are no event) and undecodable values. Every poison record is on the
// dead-letter topic once, with the reason its kind calls for
// (weft.error.reason) and naming its own partition and offset; inputs =
// processed + dead-lettered; every account is exactly as the reference
// fold of the good records computes it.
func TestIntegrationPoisonPills(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	n := faultEvents(t, 6000)
	accounts := max(n/20, 10)
	good := genBank(n, accounts, 5)
	want := foldBank(t, good)
	rng := rand.New(rand.NewPCG(3, 3))
	type poison struct {
		kind, reason string
	}
	kinds := []poison{{"null", "null"}, {"oversized", "decode"}, {"undecodable", "decode"}}
	var input []kv
	var poisons []poison // the poison record of input[i], by index; kind "" for good ones
	gi := 0
	for gi < len(good) {
		if rng.IntN(100) == 0 {
			p := kinds[len(input)%3]
			key := fmt.Sprintf("acc-%05d", rng.IntN(accounts))
			var v []byte
			switch p.kind {
			case "oversized":
				v = []byte(`{"type":"Deposited","account":"` + key + `","amount":` + strings.Repeat("9", 900_000))
			case "undecodable":
				v = []byte{0xff, 0xfe, 'n', 'o', 't', ' ', 'j', 's', 'o', 'n', byte(len(input))}
			}
			input = append(input, kv{key, v})
			poisons = append(poisons, p)
			continue
		}
		input = append(input, good[gi])
		poisons = append(poisons, poison{})
		gi++
	}

	topic, group := kafkatest.Topic(t, "bank-events"), kafkatest.Group(t, "bank")
	kafkatest.CreateTopic(t, brokers, topic, 4)
	// Produced one by one to learn each poison's partition and offset.
	cl := gokaProducer(t, brokers, topic)
	type where struct {
		partition int32
		offset    int64
	}
	wantDead := map[where]poison{}
	results := make([]*kgo.Record, len(input))
	for i, r := range input {
		cl.Produce(context.Background(), &kgo.Record{Key: []byte(r.key), Value: r.value}, func(rec *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce record %d (%d bytes): %v", i, len(r.value), err)
			}
			results[i] = rec
		})
	}
	if err := cl.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for i, p := range poisons {
		if p.kind != "" {
			wantDead[where{results[i].Partition, results[i].Offset}] = p
			counts[p.kind]++
		}
	}

	p := startProc(t, "run", "--input", topic, "--group", group, "--state-dir", t.TempDir(), "--brokers", strings.Join(brokers, ","),
		"--partitions", "4", "--log-format", "json", "--log-level", "info", "--progress-interval", "0", "--http-addr", freeAddr(t))
	var wrong int
	var examples []string
	waitRunning(t, p, 3*time.Minute, "every account to match the reference", func() bool {
		latest := tableLatest(t, brokers, group+"-table")
		if latest == nil {
			return false
		}
		wrong, examples = bankDiff(t, latest, want)
		return wrong == 0
	})
	dlq := group + "-dlq"
	var dead []*kgo.Record
	waitRunning(t, p, time.Minute, fmt.Sprintf("%d dead letters", len(wantDead)), func() bool {
		dead = topicRecords(t, brokers, dlq)
		return len(dead) >= len(wantDead)
	})
	p.signal(t, os.Interrupt)
	if p.err != nil {
		t.Fatalf("weft run after Ctrl-C: %v", p.err)
	}

	seen := map[where]int{}
	for _, r := range dead {
		h := map[string]string{}
		for _, x := range r.Headers {
			h[x.Key] = string(x.Value)
		}
		part, _ := strconv.ParseInt(h["weft.error.partition"], 10, 32)
		off, _ := strconv.ParseInt(h["weft.error.offset"], 10, 64)
		at := where{int32(part), off}
		seen[at]++
		w, ok := wantDead[at]
		switch {
		case !ok:
			t.Errorf("dead letter %s/%s@%s (reason %q, %d bytes) is no poison record", h["weft.error.topic"],
				h["weft.error.partition"], h["weft.error.offset"], h["weft.error.reason"], len(r.Value))
		case h["weft.error.reason"] != w.reason:
			t.Errorf("%s poison at %d@%d: reason %q, want %q", w.kind, at.partition, at.offset, h["weft.error.reason"], w.reason)
		case w.kind == "oversized" && len(r.Value) < 900_000:
			t.Errorf("oversized poison at %d@%d: dead letter of %d bytes, not the record's", at.partition, at.offset, len(r.Value))
		}
	}
	for at, w := range wantDead {
		if seen[at] != 1 {
			t.Errorf("%s poison at %d@%d is %d times on the dead-letter topic, want once", w.kind, at.partition, at.offset, seen[at])
		}
	}
	processed, rejected, _ := summaryOf(t, p.out.String())
	if processed+rejected != int64(len(input)) || rejected != int64(len(wantDead)) {
		t.Errorf("summary: processed %d + rejected %d, want %d + %d = the %d inputs",
			processed, rejected, len(good), len(wantDead), len(input))
	}
	if wrong > 0 {
		t.Errorf("%d accounts wrong: %s", wrong, strings.Join(examples, "; "))
	}
	t.Logf("%d inputs: %d good, %d poison (%d null, %d oversized, %d undecodable); processed %d, dead-lettered %d; 0 accounts wrong",
		len(input), len(good), len(wantDead), counts["null"], counts["oversized"], counts["undecodable"], processed, rejected)
}
