package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/weftstream/weft/internal/kafkatest"
)

// claimList matches the partitions of one topic in goka's "setup
// generation" line (claims=map[string][]int32{"topic":[]int32{0, 3}}).
var claimList = regexp.MustCompile(`\[\]int32\{([0-9, ]*)\}`)

// claimedPartitions returns how many partitions of its input p's latest
// generation (of goka processor processor, or of any if "") gave it.
func claimedPartitions(p *proc, processor string) int {
	out := p.out.String()
	i := strings.LastIndex(out, "[Processor "+processor)
	if processor == "" {
		i = strings.LastIndex(out, logGeneration)
	}
	for i >= 0 {
		line := out[i:]
		if j := strings.IndexByte(line, '\n'); j >= 0 {
			line = line[:j]
		}
		if strings.Contains(line, logGeneration) {
			break
		}
		i = strings.LastIndex(out[:i], "[Processor "+processor)
	}
	if i < 0 {
		return 0
	}
	line := out[i:]
	if j := strings.IndexByte(line, '\n'); j >= 0 {
		line = line[:j]
	}
	most := 0
	for _, m := range claimList.FindAllStringSubmatch(line, -1) {
		if list := strings.TrimSpace(m[1]); list != "" {
			most = max(most, strings.Count(list, ",")+1)
		}
	}
	return most
}

// The bank projection rebalanced 1 → 3 → 1 instances while its input
// arrives: two instances join a running one (each gets partitions and
// processes its share), then leave again (Ctrl-C) while records keep
// coming. The table ends exactly as the reference fold of the input
// computes it, and while three instances run, it matches the fold of what
// was produced so far.
func TestIntegrationRebalanceOneThreeOne(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	b := strings.Join(brokers, ",")
	n := faultEvents(t, 6000)
	accounts := max(n/20, 10)
	events := genBank(n, accounts, 13)
	input, group := kafkatest.Topic(t, "bank-events"), kafkatest.Group(t, "bank")
	table := group + "-table"
	const partitions = 8
	kafkatest.CreateTopic(t, brokers, input, partitions)
	prod := gokaProducer(t, brokers, input)
	start := func() (*proc, string, time.Time) {
		addr := freeAddr(t)
		return startProc(t, "run", "--input", input, "--group", group, "--state-dir", t.TempDir(), "--brokers", b,
			"--partitions", "8", "--log-format", "json", "--log-level", "debug", "--progress-interval", "0",
			"--http-addr", addr, "--cache-max-bytes", "32768"), addr, time.Now()
	}
	const parts = 5
	part := func(i int) []kv { return events[i*n/parts : (i+1)*n/parts] }
	exact := func(p *proc, upTo int, what string) time.Duration {
		t.Helper()
		want := foldBank(t, events[:upTo*n/parts])
		began := time.Now()
		var wrong int
		var examples []string
		waitRunning(t, p, 3*time.Minute, what, func() bool {
			latest := tableLatest(t, brokers, table)
			if latest == nil {
				return false
			}
			wrong, examples = bankDiff(t, latest, want)
			return wrong == 0
		})
		if wrong > 0 { // (waitRunning fails first; kept for the message)
			t.Fatalf("%s: %d accounts wrong: %s", what, wrong, strings.Join(examples, "; "))
		}
		return time.Since(began)
	}

	// One instance.
	produceAll(t, prod, part(0))
	a, aAddr, since := start()
	waitReady(t, a, aAddr, since, 3*time.Minute)
	exact(a, 1, "the table of part 1 (one instance)")

	// 1 → 3, with input arriving while they join.
	sent := produceBackground(t, prod, part(1))
	bp, _, joined := start()
	cp, _, _ := start()
	for _, p := range []*proc{a, bp, cp} {
		waitRunning(t, p, 3*time.Minute, "all three instances to hold partitions", func() bool { return claimedPartitions(p, "") > 0 })
	}
	t.Logf("1 → 3: all three hold partitions %s after the two started", time.Since(joined).Round(time.Millisecond))
	sent()
	produceAll(t, prod, part(2))
	took := exact(a, 3, "the table of parts 1-3 (three instances)")
	t.Logf("three instances: table exact %s after part 3 was produced", took.Round(time.Millisecond))

	// 3 → 1, with input arriving while they leave.
	sent = produceBackground(t, prod, part(3))
	left := time.Now()
	var shares []int64
	for _, p := range []*proc{bp, cp} {
		p.signal(t, os.Interrupt)
		if p.err != nil {
			t.Fatalf("an instance after Ctrl-C: %v", p.err)
		}
		processed, rejected, _ := summaryOf(t, p.out.String())
		if rejected > 0 {
			t.Errorf("an instance rejected %d records", rejected)
		}
		shares = append(shares, processed)
	}
	sent()
	waitRunning(t, a, 3*time.Minute, "the remaining instance to hold every partition", func() bool {
		return claimedPartitions(a, "") == partitions
	})
	t.Logf("3 → 1: the first instance holds every partition %s after the two were stopped", time.Since(left).Round(time.Millisecond))
	produceAll(t, prod, part(4))
	took = exact(a, parts, "every account to match the reference (one instance again)")
	a.signal(t, os.Interrupt)
	if a.err != nil {
		t.Fatalf("the first instance after Ctrl-C: %v", a.err)
	}
	processed, rejected, _ := summaryOf(t, a.out.String())
	if rejected > 0 {
		t.Errorf("the first instance rejected %d records", rejected)
	}
	for i, s := range shares {
		if s == 0 {
			t.Errorf("instance %d of 3 processed nothing while it held partitions", i+2)
		}
	}
	t.Logf("rebalance 1 → 3 → 1: %d events over %d accounts, 0 wrong; processed by the instances: %d, %v (replays included); "+
		"final table exact %s after the last part", n, accounts, processed, shares, took.Round(time.Millisecond))
}
