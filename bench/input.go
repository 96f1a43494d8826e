package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/weftstream/weft/kafkaclient"
	"github.com/weftstream/weft/processors"
)

// inputSeed seeds the random keys of the count input.
const inputSeed = 42

// record is one input record.
type record struct {
	key   string
	value []byte
}

func keyName(k int) string { return fmt.Sprintf("key-%05d", k) }

// countInput returns events records over keys seeded random keys (so
// per-key counts vary), each with a small JSON payload, and how many records
// each key got: the independent fold the count tables are checked against.
func countInput(events, keys int) ([]record, map[string]int64) {
	names := make([]string, keys)
	for k := range names {
		names[k] = keyName(k)
	}
	rng := rand.New(rand.NewPCG(inputSeed, inputSeed))
	want := make(map[string]int64, keys)
	records := make([]record, events)
	for i := range records {
		key := names[rng.IntN(keys)]
		want[key]++
		// A small event payload; the processors only count.
		records[i] = record{key: key, value: fmt.Appendf(nil, `{"seq":%d,"key":%q,"amount":%d}`, i, key, rng.IntN(1000))}
	}
	return records, want
}

// bankAccount is one line of testdata/bank/expected.jsonl: an account of
// the bank read model.
type bankAccount struct {
	Account string `json:"account"`
	Owner   string `json:"owner"`
	Balance int64  `json:"balance"`
	Status  string `json:"status"`
	Events  int64  `json:"events"`
}

// bankInput is the bank input: copies of testdata/bank/events.jsonl.
type bankInput struct {
	records  []record
	copies   int
	expected []bankAccount // the accounts of one copy, before the copy suffix
}

func copyAccount(account string, c int) string { return fmt.Sprintf("%s-c%02d", account, c) }

// loadBankInput builds copies of dir/events.jsonl, at least events records
// in all (or exactly copies copies when events is 0), the account ids of
// copy c suffixed with "-cNN", interleaved line by line so that every
// account gets its AccountCreated first (Kafka keeps the order per key).
// Every copy must end as dir/expected.jsonl says (with its suffix).
func loadBankInput(dir string, events, copies int) (bankInput, error) {
	lines, err := readLines(filepath.Join(dir, "events.jsonl"))
	if err != nil {
		return bankInput{}, err
	}
	exp, err := readLines(filepath.Join(dir, "expected.jsonl"))
	if err != nil {
		return bankInput{}, err
	}
	var expected []bankAccount
	for _, l := range exp {
		var a bankAccount
		if err := json.Unmarshal(l, &a); err != nil {
			return bankInput{}, fmt.Errorf("expected.jsonl: %w", err)
		}
		expected = append(expected, a)
	}
	if len(lines) == 0 {
		return bankInput{}, fmt.Errorf("%s: no events", filepath.Join(dir, "events.jsonl"))
	}
	if copies <= 0 {
		copies = max(1, (events+len(lines)-1)/len(lines))
	}
	in := bankInput{records: make([]record, 0, copies*len(lines)), copies: copies, expected: expected}
	for i, l := range lines {
		var e struct{ Account string }
		if err := json.Unmarshal(l, &e); err != nil || e.Account == "" {
			return bankInput{}, fmt.Errorf("events.jsonl line %d: no account (%v)", i+1, err)
		}
		field := []byte(`"account":"` + e.Account + `"`)
		if bytes.Count(l, field) != 1 {
			return bankInput{}, fmt.Errorf("events.jsonl line %d: want exactly one %s", i+1, field)
		}
		for c := range copies {
			id := copyAccount(e.Account, c)
			in.records = append(in.records, record{key: id, value: bytes.Replace(l, field, []byte(`"account":"`+id+`"`), 1)})
		}
	}
	return in, nil
}

// readLines returns the non-blank lines of a file.
func readLines(path string) ([][]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var lines [][]byte
	for l := range bytes.SplitSeq(data, []byte("\n")) {
		if l = bytes.TrimSpace(l); len(l) > 0 {
			lines = append(lines, bytes.Clone(l))
		}
	}
	return lines, nil
}

// produce writes records to topic with weft's emitter (goka's partitioner,
// acks=all) and waits until the brokers acknowledged all of them. headers,
// if not nil, gives the headers of record i.
func produce(ctx context.Context, kcfg kafkaclient.Config, topic string, records []record, headers func(i int) map[string]string) error {
	em, err := processors.NewEmitter(ctx, topic, processors.WithKafka(kcfg))
	if err != nil {
		return fmt.Errorf("create emitter for %s: %w", topic, err)
	}
	for i, r := range records {
		var h map[string]string
		if headers != nil {
			h = headers(i)
		}
		em.Emit(r.key, r.value, h)
	}
	if err := em.Close(); err != nil {
		return fmt.Errorf("produce to %s: %w", topic, err)
	}
	if got := em.Sent(); got != int64(len(records)) {
		return fmt.Errorf("produced %d records to %s, brokers acknowledged %d", len(records), topic, got)
	}
	return nil
}
