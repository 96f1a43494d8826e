// Package eventfile reads event files: JSON lines that become Kafka records.
//
// Two layouts are understood. With a key field (for example "account"),
// every line is one event: the record value is the line as written and the
// record key is the string value of that field. Without a key field, a line
// of the form {"key": ..., "value": ..., "headers": {...}} gives key, value
// (any JSON; a JSON string is taken as raw text) and optional headers;
// other lines are taken as values with no key.
//
// Lines that are not valid JSON are still returned, as values without a
// key, flagged Invalid: a stream processor must get to see bad input and
// route it to its dead-letter topic, not have it disappear on the way in.
package eventfile

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"iter"
)

// Record is one line of an event file.
type Record struct {
	Line    int               // 1-based line number
	Key     string            // record key; empty with HasKey false means none
	HasKey  bool              // whether the line named a key
	Value   []byte            // record value
	Headers map[string]string // record headers from the "headers" column
	Invalid bool              // the line is not valid JSON (Value is the raw line)
}

// MaxLineBytes is the longest line Read accepts.
const MaxLineBytes = 16 << 20

// Read returns the records of an event file, skipping blank lines. keyField
// selects the layout (see the package documentation). The iteration stops
// at the first read error, which it yields with a zero Record.
func Read(r io.Reader, keyField string) iter.Seq2[Record, error] {
	return func(yield func(Record, error) bool) {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), MaxLineBytes)
		line := 0
		for sc.Scan() {
			line++
			raw := bytes.TrimSpace(sc.Bytes())
			if len(raw) == 0 {
				continue
			}
			rec := parse(line, bytes.Clone(raw), keyField)
			if !yield(rec, nil) {
				return
			}
		}
		if err := sc.Err(); err != nil {
			yield(Record{}, fmt.Errorf("read event file after line %d: %w", line, err))
		}
	}
}

func parse(line int, raw []byte, keyField string) Record {
	rec := Record{Line: line, Value: raw}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		rec.Invalid = !json.Valid(raw)
		return rec
	}
	if keyField != "" {
		rec.Key, rec.HasKey = stringField(obj, keyField)
		return rec
	}
	k, hasKey := obj["key"]
	v, hasValue := obj["value"]
	if !hasKey || !hasValue {
		return rec
	}
	var ks string
	if json.Unmarshal(k, &ks) == nil {
		rec.Key, rec.HasKey = ks, true
	} else if string(k) != "null" {
		rec.Key, rec.HasKey = string(k), true
	}
	var vs string
	if json.Unmarshal(v, &vs) == nil {
		rec.Value = []byte(vs)
	} else {
		rec.Value = v
	}
	if h, ok := obj["headers"]; ok {
		var hs map[string]string
		if json.Unmarshal(h, &hs) == nil {
			rec.Headers = hs
		}
	}
	return rec
}

func stringField(obj map[string]json.RawMessage, name string) (string, bool) {
	raw, ok := obj[name]
	if !ok {
		return "", false
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil || s == "" {
		return "", false
	}
	return s, true
}
