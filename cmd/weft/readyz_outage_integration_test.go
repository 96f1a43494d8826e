package main

import (
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/weftstream/weft/internal/kafkatest"
	"github.com/weftstream/weft/kafkaclient"
)

// /readyz of a `weft run` says not ready while its broker is stopped
// (the cluster does not answer), and ready again once the broker is back
// and the group has its assignment again. The broker is a `weft broker`
// process, or the real cluster stopped and started through
// kafkatest.EnvControl.
func TestIntegrationReadyzDuringBrokerOutage(t *testing.T) {
	kafkatest.SkipUnlessControllable(t)
	var addr string
	var stopBroker, startBroker func()
	if kafkatest.RealKafka() {
		addr = strings.Join(kafkatest.Brokers(t), ",")
		down := false
		t.Cleanup(func() {
			if down {
				kafkatest.ControlBroker(t, "start")
			}
		})
		stopBroker = func() { down = true; kafkatest.ControlBroker(t, "stop") }
		startBroker = func() { kafkatest.ControlBroker(t, "start"); down = false }
	} else {
		addr = freeAddr(t)
		dataDir := t.TempDir()
		var b *proc
		startBroker = func() {
			b = startProc(t, "broker", "--embedded-addr", addr, "--data-dir", dataDir, "--log-level", "error")
			kafkatest.WaitFor(t, time.Minute, "weft broker to serve on "+addr, func() bool {
				if !b.running() {
					t.Fatalf("weft broker exited: %v", b.err)
				}
				_, err := (kafkaclient.Config{Brokers: []string{addr}}).PartitionCounts(t.Context(), nil)
				return err == nil
			})
		}
		stopBroker = func() { b.signal(t, syscall.SIGTERM) }
		startBroker()
	}
	brokers := strings.Split(addr, ",")
	input, group := kafkatest.Topic(t, "bank-events"), kafkatest.Group(t, "bank")
	kafkatest.CreateTopic(t, brokers, input, 2)
	produceAll(t, gokaProducer(t, brokers, input), genBank(500, 50, 31))
	httpAddr := freeAddr(t)
	run := &readyWatch{addr: httpAddr, p: startProc(t, "run", "--input", input, "--group", group, "--state-dir", t.TempDir(),
		"--brokers", addr, "--partitions", "2", "--log-level", "warn", "--progress-interval", "0", "--http-addr", httpAddr)}
	waitRunning(t, run.p, 3*time.Minute, "weft run's /readyz to say ready", func() bool { return run.poll() == http.StatusOK })

	stopping := time.Now()
	stopBroker()
	stopped := time.Now()
	run.first503, run.ready, run.reasons = time.Time{}, time.Time{}, nil
	waitRunning(t, run.p, time.Minute, "/readyz to say the cluster does not answer", func() bool {
		return run.poll() == http.StatusServiceUnavailable && run.said("the Kafka cluster at "+addr+" does not answer")
	})
	t.Logf("not ready %s after the broker's stop began (%s after it ended); said %q", run.first503.Sub(stopping).Round(time.Millisecond),
		run.first503.Sub(stopped).Round(time.Millisecond), run.reasons)

	startBroker()
	started := time.Now()
	waitRunning(t, run.p, 3*time.Minute, "weft run's /readyz to say ready again", func() bool { return run.poll() == http.StatusOK })
	t.Logf("ready again %s after the broker was back", time.Since(started).Round(time.Millisecond))
	if assigned, ready := held(t, httpAddr); len(assigned) != 2 || len(ready) != 2 {
		t.Fatalf("ready again holding partitions %v (%v restored), want both", assigned, ready)
	}
}
