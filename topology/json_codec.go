package topology

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"strconv"
	"sync"
	"unicode/utf8"

	sjson "github.com/segmentio/encoding/json"
	"github.com/valyala/fastjson"
)

// encodeJSON encodes v as encoding/json's Marshal does (the same bytes: map
// keys sorted, <, > and & escaped, invalid UTF-8 replaced; FuzzJSONEncode
// holds it to that), with segmentio/encoding, which is about three times
// faster on the generic values tables hold and allocates once.
func encodeJSON(v any) ([]byte, error) {
	b, err := sjson.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("json codec: %w", err)
	}
	return b, nil
}

// appendJSON appends the bytes of encodeJSON(v) to b (Marshal is this
// Append into a pooled buffer, then a copy).
func appendJSON(b []byte, v any) ([]byte, error) {
	out, err := sjson.Append(b, v, sjson.EscapeHTML|sjson.SortMapKeys)
	if err != nil {
		return b, fmt.Errorf("json codec: %w", err)
	}
	return out, nil
}

// jsonDecoders are the decoders of decodeJSON (a fastjson.Parser is
// reused and not safe for concurrent use).
var jsonDecoders = sync.Pool{New: func() any {
	return &jsonDecoder{keys: map[string]string{}, seed: maphash.MakeSeed()}
}}

// jsonDecoder is a parser and the object keys it has seen: the records of
// a stream have the same few field names, and a key found here costs no
// allocation (a record of four fields made four key strings before).
//
// It also keeps the short string values it has seen, in a direct-mapped
// cache (a value replaces the one in its slot): the values of a field such
// as an event type or an account id repeat, and one found here costs
// neither the string nor the interface that holds it.
type jsonDecoder struct {
	p    fastjson.Parser
	keys map[string]string
	seed maphash.Seed
	strs [jsonStringSlots]any // strings
}

const (
	// jsonStringSlots is the size of a decoder's string value cache.
	jsonStringSlots = 1024
	// maxJSONString is the longest string value the cache keeps.
	maxJSONString = 32
)

// str returns the string value b, from the cache if it is there.
func (d *jsonDecoder) str(b []byte) any {
	if len(b) > maxJSONString {
		return string(b)
	}
	e := &d.strs[maphash.Bytes(d.seed, b)%jsonStringSlots]
	if s, ok := (*e).(string); ok && s == string(b) { // no allocation for the comparison
		return *e
	}
	*e = string(b)
	return *e
}

// maxJSONKeys bounds the keys a decoder keeps (inputs with ever new field
// names, e.g. maps keyed by ids, allocate past it as without the table).
const maxJSONKeys = 256

// key returns k as a string, from the decoder's keys if it is there.
func (d *jsonDecoder) key(k []byte) string {
	if s, ok := d.keys[string(k)]; ok { // no allocation for the lookup
		return s
	}
	s := string(k)
	if len(d.keys) < maxJSONKeys {
		d.keys[s] = s
	}
	return s
}

// decodeJSON decodes one JSON value as the json codec promises: objects as
// map[string]any, arrays as []any, integers that fit as int64, other
// numbers as float64, strings, bools and nil. It gives the same value as
// decodeJSONStd (encoding/json with UseNumber, then normalizeNumbers; a
// fuzz test holds them to it) at a fraction of the cost: fastjson parses
// without reflection into a tree it reuses. Input fastjson parses more
// leniently than encoding/json (its number syntax, invalid UTF-8, which
// encoding/json replaces) is left to decodeJSONStd, as is every error, so
// that messages stay encoding/json's.
func decodeJSON(data []byte) (any, error) {
	d := jsonDecoders.Get().(*jsonDecoder)
	defer jsonDecoders.Put(d)
	v, err := d.p.ParseBytes(data)
	if err != nil {
		return decodeJSONStd(data)
	}
	out, ok := d.fromFastJSON(v, 0)
	if !ok {
		return decodeJSONStd(data)
	}
	return out, nil
}

// maxJSONDepth is how deep fromFastJSON follows nesting before it leaves
// the value to encoding/json (which allows 10000 levels).
const maxJSONDepth = 512

// fromFastJSON converts a parsed value; ok is false where decodeJSONStd
// must decide.
func (d *jsonDecoder) fromFastJSON(v *fastjson.Value, depth int) (any, bool) {
	if depth > maxJSONDepth {
		return nil, false
	}
	switch v.Type() {
	case fastjson.TypeObject:
		o, _ := v.Object()
		m := make(map[string]any, o.Len())
		ok := true
		o.Visit(func(k []byte, e *fastjson.Value) {
			if !ok {
				return
			}
			if !plainString(k) {
				ok = false
				return
			}
			var x any
			if x, ok = d.fromFastJSON(e, depth+1); ok {
				m[d.key(k)] = x
			}
		})
		return m, ok
	case fastjson.TypeArray:
		a, _ := v.Array()
		out := make([]any, len(a))
		for i, e := range a {
			x, ok := d.fromFastJSON(e, depth+1)
			if !ok {
				return nil, false
			}
			out[i] = x
		}
		return out, true
	case fastjson.TypeString:
		b, _ := v.StringBytes()
		if !plainString(b) {
			return nil, false
		}
		return d.str(b), true
	case fastjson.TypeNumber:
		raw := v.String() // the number as it was written
		if !isJSONNumber(raw) {
			return nil, false
		}
		if i, err := strconv.ParseInt(raw, 10, 64); err == nil {
			return i, true
		}
		f, err := strconv.ParseFloat(raw, 64)
		if err != nil {
			return nil, false // out of range: encoding/json's error
		}
		return f, true
	case fastjson.TypeTrue:
		return true, true
	case fastjson.TypeFalse:
		return false, true
	case fastjson.TypeNull:
		return nil, true
	}
	return nil, false
}

// plainString reports whether a string as fastjson unescaped it is
// certainly what encoding/json makes of it: valid UTF-8 without control
// characters or backslashes (fastjson keeps what it cannot unescape, e.g. a
// lone surrogate, as it was written, and does not reject raw control
// characters). Other strings are left to encoding/json.
func plainString(b []byte) bool {
	ascii := true
	for _, c := range b {
		if c < 0x20 || c == '\\' {
			return false
		}
		if c >= utf8.RuneSelf {
			ascii = false
		}
	}
	return ascii || utf8.Valid(b)
}

// isJSONNumber reports whether s is a number in JSON's grammar:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func isJSONNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == start {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == start {
			return false
		}
	}
	return i == len(s)
}

// decodeJSONStd is the json codec's decoding with encoding/json: the
// reference decodeJSON must agree with, and its path for whatever fastjson
// does not settle.
func decodeJSONStd(data []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, fmt.Errorf("json codec: %w", err)
	}
	if d.More() {
		return nil, fmt.Errorf("json codec: data after the JSON value")
	}
	return normalizeNumbers(v), nil
}
