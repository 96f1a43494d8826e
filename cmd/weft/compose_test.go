package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The TestCompose tests (compose*_test.go) check that docker-compose.yml,
// the Dockerfile and weft's command line agree, without Docker: the services
// exist, weft is built from this repository's Dockerfile, every WEFT_*
// variable is the fallback of a real flag of the command the container
// runs, the brokers, the OTLP endpoint and the seed file point at things the
// file defines, and the state volume is where the image keeps its state.
// This file checks the services weft and seed, tracing, mounts and secrets.

// TestComposeWeftService checks the weft service: replicas that share the
// partitions, no published port, one Pebble directory per replica where the
// image keeps it, and a start once Kafka is healthy.
func TestComposeWeftService(t *testing.T) {
	s := loadComposeSetup(t)
	final := s.dockerfile.final()
	weft, kafka := s.service("weft"), s.service("kafka")
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
}

// TestComposeTracing checks that weft and the seed send their traces to
// the jaeger service over OTLP, on the port of the protocol they use.
func TestComposeTracing(t *testing.T) {
	s := loadComposeSetup(t)
	jaeger := s.service("jaeger")
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
}

// TestComposeSeed checks that the seed service produces an event file of
// the repository to the topic weft consumes, and only when asked to.
func TestComposeSeed(t *testing.T) {
	s := loadComposeSetup(t)
	kafka := s.service("kafka")
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
}

// TestComposeMounts checks that bind mounts are inside the repository and
// named volumes are declared.
func TestComposeMounts(t *testing.T) {
	s := loadComposeSetup(t)
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
}

// TestComposeSecrets checks that no SASL password is written in the
// compose file.
func TestComposeSecrets(t *testing.T) {
	s := loadComposeSetup(t)
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
}
