package main

import (
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// The image docker-compose.yml builds from the Dockerfile.

// TestComposeBuild checks that the weft service is built from this
// repository with a multi-stage Dockerfile whose Go image is new enough,
// and that the runtime stage runs the weft binary as a non-root user.
func TestComposeBuild(t *testing.T) {
	_ = version // the Dockerfile sets it with -X main.version: keep the name
	s := loadComposeSetup(t)
	df := s.dockerfile
	final := df.final()
	weft := s.service("weft")
	ctx, _, _ := weft.build()
	if _, err := os.Stat(filepath.Join(repoRoot, ctx, "go.mod")); err != nil {
		t.Errorf("service weft: build context %q is not the module root (no go.mod there)", ctx)
	}
	if len(df.stages) < 2 {
		t.Errorf("%s: want a multi-stage build (a Go build stage and a runtime stage), got %d stage(s)", s.dfPath, len(df.stages))
	}
	var build string
	for _, st := range df.stages[:len(df.stages)-1] {
		for _, run := range st.runs {
			if strings.Contains(run, "go build") && strings.Contains(run, "./cmd/weft") {
				build = run
			}
		}
	}
	if build == "" {
		t.Errorf("%s: no build stage runs `go build ... ./cmd/weft`", s.dfPath)
	} else {
		for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-X main.version="} {
			if !strings.Contains(build, want) {
				t.Errorf("%s: the go build step lacks %s: %s", s.dfPath, want, build)
			}
		}
	}
	// The build image must be at least the Go version go.mod asks for:
	// the golang images set GOTOOLCHAIN=local and would refuse to build.
	for _, st := range df.stages[:len(df.stages)-1] {
		from := strings.Fields(df.expandArgs(st.from))
		for _, f := range from {
			if img, tag, ok := strings.Cut(f, ":"); ok && path.Base(img) == "golang" {
				checkGoVersion(t, tag)
			}
		}
	}
	// The runtime image has no shell: exec form only.
	for _, e := range final.execErrors {
		t.Errorf("%s: %s", s.dfPath, e)
	}
	if len(final.entrypoint) == 0 {
		t.Fatalf("%s: the runtime stage has no ENTRYPOINT", s.dfPath)
	}
	if !slices.Contains(final.copyDests, final.entrypoint[0]) {
		t.Errorf("%s: ENTRYPOINT %s is not a file the runtime stage copies in (COPY destinations: %q)",
			s.dfPath, final.entrypoint[0], final.copyDests)
	}
	user := strings.TrimSpace(final.user)
	if user == "" && !strings.HasSuffix(final.from, ":nonroot") ||
		user == "root" || user == "0" || strings.HasPrefix(user, "0:") || strings.HasPrefix(user, "root:") {
		t.Errorf("%s: the runtime stage runs as root (USER %q, FROM %s); weft needs no privileges", s.dfPath, user, final.from)
	}
	// The seed runs the same binary: it must come from the same Dockerfile.
	if seed := s.service("seed"); seed != nil {
		if _, sdf, ok := seed.build(); ok && filepath.Clean(sdf) != filepath.Clean(s.dfPath) {
			t.Errorf("service seed builds %s, but weft builds %s", sdf, s.dfPath)
		} else if !ok && (seed.Image == "" || seed.Image != weft.Image) {
			t.Errorf("service seed is neither built from %s nor uses weft's image", s.dfPath)
		}
	}
}

// TestComposeImageCommand checks that the image runs `weft run` by default
// and that its ENV sets only global flags.
func TestComposeImageCommand(t *testing.T) {
	s := loadComposeSetup(t)
	final := s.dockerfile.final()
	// docker run <image> with no arguments runs ENTRYPOINT + CMD.
	if len(final.entrypoint) == 0 {
		t.Skip("no ENTRYPOINT (reported by Build)")
	}
	argv := append(slices.Clone(final.entrypoint[1:]), final.cmd...)
	r, problems := resolveCommand(argv, final.env)
	for _, p := range problems {
		t.Errorf("%s: ENTRYPOINT %q + CMD %q: %s", s.dfPath, final.entrypoint, final.cmd, p)
	}
	if r != nil && r.cmd.Name() != "run" {
		t.Errorf("%s: the image runs %q by default; want `weft run`", s.dfPath, r.path)
	}
	// ENV of the image applies to every subcommand: only global flags.
	global := map[string]bool{}
	newRootCommand().PersistentFlags().VisitAll(func(f *pflag.Flag) { global[envName(f.Name)] = true })
	for _, k := range sortedKeys(final.env) {
		if strings.HasPrefix(k, envPrefix) && !global[k] {
			t.Errorf("%s: ENV %s is not the variable of a global flag of weft, and the image runs every subcommand", s.dfPath, k)
		}
	}
}

// checkGoVersion reports a golang image tag older than go.mod's go line.
func checkGoVersion(t *testing.T, tag string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatalf("read go.mod: %v", err)
	}
	var need string
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "go "); ok {
			need = strings.TrimSpace(v)
		}
	}
	have, _, _ := strings.Cut(tag, "-") // 1.26-bookworm -> 1.26
	hv, nv := versionParts(have), versionParts(need)
	if hv == nil || nv == nil {
		t.Errorf("cannot compare the golang image tag %q with go.mod's go %s", tag, need)
		return
	}
	if len(hv) == 2 { // golang:1.26 is the newest 1.26.x
		nv = nv[:min(2, len(nv))]
	}
	if slices.Compare(hv, nv) < 0 {
		t.Errorf("the build stage uses golang:%s, older than go.mod's go %s (the image sets GOTOOLCHAIN=local)", tag, need)
	}
}

func versionParts(v string) []int {
	var out []int
	for _, p := range strings.Split(v, ".") {
		n, err := strconv.Atoi(p)
		if err != nil {
			return nil
		}
		out = append(out, n)
	}
	return out
}
