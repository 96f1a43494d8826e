package eventfile

import (
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	in := strings.Join([]string{
		`{"type":"Deposited","account":"a1","amount":5}`,
		``,
		`{"type":"Deposited","amount":5}`,
		`not json`,
		`{"key":"k9","value":{"x":1},"headers":{"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}}`,
		`{"key":"k10","value":"raw text"}`,
		`{"account":7}`,
	}, "\n")
	var got []Record
	for rec, err := range Read(strings.NewReader(in), "account") {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, rec)
	}
	if len(got) != 6 {
		t.Fatalf("%d records, want 6 (blank line skipped)", len(got))
	}
	if r := got[0]; r.Key != "a1" || !r.HasKey || r.Line != 1 || string(r.Value) != `{"type":"Deposited","account":"a1","amount":5}` {
		t.Errorf("record 1 = %+v", r)
	}
	if r := got[1]; r.HasKey || r.Line != 3 {
		t.Errorf("missing key field: %+v", r)
	}
	if r := got[2]; !r.Invalid || r.HasKey || string(r.Value) != "not json" {
		t.Errorf("invalid line: %+v", r)
	}
	if r := got[5]; r.HasKey {
		t.Errorf("non-string key field taken as key: %+v", r)
	}

	got = got[:0]
	for rec, err := range Read(strings.NewReader(in), "") {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, rec)
	}
	if r := got[3]; r.Key != "k9" || string(r.Value) != `{"x":1}` || r.Headers["traceparent"] == "" {
		t.Errorf("key/value/headers line: %+v", r)
	}
	if r := got[4]; r.Key != "k10" || string(r.Value) != "raw text" {
		t.Errorf("string value line: %+v", r)
	}
	if r := got[0]; r.HasKey {
		t.Errorf("plain event without key field got a key: %+v", r)
	}
}

func FuzzRead(f *testing.F) {
	f.Add(`{"key":"a","value":{"b":1},"headers":{"h":"v"}}`, "")
	f.Add(`{"account":"x"}`, "account")
	f.Add(`{"key":`, "key")
	f.Fuzz(func(t *testing.T, in, field string) {
		last := 0
		for rec, err := range Read(strings.NewReader(in), field) {
			if err != nil {
				return // only for lines beyond MaxLineBytes
			}
			if rec.Line <= last {
				t.Fatalf("line %d after line %d", rec.Line, last)
			}
			last = rec.Line
			if rec.Invalid && len(rec.Value) == 0 {
				t.Fatalf("invalid line %d lost its content", rec.Line)
			}
			if rec.HasKey && field != "" && rec.Key == "" {
				t.Fatalf("line %d: empty key taken from field %q", rec.Line, field)
			}
		}
	})
}
