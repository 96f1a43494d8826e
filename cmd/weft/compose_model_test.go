package main

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
)

// The docker-compose.yml model the compose tests read: services, their
// environment, ports, mounts, dependencies and build, with variables
// interpolated as docker compose would.

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
