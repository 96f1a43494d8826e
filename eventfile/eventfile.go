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
	"errors"
	"fmt"
	"io"
	"iter"
	"time"
)

// Record is one line of an event file.
type Record struct {
	Line    int               // 1-based line number
	Key     string            // record key; empty with HasKey false means none
	HasKey  bool              // whether the line named a key
	Value   []byte            // record value
	Headers map[string]string // record headers from the "headers" column (non-string values as JSON text)
	Invalid bool              // the line is not valid JSON (Value is the raw line)
	// Time is the event time from the timestamp field (Options), zero
	// without one; TimeErr says why a line's field was not a time.
	Time    time.Time
	TimeErr error
}

// Options select how lines become records.
type Options struct {
	// KeyField is the field whose string value is the key of each line
	// (the line is the value); empty selects the key/value/headers layout.
	KeyField string
	// TimestampField is the field of the record value that holds the
	// event time: an RFC 3339 string or a number of milliseconds since the
	// Unix epoch. Empty: no event time.
	TimestampField string
}

// MaxLineBytes is the longest line Read accepts.
const MaxLineBytes = 16 << 20

// Read returns the records of an event file, skipping blank lines. keyField
// selects the layout (see the package documentation). The iteration stops
// at the first read error, which it yields with a zero Record.
func Read(r io.Reader, keyField string) iter.Seq2[Record, error] {
	return ReadWith(r, Options{KeyField: keyField})
}

// ReadWith is Read with Options.
func ReadWith(r io.Reader, opts Options) iter.Seq2[Record, error] {
	keyField := opts.KeyField
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
			if opts.TimestampField != "" && !rec.Invalid {
				rec.Time, rec.TimeErr = timestampOf(rec, opts.TimestampField)
			}
			if !yield(rec, nil) {
				return
			}
		}
		if err := sc.Err(); errors.Is(err, bufio.ErrTooLong) {
			yield(Record{}, fmt.Errorf("line %d is longer than the %d MiB weft reads", line+1, MaxLineBytes>>20))
		} else if err != nil {
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
		var hs map[string]json.RawMessage
		if json.Unmarshal(h, &hs) == nil {
			rec.Headers = make(map[string]string, len(hs))
			for k, v := range hs {
				// A string is the header's text; any other JSON value
				// (a number, a bool, an object) is kept as its JSON text.
				var str string
				if json.Unmarshal(v, &str) == nil {
					rec.Headers[k] = str
				} else {
					rec.Headers[k] = string(v)
				}
			}
		}
	}
	return rec
}

// timestampOf reads the event time of rec from field of its value.
func timestampOf(rec Record, field string) (time.Time, error) {
	var obj map[string]json.RawMessage
	raw, ok := json.RawMessage(nil), false
	if json.Unmarshal(rec.Value, &obj) == nil {
		raw, ok = obj[field]
	}
	if !ok {
		return time.Time{}, fmt.Errorf("line %d has no field %q for the timestamp", rec.Line, field)
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return time.Time{}, fmt.Errorf("line %d: %s %q is not an RFC 3339 time", rec.Line, field, s)
		}
		return t, nil
	}
	var ms float64
	if json.Unmarshal(raw, &ms) == nil {
		return time.UnixMilli(int64(ms)).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("line %d: %s is neither an RFC 3339 string nor milliseconds since the epoch", rec.Line, field)
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
