package topotest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// canon turns a value into the generic JSON-like form values are compared
// in: map[string]any, []any, string, bool, nil, int64 for integral numbers
// (150.0 included) and float64 for the others. []byte becomes a string;
// other types (structs of custom codecs) go through encoding/json.
func canon(v any) any {
	switch x := v.(type) {
	case nil, bool, string:
		return x
	case []byte:
		return string(x)
	case int:
		return int64(x)
	case int8:
		return int64(x)
	case int16:
		return int64(x)
	case int32:
		return int64(x)
	case int64:
		return x
	case uint:
		return canonUint(uint64(x))
	case uint8:
		return int64(x)
	case uint16:
		return int64(x)
	case uint32:
		return int64(x)
	case uint64:
		return canonUint(x)
	case float32:
		return canonFloat(float64(x))
	case float64:
		return canonFloat(x)
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return canonFloat(f)
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = canon(e)
		}
		return m
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[fmt.Sprint(k)] = canon(e)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = canon(e)
		}
		return l
	}
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%v", v)
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var g any
	if err := d.Decode(&g); err != nil {
		return string(data)
	}
	return canon(g)
}

func canonUint(u uint64) any {
	if u <= math.MaxInt64 {
		return int64(u)
	}
	return float64(u)
}

func canonFloat(f float64) any {
	if f == math.Trunc(f) && f >= math.MinInt64 && f < math.MaxInt64 {
		return int64(f)
	}
	return f
}

// equal compares two canonical values.
func equal(a, b any) bool { return reflect.DeepEqual(a, b) }

// render prints a canonical value as compact JSON (map keys sorted).
func render(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Sprintf("%v", v)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// maxPaths bounds the differing paths listed under a value diff.
const maxPaths = 10

// valueDiff returns the diff lines of two different canonical values:
// both values, then, for maps and lists, the paths that differ.
func valueDiff(want, got any) []string {
	lines := []string{"  - want " + render(want), "  + got  " + render(got)}
	var paths []string
	diffPaths("", want, got, &paths)
	if len(paths) == 1 && strings.HasPrefix(paths[0], ": ") {
		return lines // the values themselves differ: nothing to add
	}
	if len(paths) > maxPaths {
		n := len(paths) - maxPaths
		paths = append(paths[:maxPaths], fmt.Sprintf("... and %d more", n))
	}
	for _, p := range paths {
		lines = append(lines, "    "+p)
	}
	return lines
}

// diffPaths appends "path: want x, got y" for every place where want and
// got differ, walking into maps and lists of the same length.
func diffPaths(path string, want, got any, out *[]string) {
	if equal(want, got) {
		return
	}
	wm, wok := want.(map[string]any)
	gm, gok := got.(map[string]any)
	if wok && gok {
		keys := map[string]bool{}
		for k := range wm {
			keys[k] = true
		}
		for k := range gm {
			keys[k] = true
		}
		sorted := make([]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		for _, k := range sorted {
			p := joinPath(path, k)
			w, inW := wm[k]
			g, inG := gm[k]
			switch {
			case !inG:
				*out = append(*out, fmt.Sprintf("%s: want %s, got nothing", p, render(w)))
			case !inW:
				*out = append(*out, fmt.Sprintf("%s: unexpected, got %s", p, render(g)))
			default:
				diffPaths(p, w, g, out)
			}
		}
		return
	}
	wl, wok := want.([]any)
	gl, gok := got.([]any)
	if wok && gok && len(wl) == len(gl) {
		for i := range wl {
			diffPaths(fmt.Sprintf("%s[%d]", path, i), wl[i], gl[i], out)
		}
		return
	}
	if wok && gok {
		*out = append(*out, fmt.Sprintf("%s: want %d items, got %d", orRoot(path), len(wl), len(gl)))
		return
	}
	*out = append(*out, fmt.Sprintf("%s: want %s, got %s", path, render(want), render(got)))
}

func orRoot(path string) string {
	if path == "" {
		return "(value)"
	}
	return path
}

// joinPath appends a map key to a path: a.b, or a["odd key"].
func joinPath(path, key string) string {
	plain := key != ""
	for _, r := range key {
		if !(r == '_' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			plain = false
			break
		}
	}
	if !plain {
		return path + "[" + strconv.Quote(key) + "]"
	}
	if path == "" {
		return key
	}
	return path + "." + key
}
