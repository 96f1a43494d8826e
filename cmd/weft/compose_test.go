package main

// TestCompose checks that docker-compose.yml, the Dockerfile and weft's
// command line agree, without Docker: the services exist, weft is built from
// this repository's Dockerfile, every WEFT_* variable is the fallback of a
// real flag of the command the container runs, the brokers, the OTLP endpoint
// and the seed file point at things the file defines, and the state volume is
// where the image keeps its state.

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"
)

// repoRoot is the repository root as seen from this package's directory.
var repoRoot = filepath.Join("..", "..")

const composeFileName = "docker-compose.yml"

// ---- docker-compose.yml ------------------------------------------------------

type composeFile struct {
	Services map[string]*composeService `yaml:"services"`
	Volumes  map[string]any             `yaml:"volumes"`
}

type composeService struct {
	Image         string         `yaml:"image"`
	Build         any            `yaml:"build"`
	Command       any            `yaml:"command"`
	Entrypoint    any            `yaml:"entrypoint"`
	Environment   any            `yaml:"environment"`
	Ports         []any          `yaml:"ports"`
	Expose        []any          `yaml:"expose"`
	Volumes       []any          `yaml:"volumes"`
	DependsOn     any            `yaml:"depends_on"`
	Healthcheck   map[string]any `yaml:"healthcheck"`
	Profiles      []string       `yaml:"profiles"`
	ContainerName string         `yaml:"container_name"`
	Hostname      string         `yaml:"hostname"`
	Scale         *int           `yaml:"scale"`
	Deploy        struct {
		Replicas *int `yaml:"replicas"`
	} `yaml:"deploy"`
}

var interpolation = regexp.MustCompile(`\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)`)

// interpolate resolves ${VAR:-default} and friends as docker compose would
// with none of the variables set in the host environment: the test checks the
// file as it behaves by default, whatever the machine running it exports.
func interpolate(s string) string {
	return interpolation.ReplaceAllStringFunc(s, func(m string) string {
		if m == "$$" {
			return "$"
		}
		sub := interpolation.FindStringSubmatch(m)
		if sub[2] == ":-" || sub[2] == "-" {
			return sub[3]
		}
		return ""
	})
}

func scalarString(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return interpolate(v)
	default:
		return fmt.Sprint(v)
	}
}

// env is the service's environment: map or list syntax. A variable without a
// value (passed through from the host) is left out.
func (s *composeService) env() map[string]string {
	out := map[string]string{}
	switch e := s.Environment.(type) {
	case map[string]any:
		for k, v := range e {
			if v != nil {
				out[k] = scalarString(v)
			}
		}
	case []any:
		for _, item := range e {
			k, v, ok := strings.Cut(scalarString(item), "=")
			if ok {
				out[k] = v
			}
		}
	}
	return out
}

// words is a command or entrypoint in list or string syntax; nil when unset.
func words(v any) []string {
	switch v := v.(type) {
	case nil:
		return nil
	case string:
		return strings.Fields(interpolate(v))
	case []any:
		out := make([]string, len(v))
		for i, w := range v {
			out[i] = scalarString(w)
		}
		return out
	}
	return nil
}

type portMapping struct {
	published string // host port, "" when only exposed
	target    string // container port
}

// ports are the service's published ports in short ("29092:29092",
// "127.0.0.1:80:8080", "4317/tcp") or long syntax.
func (s *composeService) ports() []portMapping {
	var out []portMapping
	for _, p := range s.Ports {
		switch p := p.(type) {
		case map[string]any:
			out = append(out, portMapping{published: scalarString(p["published"]), target: scalarString(p["target"])})
		default:
			spec, _, _ := strings.Cut(scalarString(p), "/")
			parts := strings.Split(spec, ":")
			m := portMapping{target: parts[len(parts)-1]}
			if len(parts) >= 2 {
				m.published = parts[len(parts)-2]
			}
			out = append(out, m)
		}
	}
	return out
}

// containerPorts are the ports the service offers to other containers:
// published targets and exposed ports.
func (s *composeService) containerPorts() []string {
	var out []string
	for _, p := range s.ports() {
		out = append(out, p.target)
	}
	for _, e := range s.Expose {
		p, _, _ := strings.Cut(scalarString(e), "/")
		out = append(out, p)
	}
	return out
}

type volumeMount struct {
	kind   string // "bind", "volume" (named) or "anonymous"
	source string
	target string
}

func (s *composeService) mounts() []volumeMount {
	var out []volumeMount
	for _, v := range s.Volumes {
		var m volumeMount
		switch v := v.(type) {
		case map[string]any:
			m = volumeMount{kind: scalarString(v["type"]), source: scalarString(v["source"]), target: scalarString(v["target"])}
			if m.kind == "volume" && m.source == "" {
				m.kind = "anonymous"
			}
		default:
			parts := strings.Split(scalarString(v), ":")
			if len(parts) == 1 {
				m = volumeMount{kind: "anonymous", target: parts[0]}
				break
			}
			m = volumeMount{source: parts[0], target: parts[1], kind: "volume"}
			if strings.HasPrefix(m.source, ".") || strings.HasPrefix(m.source, "/") || strings.HasPrefix(m.source, "~") {
				m.kind = "bind"
			}
		}
		out = append(out, m)
	}
	return out
}

// dependsOn maps each dependency to its condition (service_started for the
// list syntax).
func (s *composeService) dependsOn() map[string]string {
	out := map[string]string{}
	switch d := s.DependsOn.(type) {
	case []any:
		for _, name := range d {
			out[scalarString(name)] = "service_started"
		}
	case map[string]any:
		for name, v := range d {
			cond := "service_started"
			if m, ok := v.(map[string]any); ok && m["condition"] != nil {
				cond = scalarString(m["condition"])
			}
			out[name] = cond
		}
	}
	return out
}

// build returns the build context and Dockerfile path relative to the
// repository root, or ok=false when the service is not built.
func (s *composeService) build() (context, dockerfile string, ok bool) {
	switch b := s.Build.(type) {
	case string:
		return interpolate(b), "Dockerfile", true
	case map[string]any:
		context = scalarString(b["context"])
		if context == "" {
			context = "."
		}
		dockerfile = scalarString(b["dockerfile"])
		if dockerfile == "" {
			dockerfile = "Dockerfile"
		}
		return context, filepath.Join(context, dockerfile), true
	}
	return "", "", false
}

// names are the host names other containers reach the service by.
func (s *composeService) names(service string) []string {
	names := []string{service}
	if s.Hostname != "" && s.Hostname != service {
		names = append(names, s.Hostname)
	}
	return names
}

// ---- Dockerfile ------------------------------------------------------------------

type dockerStage struct {
	from       string
	env        map[string]string
	entrypoint []string
	cmd        []string
	volumes    []string
	copyDests  []string
	runs       []string
	user       string
	execErrors []string // ENTRYPOINT / CMD in shell form
}

type dockerfile struct {
	globalArgs map[string]string
	stages     []*dockerStage
}

func (d *dockerfile) final() *dockerStage { return d.stages[len(d.stages)-1] }

// parseDockerfile reads the instructions the test needs: FROM, ARG (before
// the first FROM), ENV, ENTRYPOINT, CMD, VOLUME, COPY, RUN and USER.
func parseDockerfile(text string) (*dockerfile, error) {
	d := &dockerfile{globalArgs: map[string]string{}}
	var logical []string
	var cur strings.Builder
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") {
			continue
		}
		if cont, ok := strings.CutSuffix(strings.TrimRight(line, " \t"), "\\"); ok {
			cur.WriteString(cont + " ")
			continue
		}
		cur.WriteString(line)
		if s := strings.TrimSpace(cur.String()); s != "" {
			logical = append(logical, s)
		}
		cur.Reset()
	}
	for _, line := range logical {
		instr, rest, _ := strings.Cut(line, " ")
		rest = strings.TrimSpace(rest)
		instr = strings.ToUpper(instr)
		if instr == "FROM" {
			d.stages = append(d.stages, &dockerStage{from: rest, env: map[string]string{}})
			continue
		}
		if len(d.stages) == 0 {
			if instr == "ARG" {
				k, v, _ := strings.Cut(rest, "=")
				d.globalArgs[k] = v
			}
			continue
		}
		st := d.stages[len(d.stages)-1]
		switch instr {
		case "ENV":
			kv, err := parseEnvInstruction(rest)
			if err != nil {
				return nil, fmt.Errorf("ENV %s: %w", rest, err)
			}
			for k, v := range kv {
				st.env[k] = v
			}
		case "ENTRYPOINT", "CMD":
			var args []string
			if err := json.Unmarshal([]byte(rest), &args); err != nil {
				st.execErrors = append(st.execErrors, fmt.Sprintf("%s %s is in shell form; the runtime image has no shell, use the exec form [\"...\"]", instr, rest))
				args = strings.Fields(rest)
			}
			if instr == "ENTRYPOINT" {
				st.entrypoint = args
				st.cmd = nil // an ENTRYPOINT resets an inherited CMD
			} else {
				st.cmd = args
			}
		case "VOLUME":
			var vols []string
			if err := json.Unmarshal([]byte(rest), &vols); err != nil {
				vols = strings.Fields(rest)
			}
			st.volumes = append(st.volumes, vols...)
		case "COPY", "ADD":
			f := strings.Fields(rest)
			st.copyDests = append(st.copyDests, f[len(f)-1])
		case "RUN":
			st.runs = append(st.runs, rest)
		case "USER":
			st.user = rest
		}
	}
	if len(d.stages) == 0 {
		return nil, fmt.Errorf("no FROM instruction")
	}
	return d, nil
}

// parseEnvInstruction parses `k=v k2="v 2"` and the legacy `k v`.
func parseEnvInstruction(s string) (map[string]string, error) {
	out := map[string]string{}
	first, _, _ := strings.Cut(s, " ")
	if !strings.Contains(first, "=") {
		k, v, _ := strings.Cut(s, " ")
		out[k] = strings.TrimSpace(v)
		return out, nil
	}
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimSpace(s) {
		k, rest, ok := strings.Cut(s, "=")
		if !ok {
			return nil, fmt.Errorf("%q has no '='", s)
		}
		var v strings.Builder
		quote := byte(0)
		i := 0
		for ; i < len(rest); i++ {
			c := rest[i]
			switch {
			case quote == 0 && (c == ' ' || c == '\t'):
				goto done
			case quote == 0 && (c == '"' || c == '\''):
				quote = c
			case c == quote:
				quote = 0
			case c == '\\' && quote != '\'' && i+1 < len(rest):
				i++
				v.WriteByte(rest[i])
			default:
				v.WriteByte(c)
			}
		}
	done:
		out[k] = v.String()
		s = rest[i:]
	}
	return out, nil
}

var dockerVar = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)`)

// expandArgs substitutes global ARG defaults in a FROM line.
func (d *dockerfile) expandArgs(s string) string {
	return dockerVar.ReplaceAllStringFunc(s, func(m string) string {
		sub := dockerVar.FindStringSubmatch(m)
		name := sub[1] + sub[2]
		if v, ok := d.globalArgs[name]; ok {
			return v
		}
		return m
	})
}

// ---- weft's command line ---------------------------------------------------------

// resolvedCommand is what a container runs: the weft subcommand, with its
// flags set from the arguments and then, as applyEnv does, from the WEFT_*
// variables.
type resolvedCommand struct {
	cmd  *cobra.Command
	args []string // positional arguments
	path string   // "weft produce"
}

func (r *resolvedCommand) flag(name string) string {
	if f := r.cmd.Flags().Lookup(name); f != nil {
		return f.Value.String()
	}
	return ""
}

// resolveCommand finds the weft subcommand that argv (without the binary)
// names, parses its flags and applies the WEFT_* variables of env. Every
// problem is returned: unknown subcommand, unknown flag, a WEFT_* variable
// that is no flag's fallback, a value the flag rejects, wrong arguments.
func resolveCommand(argv []string, env map[string]string) (*resolvedCommand, []string) {
	root := newRootCommand()
	c, rest, err := root.Find(argv)
	if err != nil {
		return nil, []string{fmt.Sprintf("%q does not name a weft subcommand: %v", argv, err)}
	}
	if c == root {
		return nil, []string{fmt.Sprintf("%q does not name a weft subcommand (have: %s)", argv, subcommandNames(root))}
	}
	r := &resolvedCommand{cmd: c, path: c.CommandPath()}
	var problems []string
	if err := c.ParseFlags(rest); err != nil {
		problems = append(problems, fmt.Sprintf("%s %q: %v", r.path, rest, err))
		return r, problems
	}
	byEnv := map[string]*pflag.Flag{}
	c.Flags().VisitAll(func(f *pflag.Flag) {
		name, _ := envNames(c, f)
		byEnv[name] = f
	})
	for _, k := range sortedKeys(env) {
		if !strings.HasPrefix(k, envPrefix) {
			continue
		}
		f, ok := byEnv[k]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s is not the environment variable of any flag of %q (its variables: %s)",
				k, r.path, strings.Join(sortedKeys(byEnv), ", ")))
			continue
		}
		if f.Changed || env[k] == "" {
			continue // the command line wins; empty keeps the default
		}
		if err := c.Flags().Set(f.Name, env[k]); err != nil {
			problems = append(problems, fmt.Sprintf("%s=%q is not a valid --%s: %v", k, env[k], f.Name, err))
		}
	}
	r.args = c.Flags().Args()
	if err := c.ValidateArgs(r.args); err != nil {
		problems = append(problems, fmt.Sprintf("%s %q: %v", r.path, r.args, err))
	}
	return r, problems
}

func subcommandNames(root *cobra.Command) string {
	var names []string
	for _, c := range root.Commands() {
		names = append(names, c.Name())
	}
	return strings.Join(names, ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// ---- the test ----------------------------------------------------------------------

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

type listener struct{ name, host, port string }

// parseListeners parses a Kafka listener list: NAME://host:port,...
func parseListeners(s string) ([]listener, error) {
	var out []listener
	for _, item := range strings.Split(s, ",") {
		name, addr, ok := strings.Cut(strings.TrimSpace(item), "://")
		if !ok {
			return nil, fmt.Errorf("%q is not NAME://host:port", item)
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("%q: %v", item, err)
		}
		out = append(out, listener{name, host, port})
	}
	return out, nil
}

func parseProtocolMap(s string) map[string]string {
	out := map[string]string{}
	for _, item := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(item), ":")
		out[k] = v
	}
	return out
}

func TestCompose(t *testing.T) {
	_ = version // the Dockerfile sets it with -X main.version: keep the name

	s := loadComposeSetup(t)
	df := s.dockerfile
	final := df.final()
	weft, kafka, jaeger := s.service("weft"), s.service("kafka"), s.service("jaeger")
	kenv := kafka.env()

	t.Run("Build", func(t *testing.T) {
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
	})

	t.Run("ImageCommand", func(t *testing.T) {
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
	})

	t.Run("WeftService", func(t *testing.T) {
		r := s.runs(t, "weft", "run")
		if r == nil {
			return
		}
		replicas := 1
		if weft.Deploy.Replicas != nil {
			replicas = *weft.Deploy.Replicas
		} else if weft.Scale != nil {
			replicas = *weft.Scale
		}
		if replicas < 2 {
			t.Errorf("service weft: deploy.replicas is %d; want at least 2 to show the consumer group spreading the partitions", replicas)
		}
		if parts, err := strconv.Atoi(r.flag("partitions")); err == nil && parts > 0 && replicas > parts {
			t.Errorf("service weft: %d replicas for %d partitions: %d replicas would idle", replicas, parts, replicas-parts)
		}
		if weft.ContainerName != "" {
			t.Errorf("service weft: container_name %q stops it from running more than one replica", weft.ContainerName)
		}
		for _, p := range weft.ports() {
			if p.published != "" {
				t.Errorf("service weft: publishes host port %s, which only one replica can bind", p.published)
			}
		}
		// Pebble state: one directory per replica, where the image keeps it.
		imageDir := final.env["WEFT_STATE_DIR"]
		if imageDir == "" {
			t.Errorf("%s: the runtime stage sets no WEFT_STATE_DIR", s.dfPath)
		} else if !slices.Contains(final.volumes, imageDir) {
			t.Errorf("%s: WEFT_STATE_DIR=%s is not declared a VOLUME (VOLUME %q)", s.dfPath, imageDir, final.volumes)
		}
		stateDir := r.flag("state-dir")
		if stateDir != imageDir {
			t.Errorf("service weft: state directory %s differs from the image's WEFT_STATE_DIR %s", stateDir, imageDir)
		}
		found := false
		for _, m := range weft.mounts() {
			if path.Clean(m.target) != path.Clean(stateDir) {
				continue
			}
			found = true
			if m.kind != "anonymous" {
				t.Errorf("service weft: the state directory %s is a %s mount (%s); replicas would share one Pebble directory, use an anonymous volume",
					stateDir, m.kind, m.source)
			}
		}
		if !found {
			t.Errorf("service weft: no volume mounted at the state directory %s (volumes: %v)", stateDir, weft.Volumes)
		}
		checkDependsOnKafka(t, "weft", weft, kafka)
	})

	t.Run("Kafka", func(t *testing.T) {
		for _, k := range []string{"KAFKA_NODE_ID", "KAFKA_PROCESS_ROLES", "KAFKA_LISTENERS", "KAFKA_ADVERTISED_LISTENERS",
			"KAFKA_CONTROLLER_QUORUM_VOTERS", "KAFKA_CONTROLLER_LISTENER_NAMES", "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
			"KAFKA_INTER_BROKER_LISTENER_NAME"} {
			if kenv[k] == "" {
				t.Errorf("service kafka: %s is not set", k)
			}
		}
		roles := strings.Split(strings.ReplaceAll(kenv["KAFKA_PROCESS_ROLES"], " ", ""), ",")
		if !slices.Contains(roles, "broker") || !slices.Contains(roles, "controller") {
			t.Errorf("service kafka: KAFKA_PROCESS_ROLES=%q; a single KRaft node needs broker,controller", kenv["KAFKA_PROCESS_ROLES"])
		}
		listeners, err := parseListeners(kenv["KAFKA_LISTENERS"])
		if err != nil {
			t.Fatalf("service kafka: KAFKA_LISTENERS: %v", err)
		}
		advertised, err := parseListeners(kenv["KAFKA_ADVERTISED_LISTENERS"])
		if err != nil {
			t.Fatalf("service kafka: KAFKA_ADVERTISED_LISTENERS: %v", err)
		}
		protocols := parseProtocolMap(kenv["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"])
		bind := map[string]string{} // listener name -> port
		for _, l := range listeners {
			bind[l.name] = l.port
			if protocols[l.name] == "" {
				t.Errorf("service kafka: listener %s has no entry in KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", l.name)
			}
		}
		controller := kenv["KAFKA_CONTROLLER_LISTENER_NAMES"]
		for _, name := range []string{controller, kenv["KAFKA_INTER_BROKER_LISTENER_NAME"]} {
			if _, ok := bind[name]; !ok && name != "" {
				t.Errorf("service kafka: listener %s is not in KAFKA_LISTENERS=%s", name, kenv["KAFKA_LISTENERS"])
			}
		}
		published := map[string]string{} // host port -> container port
		for _, p := range kafka.ports() {
			if p.published != "" {
				published[p.published] = p.target
			}
		}
		var internal, external []string
		for _, a := range advertised {
			port, ok := bind[a.name]
			switch {
			case !ok:
				t.Errorf("service kafka: advertised listener %s is not in KAFKA_LISTENERS", a.name)
			case a.name == controller:
				t.Errorf("service kafka: the controller listener %s must not be advertised", a.name)
			case slices.Contains(kafka.names("kafka"), a.host):
				internal = append(internal, net.JoinHostPort(a.host, a.port))
				if a.port != port {
					t.Errorf("service kafka: %s advertises %s:%s but listens on port %s", a.name, a.host, a.port, port)
				}
			case a.host == "localhost" || a.host == "127.0.0.1":
				external = append(external, net.JoinHostPort(a.host, a.port))
				if published[a.port] != port {
					t.Errorf("service kafka: %s advertises %s:%s for the host, but host port %s is not published to the listener's port %s (ports: %v)",
						a.name, a.host, a.port, a.port, port, kafka.Ports)
				}
			default:
				t.Errorf("service kafka: advertised listener %s://%s:%s is neither the service (%s) nor localhost",
					a.name, a.host, a.port, strings.Join(kafka.names("kafka"), ", "))
			}
		}
		if len(internal) == 0 {
			t.Errorf("service kafka: no advertised listener for other containers (host %s)", strings.Join(kafka.names("kafka"), " or "))
			internal = []string{"none"}
		}
		if len(external) == 0 {
			t.Errorf("service kafka: no advertised listener for the host (localhost), so `weft get --brokers localhost:...` cannot work")
		}

		// KRaft quorum: this node, on the controller listener.
		for _, v := range strings.Split(kenv["KAFKA_CONTROLLER_QUORUM_VOTERS"], ",") {
			id, addr, _ := strings.Cut(v, "@")
			host, port, err := net.SplitHostPort(addr)
			if err != nil || id != kenv["KAFKA_NODE_ID"] || !slices.Contains(kafka.names("kafka"), host) || port != bind[controller] {
				t.Errorf("service kafka: KAFKA_CONTROLLER_QUORUM_VOTERS=%q; want %s@kafka:%s (KAFKA_NODE_ID, the service, the %s listener's port)",
					kenv["KAFKA_CONTROLLER_QUORUM_VOTERS"], kenv["KAFKA_NODE_ID"], bind[controller], controller)
			}
		}
		if id := kenv["CLUSTER_ID"]; id != "" {
			if b, err := base64.RawURLEncoding.Strict().DecodeString(id); err != nil || len(b) != 16 {
				t.Errorf("service kafka: CLUSTER_ID %q is not a base64url UUID (16 bytes); generate one with kafka-storage.sh random-uuid", id)
			}
		}
		// One broker: no internal topic can have more replicas.
		for _, k := range sortedKeys(kenv) {
			if strings.HasPrefix(k, "KAFKA_") && (strings.HasSuffix(k, "_REPLICATION_FACTOR") || strings.HasSuffix(k, "_MIN_ISR") || strings.HasSuffix(k, "_INSYNC_REPLICAS")) {
				if n, err := strconv.Atoi(kenv[k]); err != nil || n > 1 {
					t.Errorf("service kafka: %s=%s on a single broker; want 1", k, kenv[k])
				}
			}
		}
		for _, k := range []string{"KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"} {
			if kenv[k] == "" {
				t.Errorf("service kafka: %s is not set; its default (3) cannot be met by one broker", k)
			}
		}

		// The healthcheck weft waits for asks the broker itself.
		test := words(kafka.Healthcheck["test"])
		joined := strings.Join(test, " ")
		if !strings.Contains(joined, "/opt/kafka/bin/kafka-broker-api-versions.sh") {
			t.Errorf("service kafka: the healthcheck %q does not run /opt/kafka/bin/kafka-broker-api-versions.sh", test)
		}
		if i := slices.Index(test, "--bootstrap-server"); i < 0 || i+1 >= len(test) {
			t.Errorf("service kafka: the healthcheck %q has no --bootstrap-server", test)
		} else if _, port, err := net.SplitHostPort(test[i+1]); err != nil || !slices.Contains(slices.Collect(maps.Values(bind)), port) {
			t.Errorf("service kafka: the healthcheck asks %s, which is no listener of the broker (%s)", test[i+1], kenv["KAFKA_LISTENERS"])
		}

		// weft (and the seed) reach the broker on its internal listener, in
		// plain text unless they are told to use TLS or SASL.
		for _, name := range []string{"weft", "seed"} {
			if s.service(name) == nil {
				continue
			}
			env := s.containerEnv(name)
			brokers := env["WEFT_BROKERS"]
			if brokers == "" {
				t.Errorf("service %s: WEFT_BROKERS is not set, so weft would start its embedded broker instead of using kafka", name)
				continue
			}
			for _, b := range strings.Split(brokers, ",") {
				if !slices.Contains(internal, strings.TrimSpace(b)) {
					t.Errorf("service %s: WEFT_BROKERS=%s: %s is not the kafka service's internal advertised listener (%s)",
						name, brokers, b, strings.Join(internal, ", "))
				}
			}
			if env["WEFT_TLS"] == "" && env["WEFT_SASL_MECHANISM"] == "" {
				for _, a := range advertised {
					if slices.Contains(strings.Split(brokers, ","), net.JoinHostPort(a.host, a.port)) && protocols[a.name] != "PLAINTEXT" {
						t.Errorf("service %s: listener %s speaks %s, but neither WEFT_TLS nor WEFT_SASL_MECHANISM is set", name, a.name, protocols[a.name])
					}
				}
			}
			if p, ok := env["WEFT_PARTITIONS"]; ok && kenv["KAFKA_NUM_PARTITIONS"] != "" && kenv["KAFKA_NUM_PARTITIONS"] != p {
				t.Errorf("service %s: WEFT_PARTITIONS=%s but kafka's KAFKA_NUM_PARTITIONS=%s: topics created either way would not be co-partitioned",
					name, p, kenv["KAFKA_NUM_PARTITIONS"])
			}
			if rf, err := strconv.Atoi(env["WEFT_REPLICATION_FACTOR"]); err == nil && rf > 1 {
				t.Errorf("service %s: WEFT_REPLICATION_FACTOR=%d with a single broker", name, rf)
			}
		}
	})

	t.Run("Tracing", func(t *testing.T) {
		env := s.containerEnv("weft")
		if env["OTEL_SERVICE_NAME"] != "weft" {
			t.Errorf("service weft: OTEL_SERVICE_NAME=%q; the docs tell users to look for service \"weft\" in Jaeger", env["OTEL_SERVICE_NAME"])
		}
		samplers := []string{"always_on", "always_off", "traceidratio", "parentbased_always_on", "parentbased_always_off", "parentbased_traceidratio"}
		if v := env["OTEL_TRACES_SAMPLER"]; v != "" && !slices.Contains(samplers, v) {
			t.Errorf("service weft: OTEL_TRACES_SAMPLER=%q is not one of %s", v, strings.Join(samplers, ", "))
		}
		for _, name := range []string{"weft", "seed"} {
			if s.service(name) == nil {
				continue
			}
			env := s.containerEnv(name)
			endpoint := env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]
			if endpoint == "" {
				endpoint = env["OTEL_EXPORTER_OTLP_ENDPOINT"]
			}
			if endpoint == "" {
				t.Errorf("service %s: OTEL_EXPORTER_OTLP_ENDPOINT is not set; traces would go to localhost", name)
				continue
			}
			u, err := url.Parse(endpoint)
			if err != nil || u.Hostname() == "" || u.Port() == "" {
				t.Errorf("service %s: OTEL_EXPORTER_OTLP_ENDPOINT=%q is not scheme://host:port", name, endpoint)
				continue
			}
			if !slices.Contains(jaeger.names("jaeger"), u.Hostname()) {
				t.Errorf("service %s: OTEL_EXPORTER_OTLP_ENDPOINT=%s does not point at the jaeger service", name, endpoint)
			}
			protocol := env["OTEL_EXPORTER_OTLP_PROTOCOL"]
			if protocol == "" {
				protocol = "http/protobuf" // the specification's default
			}
			want := map[string]string{"grpc": "4317", "http/protobuf": "4318", "http/json": "4318"}[protocol]
			switch {
			case want == "":
				t.Errorf("service %s: OTEL_EXPORTER_OTLP_PROTOCOL=%q is not grpc, http/protobuf or http/json", name, protocol)
			case u.Port() != want:
				t.Errorf("service %s: OTEL_EXPORTER_OTLP_ENDPOINT=%s uses port %s, but Jaeger takes OTLP over %s on %s", name, endpoint, u.Port(), protocol, want)
			case !slices.Contains(jaeger.containerPorts(), u.Port()):
				t.Errorf("service %s: OTEL_EXPORTER_OTLP_ENDPOINT=%s: the jaeger service does not expose port %s (ports: %v)", name, endpoint, u.Port(), jaeger.Ports)
			}
			if u.Scheme == "https" {
				t.Errorf("service %s: OTEL_EXPORTER_OTLP_ENDPOINT=%s uses https; Jaeger all-in-one listens in plain text", name, endpoint)
			}
		}
		jenv := jaeger.env()
		if v, ok := jenv["COLLECTOR_OTLP_ENABLED"]; ok && v != "true" {
			t.Errorf("service jaeger: COLLECTOR_OTLP_ENABLED=%q; the OTLP receiver must be on", v)
		}
		if !slices.Contains(jaeger.containerPorts(), "16686") {
			t.Errorf("service jaeger: the UI port 16686 is not published (ports: %v)", jaeger.Ports)
		}
	})

	t.Run("Seed", func(t *testing.T) {
		seed := s.service("seed")
		if seed == nil {
			t.Fatalf("%s: no service seed", composeFileName)
		}
		if !slices.Contains(seed.Profiles, "seed") {
			t.Errorf("service seed: profiles %q lack \"seed\"; without it `docker compose up` would produce the events on every start", seed.Profiles)
		}
		checkDependsOnKafka(t, "seed", seed, kafka)
		r := s.runs(t, "seed", "produce")
		if r == nil || len(r.args) != 2 {
			return
		}
		topic, file := r.args[0], r.args[1]
		if run, _ := resolveCommand(s.argv(t, "weft"), s.containerEnv("weft")); run != nil && run.flag("input") != "" && topic != run.flag("input") {
			t.Errorf("service seed produces to %q, but weft consumes --input %q", topic, run.flag("input"))
		}
		host := ""
		for _, m := range seed.mounts() {
			rel, err := filepath.Rel(m.target, file)
			if m.kind == "bind" && err == nil && !strings.HasPrefix(rel, "..") {
				host = filepath.Join(m.source, rel)
			}
		}
		if host == "" {
			t.Errorf("service seed: %s is not inside any bind mount (volumes: %v)", file, seed.Volumes)
			return
		}
		f, err := os.Open(filepath.Join(repoRoot, host))
		if err != nil {
			t.Errorf("service seed: produces %s, which is %s in the repository: %v", file, host, err)
			return
		}
		defer f.Close()
		if !strings.HasPrefix(filepath.Clean(host), filepath.Join("testdata", "bank")) {
			t.Errorf("service seed: produces %s (%s); want an event file of testdata/bank", file, host)
		}
		if key := r.flag("key-field"); key != "" {
			sc := bufio.NewScanner(f)
			sc.Buffer(nil, 1<<20)
			var first map[string]any
			if !sc.Scan() || json.Unmarshal(sc.Bytes(), &first) != nil {
				t.Errorf("service seed: the first line of %s is not a JSON object", host)
			} else if _, ok := first[key].(string); !ok {
				t.Errorf("service seed: --key-field %s, but the first event of %s has no string field %q: %s", key, host, key, sc.Text())
			}
		}
	})

	t.Run("Mounts", func(t *testing.T) {
		for _, name := range sortedKeys(s.compose.Services) {
			for _, m := range s.service(name).mounts() {
				switch m.kind {
				case "bind":
					if filepath.IsAbs(m.source) || strings.HasPrefix(m.source, "~") {
						t.Errorf("service %s: bind mount %s is outside the repository", name, m.source)
					} else if _, err := os.Stat(filepath.Join(repoRoot, m.source)); err != nil {
						t.Errorf("service %s: bind mount source %s does not exist in the repository", name, m.source)
					}
				case "volume":
					if _, ok := s.compose.Volumes[m.source]; !ok {
						t.Errorf("service %s: named volume %s is not declared under the top-level volumes", name, m.source)
					}
				}
			}
		}
	})

	t.Run("Secrets", func(t *testing.T) {
		for _, name := range sortedKeys(s.compose.Services) {
			raw := s.service(name).Environment
			var literal bool
			switch e := raw.(type) {
			case map[string]any:
				v, ok := e["WEFT_SASL_PASSWORD"].(string)
				literal = ok && v != "" && !strings.HasPrefix(v, "${")
			case []any:
				for _, item := range e {
					k, v, _ := strings.Cut(fmt.Sprint(item), "=")
					literal = literal || k == "WEFT_SASL_PASSWORD" && v != "" && !strings.HasPrefix(v, "${")
				}
			}
			if literal {
				t.Errorf("service %s: WEFT_SASL_PASSWORD is written in %s; pass it from the host environment (${WEFT_SASL_PASSWORD}) or a secret", name, composeFileName)
			}
		}
	})
}

func checkDependsOnKafka(t *testing.T, name string, svc, kafka *composeService) {
	t.Helper()
	if cond := svc.dependsOn()["kafka"]; cond != "service_healthy" {
		t.Errorf("service %s: depends_on kafka with condition %q; want service_healthy so that weft starts once the broker answers", name, cond)
	}
	if len(words(kafka.Healthcheck["test"])) == 0 {
		t.Errorf("service %s waits for kafka to be healthy, but kafka has no healthcheck", name)
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
