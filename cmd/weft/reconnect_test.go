package main

import (
	"context"
	"errors"
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
// the outage has lasted that long. The broker is an embedded one of its
// own, or the real cluster stopped (SIGTERM) through kafkatest.EnvControl
// and started again when the test ends.
func TestIntegrationRunGivesUpAfter(t *testing.T) {
	kafkatest.SkipUnlessControllable(t)
	var brokers []string
	var stopBroker func()
	if kafkatest.RealKafka() {
		brokers = kafkatest.Brokers(t)
		down := false
		t.Cleanup(func() {
			if down {
				kafkatest.ControlBroker(t, "start")
			}
		})
		stopBroker = func() {
			down = true // (a stop that fails half-way still needs a start)
			kafkatest.ControlBroker(t, "stop")
		}
	} else {
		b, err := broker.Start(t.Context(), broker.WithAddr("127.0.0.1:0"), broker.WithDataDir(t.TempDir()), broker.WithLogger(nil))
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		brokers = b.Addrs()
		stopBroker = func() {
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
	input, group := kafkatest.Topic(t, "bank-events"), kafkatest.Group(t, "bank")
	// Created before weft run, which would create it too (on real Kafka
	// with the cluster's defaults).
	kafkatest.CreateTopic(t, brokers, input, 2)
	done := make(chan error, 1)
	go func() {
		_, err := weft(context.Background(), "run", "--brokers", strings.Join(brokers, ","), "--input", input, "--group", group,
			"--state-dir", t.TempDir(), "--partitions", "2", "--log-level", "error", "--give-up-after", "1s", "--http-addr", "")
		done <- err
	}()
	kafkatest.WaitFor(t, time.Minute, "the run's group to become stable", func() bool {
		return groupStable(t, brokers, group)
	})
	stopping := time.Now()
	stopBroker()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "lost the Kafka cluster for longer than 1s and gave up") {
			t.Fatalf("weft run: %v, want the give-up error", err)
		}
		t.Logf("weft run gave up %s after the broker's stop began", time.Since(stopping).Round(time.Millisecond))
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
