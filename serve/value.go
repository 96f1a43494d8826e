package serve

import (
	"encoding/json"
	"time"

	"github.com/weftstream/weft/processors"
	"github.com/weftstream/weft/statestore"
	"github.com/weftstream/weft/tracing"
)

// Value is a table value as the API returns it.
type Value struct {
	Table     string          `json:"table"`
	Key       string          `json:"key"`
	Value     json.RawMessage `json:"value"`
	ValueText string          `json:"value_text,omitempty"` // a value that is not JSON, as text (value is null then)
	Version   uint64          `json:"version"`
	// Deleted marks a deletion in a watch stream (value is null then).
	Deleted   bool       `json:"deleted,omitempty"`
	EventTime *time.Time `json:"event_time,omitempty"`
	Writer    string     `json:"writer_traceparent,omitempty"`
	Sources   []Source   `json:"sources,omitempty"`
	// Contributors are the spans a coalesced version was made of.
	Contributors []string `json:"contributors,omitempty"`
	// ContributorsDropped counts the contributors not listed: unsampled,
	// or beyond the recorded bound.
	ContributorsDropped uint64 `json:"contributors_dropped,omitempty"`
	// ReplayJob names the replay job (weft replay) that wrote the
	// version; absent for a version of live processing.
	ReplayJob string `json:"replay_job,omitempty"`
}

// Source is the last record of an input partition applied to a value: the
// first source is the record that made the version.
type Source struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	// Index and Upstream: the record was emitted (as the Index-th) while
	// Topic/Partition@Offset was processed upstream.
	Index    uint32 `json:"index,omitempty"`
	Upstream bool   `json:"upstream,omitempty"`
}

// valueOf renders an envelope.
func valueOf(table, key string, env statestore.Envelope) Value {
	v := Value{Table: table, Key: key, Version: env.Version, Writer: traceparent(env.Writer),
		ContributorsDropped: env.Dropped, ReplayJob: env.ReplayJob}
	if json.Valid(env.Value) {
		v.Value = env.Value
	} else {
		v.Value, v.ValueText = json.RawMessage("null"), string(env.Value)
	}
	if !env.EventTime.IsZero() {
		t := env.EventTime.UTC()
		v.EventTime = &t
	}
	for _, s := range env.Sources {
		v.Sources = append(v.Sources, Source{Topic: s.Topic, Partition: s.Partition, Offset: s.Offset, Index: s.Index, Upstream: s.Upstream})
	}
	for _, c := range env.Contributors {
		if tp := traceparent(c); tp != "" {
			v.Contributors = append(v.Contributors, tp)
		}
	}
	return v
}

// traceparent is the W3C traceparent of a stored span, or "".
func traceparent(r statestore.SpanRef) string {
	if !r.IsValid() {
		return ""
	}
	return string(tracing.AppendTraceparent(nil, processors.SpanContextOf(r)))
}

// ValueOf renders an envelope of key in table as the API returns it.
func ValueOf(table, key string, env statestore.Envelope) Value { return valueOf(table, key, env) }
