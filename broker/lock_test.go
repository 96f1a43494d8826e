package broker_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weftstream/weft/broker"
)

// TestDataDirLocked checks that a second broker on a data dir in use is
// refused with one sentence naming the dir and the flag, and that Close
// releases the dir.
func TestDataDirLocked(t *testing.T) {
	dir := t.TempDir()
	b1 := startBroker(t, broker.WithDataDir(dir))

	for _, tc := range []struct {
		name string
		opts []broker.Option
		flag string
	}{
		{"default flag", nil, "--data-dir"},
		{"caller's flag", []broker.Option{broker.WithFlagNames("", "--state-dir")}, "--state-dir"},
	} {
		opts := append([]broker.Option{broker.WithAddr("127.0.0.1:0"), broker.WithLogger(nil), broker.WithDataDir(dir)}, tc.opts...)
		b2, err := broker.Start(t.Context(), opts...)
		if err == nil {
			_ = b2.Close()
			t.Fatalf("%s: second Start on %s: got nil error", tc.name, dir)
		}
		want := fmt.Sprintf("the embedded broker's data dir %s is in use by another broker: stop it, or use another %s", dir, tc.flag)
		if err.Error() != want {
			t.Errorf("%s: error = %q, want %q", tc.name, err, want)
		}
		if !errors.Is(err, broker.ErrDataDirInUse) {
			t.Errorf("%s: error %v does not wrap ErrDataDirInUse", tc.name, err)
		}
	}

	// The refused starts left the first broker working.
	produceOne(t, b1.Addrs(), "still-served")

	if err := b1.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	b3 := startBroker(t, broker.WithDataDir(dir))
	produceOne(t, b3.Addrs(), "after-close")
}

// TestDataDirLockedAcrossProcesses checks the lock against a broker in
// another process, and that the lock ends with that process when it is
// killed (no stale lock after kill -9).
func TestDataDirLockedAcrossProcesses(t *testing.T) {
	if dir := os.Getenv("WEFT_BROKER_LOCK_HELPER_DIR"); dir != "" {
		holdDataDir(dir)
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestDataDirLockedAcrossProcesses$")
	cmd.Env = append(os.Environ(), "WEFT_BROKER_LOCK_HELPER_DIR="+dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = stdin.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if sc.Text() == "ready" {
				ready <- nil
				_, _ = io.Copy(io.Discard, stdout)
				return
			}
		}
		ready <- fmt.Errorf("helper exited before it held the dir: %v", sc.Err())
	}()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(testTimeout):
		t.Fatal("helper did not start its broker in time")
	}

	b, err := broker.Start(t.Context(), broker.WithAddr("127.0.0.1:0"), broker.WithLogger(nil), broker.WithDataDir(dir))
	if err == nil {
		_ = b.Close()
		t.Fatalf("Start on %s held by another process: got nil error", dir)
	}
	if !errors.Is(err, broker.ErrDataDirInUse) {
		t.Fatalf("error %v does not wrap ErrDataDirInUse", err)
	}

	// kill -9: the operating system drops the lock with the process.
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	b = startBroker(t, broker.WithDataDir(dir))
	produceOne(t, b.Addrs(), "after-kill")
}

// holdDataDir is the helper process of TestDataDirLockedAcrossProcesses:
// it serves a broker on dir until its stdin closes.
func holdDataDir(dir string) {
	b, err := broker.Start(context.Background(), broker.WithAddr("127.0.0.1:0"),
		broker.WithLogger(slog.New(slog.DiscardHandler)), broker.WithDataDir(dir))
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	_ = b.Close()
	os.Exit(0)
}

func produceOne(t *testing.T, addrs []string, topic string) {
	t.Helper()
	cl := newClient(t, addrs, kgo.AllowAutoTopicCreation())
	if err := cl.ProduceSync(timeoutCtx(t), &kgo.Record{Topic: topic, Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatalf("produce to %s: %v", topic, err)
	}
}
