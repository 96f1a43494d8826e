package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// docBlock is a shell code block of a Markdown file.
type docBlock struct {
	file string // relative to the repository
	line int    // of the opening fence
	text string
}

func (b docBlock) String() string { return fmt.Sprintf("%s:%d", b.file, b.line) }

var fence = regexp.MustCompile("(?ms)^```(sh|bash|shell|console)\n(.*?)^```")

// shellBlocks returns the shell blocks of README.md and docs/*.md.
func shellBlocks(t *testing.T) []docBlock {
	files := []string{"README.md"}
	docs, err := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range docs {
		files = append(files, filepath.Join("docs", filepath.Base(d)))
	}
	var out []docBlock
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(repoRoot, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range fence.FindAllSubmatchIndex(data, -1) {
			out = append(out, docBlock{file: f, line: bytes.Count(data[:m[0]], []byte("\n")) + 1, text: string(data[m[4]:m[5]])})
		}
	}
	return out
}

// docRule says what to do with the block whose text contains match: run
// it in a session (the blocks of a session run in one shell, in the order
// of the document, so that a block can use what an earlier one started),
// or skip it for a reason.
type docRule struct {
	match   string
	session string
	skip    string
}

// docRules classify every shell block of the documentation; a block no
// rule matches fails the test, so that a new example is run or skipped on
// purpose.
var docRules = []docRule{
	{match: "go run ./cmd/weft demo", skip: "the demo runs until Ctrl-C, and go test ./... would run this test again; TestDemo runs the demo with --exit"},
	{match: "go run ./cmd/weft get bank-balances acc-0001\n", skip: "needs the demo of the block above running; the session below runs the same get"},
	{match: "./weft run --cache-max-bytes 0 &", session: "bank"},
	{match: "weft run --brokers kafka-1:9092", skip: "needs a Kafka cluster with SASL and TLS (the TLS and SASL tests in kafkaclient cover the flags)"},
	{match: "curl -s localhost:7070/tables ", session: "bank"},
	{match: "weft replay shop.yaml --into shop-v2", skip: "needs shop.yaml's groups with data and minutes of replay; TestIntegrationReplay* cover these commands"},
	{match: "weft validate testdata/topologies/shop.yaml", session: "shop-offline"},
	{match: "weft run testdata/topologies/shop.yaml &", session: "shop"},
	{match: "docker compose up", skip: "needs Docker; compose_test.go checks docker-compose.yml"},
	{match: "docker compose exec weft", skip: "needs the Docker Compose deployment"},
	{match: "OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4317", skip: "needs an OTLP collector (Jaeger) on localhost:4317 and runs until Ctrl-C"},
	{match: "weft get bank-balances acc-0001 --meta", session: "bank"},
	{match: "weft explain bank-balances acc-0001", session: "bank"},
	{match: "WEFT_KAFKA_BROKERS=127.0.0.1:19092 go test", skip: "runs the whole test suite (this test included) and needs Apache Kafka"},
	{match: "go run ./bench -workload", skip: "benchmarks take minutes and need Apache Kafka"},
}

// docSessions is the order the sessions run in.
var docSessions = []string{"bank", "shop-offline", "shop"}

// Every shell block of README.md and docs/*.md runs as written (or is
// skipped by a rule that says why): the commands against the embedded
// broker that 'weft run' starts, in a directory that mirrors the
// repository. Each session gets its own free ports, set through weft's
// environment variables (WEFT_EMBEDDED_ADDR, ...) rather than by changing
// the commands; only the query API's address in curl commands is rewritten
// from localhost:7070 to the session's port.
func TestDocsCommandsRunAsWritten(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "timeout"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed: %v", tool, err)
		}
	}
	scripts := map[string][]docBlock{}
	used := map[int]bool{}
	for _, b := range shellBlocks(t) {
		var rule *docRule
		for i := range docRules {
			if strings.Contains(b.text, docRules[i].match) {
				if rule != nil {
					t.Errorf("%s: matched by the rules %q and %q", b, rule.match, docRules[i].match)
				}
				rule, used[i] = &docRules[i], true
			}
		}
		switch {
		case rule == nil:
			t.Errorf("%s: no rule in docRules runs or skips this block:\n%s", b, b.text)
		case rule.session != "":
			scripts[rule.session] = append(scripts[rule.session], b)
		}
	}
	for i, r := range docRules {
		if !used[i] {
			t.Errorf("the rule %q matches no block any more: remove it", r.match)
		}
	}
	if t.Failed() {
		return
	}

	// weft is this test binary, which runs weft's main when envAsWeft is
	// set (see TestMain), behind a script named weft: the binary is built
	// once, by go test. In the sessions, the README's own
	// 'go build -o weft ./cmd/weft' copies that script (building in the
	// mirror directory would compile every package of weft again: the
	// build cache is keyed by the packages' paths).
	binDir := t.TempDir()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	wrapper := fmt.Sprintf("#!/bin/sh\n%s=1 exec %q \"$@\"\n", envAsWeft, self)
	if err := os.WriteFile(filepath.Join(binDir, "weft"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range docSessions {
		blocks := scripts[name]
		if len(blocks) == 0 {
			t.Fatalf("session %s has no blocks", name)
		}
		t.Run(name, func(t *testing.T) { runDocSession(t, mirrorRepo(t), binDir, blocks) })
	}
}

// runDocSession runs blocks in one bash (stop at the first failing
// command) in dir, with binDir first on PATH. Lines "kill %1" (the end of
// a session, which the README shows in its first block) run after the
// session's last block; a "curl -sN" (a stream, until Ctrl-C) runs for 3
// seconds.
func runDocSession(t *testing.T, dir, binDir string, blocks []docBlock) {
	brokerAddr, apiAddr := freeAddr(t), freeAddr(t)
	var script, stop strings.Builder
	script.WriteString("set -euo pipefail\n")
	script.WriteString("for_a_while() { timeout 3 \"$@\" || [ $? -eq 124 ]; }\n")
	for _, b := range blocks {
		fmt.Fprintf(&script, "echo '+++ %s' >&2\n", b)
		for _, line := range strings.SplitAfter(b.text, "\n") {
			switch {
			case strings.HasPrefix(line, "kill %1"):
				// The session's end: after all its blocks.
				stop.WriteString(line)
			case strings.HasPrefix(line, "curl -sN "):
				// A stream that runs until Ctrl-C: for a few seconds.
				script.WriteString("for_a_while " + strings.ReplaceAll(line, "localhost:7070", apiAddr))
			case strings.HasPrefix(line, "go build -o weft ./cmd/weft"):
				fmt.Fprintf(&script, "cp %q weft # %s", filepath.Join(binDir, "weft"), line)
			default:
				script.WriteString(strings.ReplaceAll(line, "localhost:7070", apiAddr))
			}
		}
	}
	script.WriteString("echo '+++ the end of the session' >&2\n")
	script.WriteString(stop.String())
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script.String())
	cmd.Dir = dir
	cmd.Env = docEnv(binDir, brokerAddr, apiAddr)
	// The session's background weft goes with it when the test ends.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // anything left behind
	}
	t.Logf("session took %v", time.Since(start).Round(time.Millisecond))
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if testing.Verbose() {
		t.Logf("the session printed:\n%s", out.String())
	}
	for _, b := range blocks {
		checkShownOutputs(t, b, out.String())
	}
}

// explainHeader is the first line weft explain prints.
var explainHeader = regexp.MustCompile(`^[a-z0-9-]+-table \S+: \d+ versions?, newest first$`)

// checkShownOutputs checks the outputs a block shows as comments (lines
// "# {...}" with "..." for what varies, and weft explain's first line)
// against what the session printed.
func checkShownOutputs(t *testing.T, b docBlock, out string) {
	for _, line := range strings.Split(b.text, "\n") {
		shown, ok := strings.CutPrefix(line, "# ")
		if !ok || !strings.HasPrefix(shown, "{") && !explainHeader.MatchString(shown) {
			continue
		}
		parts := strings.Split(shown, "...")
		for i := range parts {
			parts[i] = regexp.QuoteMeta(parts[i])
		}
		re := regexp.MustCompile(strings.Join(parts, ".*"))
		if !re.MatchString(out) {
			t.Errorf("%s shows %s, which the session did not print:\n%s", b, line, out)
		}
	}
}

// docEnv is the environment of a session: this one without weft's and
// OpenTelemetry's settings, with the session's ports.
func docEnv(binDir, brokerAddr, apiAddr string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "WEFT_") || strings.HasPrefix(kv, "OTEL_") || strings.HasPrefix(kv, "PATH=") {
			continue
		}
		env = append(env, kv)
	}
	abs, _ := filepath.Abs(binDir)
	return append(env, "PATH="+abs+string(os.PathListSeparator)+os.Getenv("PATH"),
		"WEFT_EMBEDDED_ADDR="+brokerAddr,
		"WEFT_RUN_HTTP_ADDR="+apiAddr,
		"WEFT_GET_SERVER=http://"+apiAddr,
		"WEFT_EXPLAIN_SERVER=http://"+apiAddr,
	)
}

// mirrorRepo returns a new directory with a symbolic link to every entry
// of the repository (but its VCS data and the files the examples create),
// so that the examples' relative paths work and what they write stays out
// of the repository.
func mirrorRepo(t *testing.T) string {
	dir := t.TempDir()
	entries, err := os.ReadDir(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		switch e.Name() {
		case ".git", "weft", "weft-data":
			continue
		}
		target, err := filepath.Abs(filepath.Join(repoRoot, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, filepath.Join(dir, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
