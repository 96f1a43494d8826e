package main

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weftstream/weft/broker"
	"github.com/weftstream/weft/internal/kafkatest"
)

func TestGiveUpAfterNegativeIsAUsageError(t *testing.T) {
	_, err := weft(t.Context(), "run", "--give-up-after", "-1s", "--brokers", "127.0.0.1:1")
	var ue *usageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "--give-up-after -1s") {
		t.Fatalf("weft run --give-up-after -1s: %v, want a usage error naming the flag", err)
	}
}

// TestIntegrationRunGivesUpAfter checks that weft run keeps running when
// its broker goes away, and with --give-up-after stops with an error once
// the outage has lasted that long.
func TestIntegrationRunGivesUpAfter(t *testing.T) {
	if os.Getenv(kafkatest.EnvBrokers) != "" {
		t.Skip("the test stops the broker, which it can do only with the embedded broker, not with the cluster in " + kafkatest.EnvBrokers)
	}
	b, err := broker.Start(t.Context(), broker.WithAddr("127.0.0.1:0"), broker.WithDataDir(t.TempDir()), broker.WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	input, group := kafkatest.Topic(t, "bank-events"), kafkatest.Group(t, "bank")
	done := make(chan error, 1)
	go func() {
		_, err := weft(context.Background(), "run", "--brokers", b.Addrs()[0], "--input", input, "--group", group,
			"--state-dir", t.TempDir(), "--partitions", "2", "--log-level", "error", "--give-up-after", "1s")
		done <- err
	}()
	kafkatest.WaitFor(t, time.Minute, "the run's group to become stable", func() bool {
		return groupStable(t, b.Addrs(), group)
	})
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "lost the Kafka cluster for longer than 1s and gave up") {
			t.Fatalf("weft run: %v, want the give-up error", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("weft run did not give up within a minute")
	}
}

// groupStable reports whether group is stable with at least one member.
func groupStable(t *testing.T, brokers []string, group string) bool {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	groups, err := kadm.NewClient(cl).DescribeGroups(ctx, group)
	if err != nil {
		return false
	}
	g, ok := groups[group]
	return ok && g.Err == nil && g.State == "Stable" && len(g.Members) > 0
}
