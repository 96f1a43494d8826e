package bank

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/weftstream/weft/processors"
)

// dataDir is the bank data set; its expected files come from an independent
// Python implementation (testdata/bank/gen.py).
var dataDir = filepath.Join("..", "..", "testdata", "bank")

func readLines(t testing.TB, name string) []string {
	t.Helper()
	f, err := os.Open(filepath.Join(dataDir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// ExpectedAccount is one line of expected.jsonl.
type expectedAccount struct {
	Account string `json:"account"`
	Owner   string `json:"owner"`
	Balance int64  `json:"balance"`
	Status  string `json:"status"`
	Events  int64  `json:"events"`
}

func readExpected(t testing.TB, name string) map[string]expectedAccount {
	t.Helper()
	out := map[string]expectedAccount{}
	for _, l := range readLines(t, name) {
		var e expectedAccount
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out[e.Account] = e
	}
	return out
}

func fold(t *testing.T, lines []string) (map[string]*Account, int) {
	t.Helper()
	state := map[string]*Account{}
	rejected := 0
	for i, l := range lines {
		e, err := DecodeEvent([]byte(l))
		if err == nil {
			var next *Account
			next, err = Apply(state[e.Account], e)
			if err == nil {
				state[e.Account] = next
				continue
			}
			if _, ok := processors.AsRejection(err); !ok {
				t.Fatalf("line %d: error is not a rejection: %v", i+1, err)
			}
		}
		rejected++
	}
	return state, rejected
}

func compare(t *testing.T, got map[string]*Account, want map[string]expectedAccount) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%d accounts, want %d", len(got), len(want))
	}
	for id, w := range want {
		g, ok := got[id]
		if !ok {
			t.Errorf("account %s missing", id)
			continue
		}
		if g.Owner != w.Owner || g.Balance != w.Balance || g.Status != w.Status || g.Events != w.Events {
			t.Errorf("account %s = %+v, want %+v", id, *g, w)
		}
	}
}

func TestApplyMatchesExpectedReadModel(t *testing.T) {
	state, rejected := fold(t, readLines(t, "events.jsonl"))
	if rejected != 0 {
		t.Fatalf("%d valid events rejected", rejected)
	}
	compare(t, state, readExpected(t, "expected.jsonl"))
}

func TestApplyRejectsBadEvents(t *testing.T) {
	state, rejected := fold(t, readLines(t, "bad-events.jsonl"))
	want, err := strconv.Atoi(strings.TrimSpace(readLines(t, "bad-expected-rejects.txt")[0]))
	if err != nil {
		t.Fatal(err)
	}
	if rejected != want {
		t.Errorf("rejected %d lines, want %d", rejected, want)
	}
	compare(t, state, readExpected(t, "bad-expected.jsonl"))
}

func TestApplyDoesNotModifyCurrent(t *testing.T) {
	cur := &Account{Account: "a", Balance: 10, Status: StatusOpen, Events: 1}
	before := *cur
	next, err := Apply(cur, &Event{Type: Withdrawn, Account: "a", Amount: json.RawMessage("4")})
	if err != nil {
		t.Fatal(err)
	}
	if *cur != before || next.Balance != 6 || next.Events != 2 {
		t.Fatalf("cur = %+v, next = %+v", *cur, *next)
	}
}

func TestRejectionReasons(t *testing.T) {
	open := &Account{Account: "a", Balance: 5, Status: StatusOpen, Events: 1}
	cases := []struct {
		cur    *Account
		event  string
		reason string
	}{
		{nil, `{"type":"Teleported","account":"a"}`, "unknown-type"},
		{nil, `{"type":"Deposited","amount":1}`, "no-account"},
		{open, `{"type":"AccountCreated","account":"a"}`, "duplicate-account"},
		{nil, `{"type":"Deposited","account":"a","amount":1}`, "unknown-account"},
		{&Account{Status: StatusClosed}, `{"type":"Deposited","account":"a","amount":1}`, "closed-account"},
		{open, `{"type":"Deposited","account":"a","amount":"1"}`, "bad-amount"},
		{open, `{"type":"Deposited","account":"a","amount":1.5}`, "bad-amount"},
		{open, `{"type":"Deposited","account":"a","amount":0}`, "bad-amount"},
		{open, `{"type":"Withdrawn","account":"a"}`, "bad-amount"},
		{open, `{"type":"Withdrawn","account":"a","amount":6}`, "insufficient-funds"},
	}
	for _, c := range cases {
		e, err := DecodeEvent([]byte(c.event))
		if err != nil {
			t.Fatalf("%s: %v", c.event, err)
		}
		_, err = Apply(c.cur, e)
		rej, ok := processors.AsRejection(err)
		if !ok || rej.Reason != c.reason {
			t.Errorf("%s: error %v, want rejection %q", c.event, err, c.reason)
		}
	}
	for _, bad := range []string{"", "plain text", "[1,2]", `{"type":`} {
		if _, err := DecodeEvent([]byte(bad)); err == nil {
			t.Errorf("DecodeEvent(%q) succeeded", bad)
		}
	}
}
