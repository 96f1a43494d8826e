package kafkatest

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// EnvControl names the command that stops and starts the real Kafka
// cluster of [EnvBrokers] for the tests that take the broker away (broker
// outages): the command's words, separated by spaces, to which a test
// appends one action: "stop" (SIGTERM, a clean shutdown), "kill" (SIGKILL)
// or "start" (start it again on the same data and config, and wait until
// it serves). CI sets it to `bash .ci/kafka.sh control WORKDIR`.
//
// Those tests take the cluster away from every test that shares it: run
// them in a go test of their own (-p 1), not beside other tests.
const EnvControl = "WEFT_KAFKA_CONTROL"

// ControlTimeout bounds one action of the [EnvControl] command.
const ControlTimeout = 3 * time.Minute

// RealKafka reports whether the tests run against the real cluster of
// [EnvBrokers] rather than embedded brokers.
func RealKafka() bool { return strings.TrimSpace(os.Getenv(EnvBrokers)) != "" }

// SkipUnlessControllable skips the calling test when it runs against a
// real cluster that it cannot stop and start ([EnvControl] unset); with
// embedded brokers it returns without skipping (the test controls those
// itself).
func SkipUnlessControllable(t testing.TB) {
	t.Helper()
	if RealKafka() && strings.TrimSpace(os.Getenv(EnvControl)) == "" {
		t.Skip("the test stops and restarts the broker: against the cluster in " + EnvBrokers +
			" it needs " + EnvControl + " (the command that stops and starts it)")
	}
}

// ControlBroker runs the [EnvControl] command with action ("stop", "kill"
// or "start") and fails the test if it fails.
func ControlBroker(t testing.TB, action string) {
	t.Helper()
	words := strings.Fields(os.Getenv(EnvControl))
	if len(words) == 0 {
		t.Fatalf("kafkatest: %s is not set", EnvControl)
	}
	ctx, cancel := context.WithTimeout(context.Background(), ControlTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, words[0], append(words[1:], action)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kafkatest: %s %s: %v\n%s", strings.Join(words, " "), action, err, out)
	}
	t.Logf("kafkatest: broker %s: %s", action, strings.TrimSpace(lastLine(string(out))))
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
