package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
)

// The Dockerfile parser the compose tests read: the stages and the
// instructions they check.

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
