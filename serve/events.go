package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/weftstream/weft/kafkaclient"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Bounds of GET /tables/{table}/{key}/lineage?events=true.
const (
	// MaxLineageEvents is how many versions (the newest) get their source
	// record; older ones have none (events_truncated says how many).
	MaxLineageEvents = 16
	// eventsTimeout bounds the fetching of all of them.
	eventsTimeout = 5 * time.Second
	// maxEventValueBytes bounds the value of a record returned.
	maxEventValueBytes = 64 << 10
	// maxSkipped bounds the records read past while looking for one
	// offset (records removed or compacted away, transaction markers).
	maxSkipped = 1000
)

// WithKafka sets the cluster the source records of a lineage are fetched
// from (?events=true); without it such requests answer 400.
func WithKafka(k kafkaclient.Config) Option {
	return func(c *config) {
		c.kafka = nil
		if len(k.Brokers) > 0 {
			c.kafka = &k
		}
	}
}

// SourceEvent is the input record that made a version, fetched from Kafka
// by its offset (the version's first source).
type SourceEvent struct {
	Topic     string          `json:"topic"`
	Partition int32           `json:"partition"`
	Offset    int64           `json:"offset"`
	Key       string          `json:"key,omitempty"`
	Value     json.RawMessage `json:"value,omitempty"`
	ValueText string          `json:"value_text,omitempty"` // a value that is not JSON
	// Truncated: the value was longer than 64 KiB and is cut (value_text).
	Truncated bool              `json:"truncated,omitempty"`
	Timestamp *time.Time        `json:"timestamp,omitempty"`
	Headers   map[string]string `json:"headers,omitempty"`
	// Error says why the record is not here (no longer in the topic, not
	// fetched in time).
	Error string `json:"error,omitempty"`
}

// lineageVersion is a version of a lineage with its source record.
type lineageVersion struct {
	Value
	Event *SourceEvent `json:"event,omitempty"`
}

// wantsEvents reads ?events=, answering 400 if malformed or unavailable.
func (s *Server) wantsEvents(w http.ResponseWriter, r *http.Request) (want, ok bool) {
	switch e := r.URL.Query().Get("events"); e {
	case "", "false":
		return false, true
	case "true":
		if s.cfg.kafka == nil {
			writeProblem(w, http.StatusBadRequest, "events=true needs the Kafka cluster of the inputs, which this server was not given")
			return false, false
		}
		return true, true
	default:
		writeProblem(w, http.StatusBadRequest, fmt.Sprintf("events %q: give true or false", e))
		return false, false
	}
}

// sourceEvents fetches the source record of the first MaxLineageEvents
// versions (nil for a version without a source), within eventsTimeout.
func (s *Server) sourceEvents(ctx context.Context, versions []Value) ([]*SourceEvent, error) {
	opts, err := s.cfg.kafka.FranzOptions()
	if err != nil {
		return nil, fmt.Errorf("fetch source records: %w", err)
	}
	opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(200*time.Millisecond))
	// A direct consumer, made with the first partition to read (it can
	// add partitions only then), reading one record after the other.
	var cl *kgo.Client
	defer func() {
		if cl != nil {
			cl.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, eventsTimeout)
	defer cancel()
	out := make([]*SourceEvent, min(len(versions), MaxLineageEvents))
	fetched := map[Source]*SourceEvent{} // a record behind two versions is fetched once
	for i := range out {
		if len(versions[i].Sources) == 0 {
			continue
		}
		src := versions[i].Sources[0]
		key := Source{Topic: src.Topic, Partition: src.Partition, Offset: src.Offset}
		if e, ok := fetched[key]; ok {
			out[i] = e
			continue
		}
		e := &SourceEvent{Topic: src.Topic, Partition: src.Partition, Offset: src.Offset}
		if ctx.Err() != nil {
			e.Error = "not fetched: the time for fetching source records ran out"
		} else {
			at := map[string]map[int32]kgo.Offset{e.Topic: {e.Partition: kgo.NewOffset().At(e.Offset)}}
			if cl == nil {
				if cl, err = kgo.NewClient(append(opts, kgo.ConsumePartitions(at))...); err != nil {
					return nil, fmt.Errorf("fetch source records: Kafka client: %w", err)
				}
			} else {
				cl.AddConsumePartitions(at)
			}
			if err := fetchRecord(ctx, cl, e); err != nil {
				e.Error = err.Error()
			}
		}
		out[i], fetched[key] = e, e
	}
	return out, nil
}

// fetchRecord reads the record at e's offset into e, the partition cl
// consumes (and stops consuming).
func fetchRecord(ctx context.Context, cl *kgo.Client, e *SourceEvent) error {
	defer cl.RemoveConsumePartitions(map[string][]int32{e.Topic: {e.Partition}})
	skipped := 0
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return errors.New("not fetched within the time allowed")
		}
		for _, fe := range fs.Errors() {
			if fe.Topic == e.Topic && fe.Partition == e.Partition {
				return fmt.Errorf("fetch %s/%d@%d: %w", e.Topic, e.Partition, e.Offset, fe.Err)
			}
		}
		var rec *kgo.Record
		fs.EachRecord(func(r *kgo.Record) {
			if rec != nil || r.Topic != e.Topic || r.Partition != e.Partition {
				return
			}
			if r.Offset < e.Offset {
				skipped++
				return
			}
			rec = r
		})
		switch {
		case rec != nil && rec.Offset == e.Offset:
			fill(e, rec)
			return nil
		case rec != nil:
			return fmt.Errorf("the record is no longer in %s/%d (the next one held is at offset %d)", e.Topic, e.Partition, rec.Offset)
		case skipped > maxSkipped:
			return fmt.Errorf("the record is no longer in %s/%d", e.Topic, e.Partition)
		}
	}
}

// fill copies a record into e.
func fill(e *SourceEvent, r *kgo.Record) {
	e.Key = string(r.Key)
	v := r.Value
	if len(v) > maxEventValueBytes {
		v, e.Truncated = v[:maxEventValueBytes], true
	}
	if !e.Truncated && json.Valid(v) {
		e.Value = append(json.RawMessage(nil), v...)
	} else {
		e.ValueText = string(v)
		if !utf8.ValidString(e.ValueText) {
			e.ValueText = fmt.Sprintf("%q", v)
		}
	}
	if !r.Timestamp.IsZero() {
		ts := r.Timestamp.UTC()
		e.Timestamp = &ts
	}
	for _, h := range r.Headers {
		if e.Headers == nil {
			e.Headers = map[string]string{}
		}
		if len(h.Value) <= 1024 {
			e.Headers[h.Key] = string(h.Value)
		}
	}
}

// withEvents turns the versions of a lineage into lineageVersions with
// their source records.
func (s *Server) withEvents(r *http.Request, versions []Value) ([]lineageVersion, error) {
	events, err := s.sourceEvents(r.Context(), versions)
	if err != nil {
		return nil, err
	}
	out := make([]lineageVersion, len(versions))
	found := 0
	for i, v := range versions {
		out[i].Value = v
		if i < len(events) {
			out[i].Event = events[i]
			if events[i] != nil && events[i].Error == "" {
				found++
			}
		}
	}
	trace.SpanFromContext(r.Context()).SetAttributes(attribute.Int("weft.query.events", found))
	return out, nil
}
