package topology

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
)

// int64Codec encodes counts as decimal text (goka's codec.Int64).
type int64Codec = codec.Int64

// JSON encodes any value as JSON and decodes JSON into the generic Go
// values of encoding/json (map[string]any, []any, string, float64 for
// non-integers, int64 for integers, bool, nil).
type JSON struct{}

// Encode encodes v as JSON.
func (JSON) Encode(v any) ([]byte, error) { return encodeJSON(v) }

// Decode decodes JSON, keeping integers as int64.
func (JSON) Decode(data []byte) (any, error) { return decodeJSON(data) }

// AppendEncode appends the encoding of v to b (the bytes Encode returns).
// A table's envelope codec (processors.EnvelopeCodec) uses it to encode
// the value into the envelope it writes.
func (JSON) AppendEncode(b []byte, v any) ([]byte, error) { return appendJSON(b, v) }

// normalizeNumbers turns json.Number into int64 when it is an integer and
// float64 otherwise.
func normalizeNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = normalizeNumbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = normalizeNumbers(e)
		}
	}
	return v
}

// codecs are the codecs topology files name.
var codecs = map[string]func() goka.Codec{
	"json":   func() goka.Codec { return JSON{} },
	"string": func() goka.Codec { return new(codec.String) },
	"bytes":  func() goka.Codec { return new(codec.Bytes) },
	"int64":  func() goka.Codec { return new(codec.Int64) },
}

// CodecByName returns the codec called name (json, string, bytes, int64).
func CodecByName(name string) (goka.Codec, error) {
	if f, ok := codecs[name]; ok {
		return f(), nil
	}
	return nil, fmt.Errorf("unknown codec %q (known: %s)", name, strings.Join(CodecNames(), ", "))
}

// CodecNames lists the codec names, sorted.
func CodecNames() []string {
	names := make([]string, 0, len(codecs))
	for n := range codecs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
