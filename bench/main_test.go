package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/lovoo/goka/codec"

	"github.com/weftstream/weft/internal/kafkatest"
	"github.com/weftstream/weft/processors"
	"github.com/weftstream/weft/topology"
)

// TestMain lets the test binary be an engine process too: the harness
// starts its Go engines as this executable with $WEFT_BENCH_CHILD set.
func TestMain(m *testing.M) {
	if spec := os.Getenv(envChild); spec != "" {
		os.Exit(childMain(spec, os.Stdout))
	}
	os.Exit(m.Run())
}

// encodeCount is a count as the engine's table stores it.
func encodeCount(t *testing.T, engine string, n int64) []byte {
	t.Helper()
	switch engine {
	case engineGoka:
		return []byte(strconv.FormatInt(n, 10))
	case engineKStreams:
		return binary.BigEndian.AppendUint64(nil, uint64(n))
	}
	data, err := processors.EnvelopeCodec(new(codec.Int64)).Encode(&processors.Stored{Value: n})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestVerifyTableCount(t *testing.T) {
	want := expectation{counts: map[string]int64{"a": 2, "b": 1}}
	for _, engine := range []string{engineGoka, engineKStreams, engineWeft} {
		table := func(counts map[string]int64) changelog {
			c := changelog{latest: map[string][]byte{}}
			for k, n := range counts {
				c.latest[k] = encodeCount(t, engine, n)
			}
			return c
		}
		if err := verifyTable(engine, workloadCount, table(map[string]int64{"a": 2, "b": 1}), want, 3); err != nil {
			t.Errorf("%s: right table: %v", engine, err)
		}
		for name, bad := range map[string]map[string]int64{
			"wrong count": {"a": 1, "b": 1},
			"missing key": {"a": 2},
			"extra key":   {"a": 2, "b": 1, "c": 1},
		} {
			if err := verifyTable(engine, workloadCount, table(bad), want, 3); err == nil {
				t.Errorf("%s: %s %v: verified", engine, name, bad)
			}
		}
	}
}

func TestVerifyTableBank(t *testing.T) {
	in := bankInput{copies: 2, expected: []bankAccount{
		{Account: "acc-1", Owner: "A", Balance: 5, Status: "open", Events: 2},
		{Account: "acc-2", Owner: "B", Balance: 0, Status: "closed", Events: 1},
	}}
	want := expectation{bank: in}
	encode := func(engine string, a bankAccount) []byte {
		if engine == engineWeft {
			m := map[string]any{"account": a.Account, "owner": a.Owner, "balance": a.Balance, "status": a.Status, "events": a.Events}
			data, err := processors.EnvelopeCodec(topology.JSON{}).Encode(&processors.Stored{Value: m})
			if err != nil {
				t.Fatal(err)
			}
			return data
		}
		data, _ := json.Marshal(a)
		return data
	}
	for _, engine := range []string{engineGoka, engineKStreams, engineWeft} {
		table := func(change func(id string, a *bankAccount)) changelog {
			c := changelog{latest: map[string][]byte{}}
			for cp := range in.copies {
				for _, a := range in.expected {
					a.Account = copyAccount(a.Account, cp)
					change(a.Account, &a)
					c.latest[a.Account] = encode(engine, a)
				}
			}
			return c
		}
		if err := verifyTable(engine, workloadBank, table(func(string, *bankAccount) {}), want, 6); err != nil {
			t.Errorf("%s: right table: %v", engine, err)
		}
		bad := table(func(id string, a *bankAccount) {
			if id == "acc-1-c01" {
				a.Balance++
			}
		})
		if err := verifyTable(engine, workloadBank, bad, want, 6); err == nil || !strings.Contains(err.Error(), "acc-1-c01") {
			t.Errorf("%s: wrong balance of acc-1-c01: %v", engine, err)
		}
		short := table(func(string, *bankAccount) {})
		delete(short.latest, "acc-2-c00")
		if err := verifyTable(engine, workloadBank, short, want, 6); err == nil {
			t.Errorf("%s: missing account: verified", engine)
		}
	}
}

func TestParseFlags(t *testing.T) {
	for args, flagName := range map[string]string{
		"-workload nope":        "-workload",
		"-engines weft,spark":   "-engines",
		"-n 0":                  "-n",
		"-reps 0":               "-reps",
		"-keys -1":              "-keys",
		"-engines weft stray":   "argument",
		"-workload count,joins": "-workload",
	} {
		_, err := parseFlags(strings.Fields(args), new(bytes.Buffer))
		if err == nil || !strings.Contains(err.Error(), flagName) {
			t.Errorf("%s: error %v, want one naming %s", args, err, flagName)
		}
	}
	c, err := parseFlags([]string{"-workload", "bank,count", "-engines", "weft, goka-leveldb", "-brokers", "a:1,b:2"}, new(bytes.Buffer))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.workloads, " ") != "bank count" || strings.Join(c.engines, " ") != "weft goka-leveldb" || len(c.brokers) != 2 {
		t.Errorf("parsed %+v", c)
	}
}

// TestIntegrationHarness runs the harness end to end with the Go engines
// on a small input of both workloads, twice (order rotated), and checks
// that every engine ran, was verified and measured.
func TestIntegrationHarness(t *testing.T) {
	brokers := strings.Join(kafkatest.Brokers(t), ",")
	engines := []string{engineRaw, engineGoka, engineWeft, engineWeft100}
	var out, errOut bytes.Buffer
	code, err := harnessMain([]string{"-n", "3000", "-keys", "300", "-workload", "count,bank", "-reps", "2",
		"-engines", strings.Join(engines, ","), "-brokers", brokers, "-json"}, &out, &errOut)
	if code != 0 || err != nil {
		t.Fatalf("harness: exit %d, %v\n%s", code, err, errOut.String())
	}
	runs := map[string]int{}
	sums := map[string]runRow{}
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		var r runRow
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("output line %q: %v", sc.Text(), err)
		}
		key := r.Workload + "/" + r.Engine
		switch r.Kind {
		case "run":
			runs[key]++
		case "summary":
			sums[key] = r
		default:
			t.Errorf("line of kind %q", r.Kind)
		}
	}
	for _, w := range []string{workloadCount, workloadBank} {
		events := 3000
		if w == workloadBank {
			events = 5006 // one copy of events.jsonl
		}
		for _, e := range engines {
			key := w + "/" + e
			s, ok := sums[key]
			switch {
			case !ok:
				t.Errorf("%s: no summary", key)
				continue
			case runs[key] != 2 || s.Reps != 2:
				t.Errorf("%s: %d runs, summary of %d, want 2", key, runs[key], s.Reps)
			case s.Events != events || s.Error != "":
				t.Errorf("%s: %d events (want %d), error %q", key, s.Events, events, s.Error)
			case s.CPUPerEvent <= 0 || s.PeakRSS <= 0 || s.WallSeconds <= 0:
				t.Errorf("%s: not measured: %+v", key, s)
			case e != engineRaw && (!s.Verified || s.ChangelogBytes <= 0 || s.CPUvsGoka <= 0):
				t.Errorf("%s: table not verified or measured: %+v", key, s)
			case e == engineWeft100 && s.Spans < int64(events):
				t.Errorf("%s: %d spans exported for %d records", key, s.Spans, events)
			}
		}
	}
}
