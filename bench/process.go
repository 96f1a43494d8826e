package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// procRun is what running one engine process measured.
type procRun struct {
	wall   time.Duration // start of the process to its exit
	cpu    time.Duration // its user + system CPU time, all threads
	maxRSS int64         // its peak resident set size, bytes (as it reported it)
	result childResult   // its last JSON line on stdout
}

// runProcess runs cmd to its end and measures it. The process must print
// a JSON object as the last line of its stdout; its stderr is returned in
// errors (the tail of it).
func runProcess(ctx context.Context, cmd *exec.Cmd, timeout time.Duration) (procRun, error) {
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return procRun{}, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	var err error
	select {
	case err = <-waited:
	case <-ctx.Done():
		_ = cmd.Process.Kill() // our own child, by its pid
		<-waited
		err = fmt.Errorf("killed after %v", timeout)
	}
	run := procRun{wall: time.Since(start)}
	run.cpu = childCPU(cmd.ProcessState)
	line := lastJSONLine(stdout.Bytes())
	if line == nil {
		return run, fmt.Errorf("no result line on stdout (%v)%s", err, tail(stderr.Bytes()))
	}
	if jerr := json.Unmarshal(line, &run.result); jerr != nil {
		return run, fmt.Errorf("result line %q: %w", line, jerr)
	}
	run.maxRSS = run.result.PeakRSS
	if run.result.Error != "" {
		return run, fmt.Errorf("%s%s", run.result.Error, tail(stderr.Bytes()))
	}
	if err != nil {
		return run, fmt.Errorf("%w%s", err, tail(stderr.Bytes()))
	}
	return run, nil
}

func lastJSONLine(out []byte) []byte {
	lines := bytes.Split(bytes.TrimSpace(out), []byte("\n"))
	for i := len(lines) - 1; i >= 0; i-- {
		if l := bytes.TrimSpace(lines[i]); bytes.HasPrefix(l, []byte("{")) {
			return l
		}
	}
	return nil
}

// tail is the end of a process's stderr, for an error message.
func tail(stderr []byte) string {
	s := strings.TrimSpace(string(stderr))
	if s == "" {
		return ""
	}
	lines := strings.Split(s, "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return "\n  stderr: " + strings.Join(lines, "\n  stderr: ")
}

// goChild is the command that runs an in-process engine in a process of
// its own: this executable again, with the spec in $WEFT_BENCH_CHILD.
func goChild(ctx context.Context, spec childSpec) (*exec.Cmd, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find this executable: %w", err)
	}
	data, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, self)
	cmd.Env = append(os.Environ(), envChild+"="+string(data))
	return cmd, nil
}
