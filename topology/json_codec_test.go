package topology

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzJSONDecode holds the json codec's fast decoding to encoding/json's
// (decodeJSONStd, the reference): the same value for every input, and an
// error exactly where encoding/json gives one.
func FuzzJSONDecode(f *testing.F) {
	for _, s := range []string{
		`{"type":"Deposited","account":"acc-1","amount":150,"at":"2026-01-01T00:00:00Z"}`,
		`{"a":1.5,"b":-0,"c":1e3,"d":12345678901234567890,"e":[true,false,null,"x\u00e9\n"]}`,
		`[]`, `{}`, `"s"`, `0`, `-1.25e-7`, ` 7 `, `{"a":1}]`, `{"a":1}{`, `1.`, `01`, `.5`, `+1`, `1e`, `NaN`, `inf`,
		`{"a":1,"a":2}`, "\"\xff\"", "{\"\xfe\":1}", "\"a\tb\"", `"\x"`, `"\ud800"`, `[1,]`, `{"a" 1}`, ``, `   `,
		`1e400`, `-9223372036854775808`, `9223372036854775808`, `[[[[[]]]]]`, `{"k":{"n":{"m":[1,{"z":null}]}}}`,
	} {
		f.Add([]byte(s))
	}
	if b, err := os.ReadFile("../testdata/bank/events.jsonl"); err == nil {
		for _, line := range strings.SplitN(string(b), "\n", 20)[:19] {
			f.Add([]byte(line))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, gerr := decodeJSON(data)
		want, werr := decodeJSONStd(data)
		if (gerr != nil) != (werr != nil) {
			t.Fatalf("decode %q: error %v, encoding/json's %v", data, gerr, werr)
		}
		if gerr != nil {
			if gerr.Error() != werr.Error() {
				t.Fatalf("decode %q: error %q, want encoding/json's %q", data, gerr, werr)
			}
			return
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Fatalf("decode %q: differs from encoding/json (-want +got):\n%s", data, d)
		}
	})
}

// BenchmarkJSONDecode compares the fast decoding with encoding/json's on
// the bank events.
func BenchmarkJSONDecode(b *testing.B) {
	raw, err := os.ReadFile("../testdata/bank/events.jsonl")
	if err != nil {
		b.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	for _, c := range []struct {
		name string
		f    func([]byte) (any, error)
	}{{"fastjson", decodeJSON}, {"encoding-json", decodeJSONStd}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := c.f([]byte(lines[i%len(lines)])); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// FuzzJSONEncode holds the json codec's encoding to encoding/json's
// Marshal (the reference): the same bytes for the values its decoding
// makes, and for strings and numbers of any bytes.
func FuzzJSONEncode(f *testing.F) {
	f.Add([]byte(`{"account":"acc-1","owner":"A <b> & c","balance":-12,"f":1.5e-7,"g":1e21,"h":[null,true,"\u2028"]}`), "x\xffy\u2029<", 0.000001)
	f.Add([]byte(`[1,2.5,-0,123456789012,"\u00e9"]`), "\x00\x1f\"\\", 1e300)
	f.Fuzz(func(t *testing.T, data []byte, s string, x float64) {
		values := []any{map[string]any{"s": s, s: x, "x": x}, []any{s, x}, s}
		if v, err := decodeJSONStd(data); err == nil {
			values = append(values, v)
		}
		for _, v := range values {
			want, werr := json.Marshal(v)
			got, gerr := encodeJSON(v)
			if (werr != nil) != (gerr != nil) {
				t.Fatalf("encode %#v: error %v, encoding/json's %v", v, gerr, werr)
			}
			if werr == nil && string(got) != string(want) {
				t.Fatalf("encode %#v:\n got %s\nwant %s", v, got, want)
			}
			// AppendEncode: the same bytes after what the buffer held.
			prefix := []byte("prefix")
			app, aerr := JSON{}.AppendEncode(prefix, v)
			if (werr != nil) != (aerr != nil) {
				t.Fatalf("append-encode %#v: error %v, encoding/json's %v", v, aerr, werr)
			}
			if werr == nil && string(app) != "prefix"+string(want) {
				t.Fatalf("append-encode %#v:\n got %s\nwant prefix%s", v, app, want)
			}
		}
	})
}
