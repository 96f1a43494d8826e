package main

import (
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// The compose setup every compose test loads: docker-compose.yml and the
// Dockerfile the weft service builds, and what a service's container runs.

type composeSetup struct {
	compose    composeFile
	dockerfile *dockerfile
	dfPath     string // relative to the repository root
}

func loadComposeSetup(t *testing.T) *composeSetup {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, composeFileName))
	if err != nil {
		t.Fatalf("read %s: %v", composeFileName, err)
	}
	s := &composeSetup{}
	if err := yaml.Unmarshal(data, &s.compose); err != nil {
		t.Fatalf("%s is not valid YAML: %v", composeFileName, err)
	}
	for _, name := range []string{"kafka", "jaeger", "weft"} {
		if s.compose.Services[name] == nil {
			t.Fatalf("%s: no service %q (have: %s)", composeFileName, name, strings.Join(sortedKeys(s.compose.Services), ", "))
		}
	}
	_, dfPath, ok := s.compose.Services["weft"].build()
	s.dfPath = dfPath
	if !ok {
		t.Fatalf("%s: service weft has no build section; it must be built from this repository's Dockerfile", composeFileName)
	}
	text, err := os.ReadFile(filepath.Join(repoRoot, s.dfPath))
	if err != nil {
		t.Fatalf("%s: service weft builds from %s, which cannot be read: %v", composeFileName, s.dfPath, err)
	}
	if s.dockerfile, err = parseDockerfile(string(text)); err != nil {
		t.Fatalf("%s: %v", s.dfPath, err)
	}
	return s
}

func (s *composeSetup) service(name string) *composeService { return s.compose.Services[name] }

// containerEnv is the environment a service's container sees: the image's
// ENV (for services built from the Dockerfile), overridden by the compose file.
func (s *composeSetup) containerEnv(name string) map[string]string {
	env := map[string]string{}
	if _, df, ok := s.service(name).build(); ok && filepath.Clean(df) == filepath.Clean(s.dfPath) {
		for k, v := range s.dockerfile.final().env {
			env[k] = v
		}
	}
	for k, v := range s.service(name).env() {
		env[k] = v
	}
	return env
}

// argv is what the service's container runs after the binary: the compose
// command, or else the image's CMD (ENTRYPOINT must be the weft binary).
func (s *composeSetup) argv(t *testing.T, name string) []string {
	t.Helper()
	svc := s.service(name)
	final := s.dockerfile.final()
	entry := final.entrypoint
	if e := words(svc.Entrypoint); e != nil {
		entry = e
	}
	if len(entry) == 0 || path.Base(entry[0]) != "weft" {
		t.Errorf("service %s: the entrypoint %q does not run the weft binary", name, entry)
		return nil
	}
	cmd := final.cmd
	if c := words(svc.Command); c != nil {
		cmd = c
	}
	return append(slices.Clone(entry[1:]), cmd...)
}

// runs resolves the weft command of service name and reports its problems.
func (s *composeSetup) runs(t *testing.T, name, want string) *resolvedCommand {
	t.Helper()
	argv := s.argv(t, name)
	if argv == nil {
		return nil
	}
	r, problems := resolveCommand(argv, s.containerEnv(name))
	for _, p := range problems {
		t.Errorf("service %s: %s", name, p)
	}
	if r != nil && r.cmd.Name() != want {
		t.Errorf("service %s runs %q; want the %q subcommand", name, r.path, want)
	}
	return r
}
