package cqrs_test

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/weftstream/weft/processors"
)

// bank.yaml builds the read model of testdata/bank/events.jsonl that
// testdata/bank/gen.py computed: every one of the 300 accounts, exactly.
func TestIntegrationBankTopology(t *testing.T) {
	a := loadApp(t, "bank.yaml")
	lines := readLines(t, filepath.Join(bankDir, "events.jsonl"))
	want := byField(t, filepath.Join(bankDir, "expected.jsonl"), "account")
	if len(want) != 300 {
		t.Fatalf("%d expected accounts", len(want))
	}
	a.produce("bank-events", lines, "account")
	a.start(nil)
	a.waitHandled(int64(len(lines)))
	if n, reasons := a.rejected(); n != 0 {
		t.Fatalf("%d valid events rejected: %v", n, reasons)
	}
	a.compareTable("balances", want)
}

// bank.yaml applies the rejection rules of testdata/bank/README.md: the 29
// lines of bad-events.jsonl give bad-expected.jsonl and 19 dead letters,
// each rejected by the rule testdata/cqrs/gen.py names (from the reference
// implementation in testdata/bank/gen.py).
func TestIntegrationBankTopologyRejections(t *testing.T) {
	a := loadApp(t, "bank.yaml")
	lines := readLines(t, filepath.Join(bankDir, "bad-events.jsonl"))
	want := byField(t, filepath.Join(bankDir, "bad-expected.jsonl"), "account")
	wantRejects, err := strconv.Atoi(strings.TrimSpace(readLines(t, filepath.Join(bankDir, "bad-expected-rejects.txt"))[0]))
	if err != nil {
		t.Fatal(err)
	}
	ruleOf := map[string]int{} // line text -> rule
	for _, r := range readObjects(t, filepath.Join(cqrsDir, "bank-bad-rejects.jsonl")) {
		ruleOf[lines[int(r["line"].(float64))-1]] = int(r["rule"].(float64))
	}
	if len(ruleOf) != wantRejects {
		t.Fatalf("bank-bad-rejects.jsonl names %d distinct lines, bad-expected-rejects.txt says %d", len(ruleOf), wantRejects)
	}

	a.produce("bank-events", lines, "account")
	a.start(nil)
	a.waitHandled(int64(len(lines)))
	if n, reasons := a.rejected(); n != int64(wantRejects) {
		t.Fatalf("rejected %d, want %d: %v", n, wantRejects, reasons)
	}
	a.compareTable("balances", want)
	if v := a.value("balances", "acc-9999"); v != nil {
		t.Fatalf("unknown account acc-9999 has a value: %v", v)
	}

	// Every dead letter says why: the codec for lines that are not JSON,
	// else the rule's reject('<rule>: ...') of the CEL state machine.
	dlq := string(processors.DeadLetterTopic(a.group("balances")))
	for _, r := range consumeTopic(t, a.kafka.Brokers, dlq, wantRejects) {
		rule, ok := ruleOf[string(r.Value)]
		if !ok {
			t.Errorf("dead letter %q is not a line the reference rejects", r.Value)
			continue
		}
		msg := header(r, processors.HeaderErrorMessage)
		decoded := header(r, processors.HeaderErrorReason) == "decode"
		if !(rule == 1 && decoded) && !strings.Contains(msg, fmt.Sprintf("rejected: %d:", rule)) {
			t.Errorf("dead letter %q: message %q, want rule %d", r.Value, msg, rule)
		}
		delete(ruleOf, string(r.Value))
	}
	if len(ruleOf) != 0 {
		t.Errorf("lines not dead-lettered: %v", ruleOf)
	}
}
