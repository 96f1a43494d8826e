package serve

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/weftstream/weft/processors"
	"github.com/weftstream/weft/statestore"
	"github.com/weftstream/weft/tracing"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// table resolves the {table} of a request, answering 404 if unknown.
func (s *Server) table(w http.ResponseWriter, r *http.Request) (*processors.TableReader, bool) {
	name := r.PathValue("table")
	t, ok := s.tables[name]
	if !ok {
		writeProblem(w, http.StatusNotFound, fmt.Sprintf("no table %q here; this instance serves %v", name, s.names), withTable(name))
		return nil, false
	}
	trace.SpanFromContext(r.Context()).SetAttributes(tracing.AttrStateTable.String(t.Topic()))
	return t, true
}

// key reads the {key} of a request, answering 414 if it is too long.
func (s *Server) key(w http.ResponseWriter, r *http.Request) (string, bool) {
	k := r.PathValue("key")
	if len(k) > s.cfg.maxKeyBytes {
		writeProblem(w, http.StatusRequestURITooLong, fmt.Sprintf("the key has %d bytes; at most %d are accepted", len(k), s.cfg.maxKeyBytes))
		return "", false
	}
	trace.SpanFromContext(r.Context()).SetAttributes(tracing.AttrStateKey.String(k))
	return k, true
}

// linkWriter links the query span to the span that wrote env.
func linkWriter(r *http.Request, t *processors.TableReader, key string, env statestore.Envelope) {
	span := trace.SpanFromContext(r.Context())
	if !span.IsRecording() || !env.Writer.IsValid() {
		return
	}
	span.AddLink(tracing.Link(processors.SpanContextOf(env.Writer), tracing.LinkReadValue,
		tracing.AttrStateTable.String(t.Topic()), tracing.AttrStateKey.String(key),
		tracing.AttrStateVersion.Int64(int64(env.Version))))
}

// unavailable answers 503 for a key whose partition is not served here.
func unavailable(w http.ResponseWriter, t *processors.TableReader, key string) {
	p := t.Partition(key)
	writeProblem(w, http.StatusServiceUnavailable,
		fmt.Sprintf("partition %d of %s, which holds this key, is restoring or assigned to another instance; retry", p, t.Topic()),
		withTable(string(t.Group())), withKey(key), withPartition(p))
}

// failed answers a read error: 503 if not served here, else 500.
func (s *Server) failed(w http.ResponseWriter, r *http.Request, t *processors.TableReader, key string, err error) {
	if errors.Is(err, processors.ErrNotServed) {
		s.notServed(w, r, t, key)
		return
	}
	s.cfg.logger.Warn("query failed", "table", t.Topic(), "key", key, "error", err)
	tracing.RecordError(trace.SpanFromContext(r.Context()), err)
	writeProblem(w, http.StatusInternalServerError, "reading the table failed: "+err.Error())
}

// getValue answers GET /tables/{table}/{key}[?as_of=].
func (s *Server) getValue(w http.ResponseWriter, r *http.Request) {
	t, ok := s.table(w, r)
	if !ok {
		return
	}
	key, ok := s.key(w, r)
	if !ok {
		return
	}
	var env statestore.Envelope
	var found bool
	var err error
	asOf := r.URL.Query().Get("as_of")
	switch v, verr := strconv.ParseUint(asOf, 10, 64); {
	case asOf == "":
		env, found, err = t.Get(key)
	case verr == nil:
		env, found, err = t.GetAsOf(key, v)
		if found && err == nil && (s.cfg.retention > 0 || s.cfg.lineageVersions > 0) {
			// Held by the index, but perhaps older than the retention.
			var versions []statestore.Envelope
			versions, err = t.Lineage(key)
			found = slices.ContainsFunc(s.kept(versions), func(e statestore.Envelope) bool { return e.Version == v })
		}
	default:
		at, terr := time.Parse(time.RFC3339Nano, asOf)
		if terr != nil {
			writeProblem(w, http.StatusBadRequest, fmt.Sprintf("as_of %q is neither a version number nor an RFC 3339 time", asOf))
			return
		}
		if cut := s.cutoff(); at.Before(cut) {
			s.tooOld(w, t, key, asOf, cut)
			return
		}
		env, found, err = t.GetAsOfTime(key, at)
	}
	if err != nil {
		s.failed(w, r, t, key, err)
		return
	}
	if !found && asOf != "" {
		s.notRecorded(w, r, t, key, asOf)
		return
	}
	if !found {
		writeProblem(w, http.StatusNotFound, fmt.Sprintf("key %q has no value in %s", key, t.Topic()), withTable(string(t.Group())), withKey(key))
		return
	}
	linkWriter(r, t, key, env)
	v := valueOf(string(t.Group()), key, env)
	if v.Writer != "" {
		w.Header().Set("Weft-Writer-Traceparent", v.Writer)
	}
	writeJSON(w, v)
}

// notRecorded answers an as_of the lineage cannot answer: 404 if the key
// never had a value, else 422 with the oldest version recorded.
func (s *Server) notRecorded(w http.ResponseWriter, r *http.Request, t *processors.TableReader, key, asOf string) {
	versions, err := t.Lineage(key)
	if err != nil {
		s.failed(w, r, t, key, err)
		return
	}
	if len(versions) == 0 {
		writeProblem(w, http.StatusNotFound, fmt.Sprintf("key %q has no recorded value in %s", key, t.Topic()), withTable(string(t.Group())), withKey(key))
		return
	}
	versions = s.kept(versions)
	oldest := versions[len(versions)-1]
	detail := fmt.Sprintf("the lineage of %q keeps versions %d to %d; as_of %s is not among them or older than the oldest",
		key, oldest.Version, versions[0].Version, asOf)
	writeProblem(w, http.StatusUnprocessableEntity, detail, withTable(string(t.Group())), withKey(key), func(p *problem) {
		if !oldest.EventTime.IsZero() {
			p.Oldest = oldest.EventTime.UTC().Format(time.RFC3339Nano)
		}
		if _, err := time.Parse(time.RFC3339Nano, asOf); err == nil {
			p.Replay = s.replayCommand(key, asOf)
		}
	})
}

// lineageResponse is the answer of GET /tables/{table}/{key}/lineage.
type lineageResponse struct {
	Table    string           `json:"table"`
	Key      string           `json:"key"`
	Versions []lineageVersion `json:"versions"`
	// EventsTruncated counts the versions (the oldest) whose source
	// record was not fetched with ?events=true (MaxLineageEvents).
	EventsTruncated int `json:"events_truncated,omitempty"`
}

// getLineage answers GET /tables/{table}/{key}/lineage.
func (s *Server) getLineage(w http.ResponseWriter, r *http.Request) {
	t, ok := s.table(w, r)
	if !ok {
		return
	}
	key, ok := s.key(w, r)
	if !ok {
		return
	}
	events, ok := s.wantsEvents(w, r)
	if !ok {
		return
	}
	versions, err := t.Lineage(key)
	if err != nil {
		s.failed(w, r, t, key, err)
		return
	}
	if len(versions) == 0 {
		writeProblem(w, http.StatusNotFound, fmt.Sprintf("key %q has no recorded versions in %s", key, t.Topic()), withTable(string(t.Group())), withKey(key))
		return
	}
	versions = s.kept(versions)
	values := make([]Value, 0, len(versions))
	for _, env := range versions {
		values = append(values, valueOf(string(t.Group()), key, env))
	}
	out := lineageResponse{Table: string(t.Group()), Key: key, Versions: make([]lineageVersion, len(values))}
	for i, v := range values {
		out.Versions[i].Value = v
	}
	if events {
		if out.Versions, err = s.withEvents(r, values); err != nil {
			s.failed(w, r, t, key, err)
			return
		}
		out.EventsTruncated = max(len(values)-MaxLineageEvents, 0)
	}
	linkWriter(r, t, key, versions[0])
	writeJSON(w, out)
}

// scanResponse is the answer of GET /tables/{table}.
type scanResponse struct {
	Table string  `json:"table"`
	Items []Value `json:"items"`
	// Next is the cursor of the next page (pass it as from), empty on the
	// last page.
	Next string `json:"next,omitempty"`
	// Partitions are the partitions read: a scan covers the partitions
	// this instance serves.
	Partitions []int32 `json:"partitions"`
	// Complete says whether every partition of the table was read.
	Complete bool `json:"complete"`
	// Unavailable are the partitions not read: restoring, or held by an
	// instance that is unknown or did not answer.
	Unavailable []int32 `json:"unavailable,omitempty"`
}

// scan answers GET /tables/{table}?prefix=&from=&limit=.
func (s *Server) scan(w http.ResponseWriter, r *http.Request) {
	t, ok := s.table(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	limit := DefaultScanLimit
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > s.cfg.maxLimit {
			writeProblem(w, http.StatusBadRequest, fmt.Sprintf("limit %q: give a number from 1 to %d", l, s.cfg.maxLimit))
			return
		}
		limit = n
	}
	prefix, from := q.Get("prefix"), q.Get("from")
	if len(prefix) > s.cfg.maxKeyBytes || len(from) > s.cfg.maxKeyBytes {
		writeProblem(w, http.StatusRequestURITooLong, fmt.Sprintf("prefix and from take at most %d bytes", s.cfg.maxKeyBytes))
		return
	}
	entries, more, served, err := t.Scan(prefix, from, limit)
	if err != nil {
		s.failed(w, r, t, "", err)
		return
	}
	out := scanResponse{Table: string(t.Group()), Items: make([]Value, 0, len(entries)), Partitions: slices.Clone(served)}
	if out.Partitions == nil {
		out.Partitions = []int32{}
	}
	for _, e := range entries {
		out.Items = append(out.Items, valueOf(string(t.Group()), e.Key, e.Envelope))
	}
	if s.scanElsewhere(r, t, &out, prefix, from, limit) {
		more = true
	}
	out.Complete = int32(len(out.Partitions)) == t.Partitions()
	if more && len(out.Items) > 0 {
		out.Next = out.Items[len(out.Items)-1].Key
	}
	trace.SpanFromContext(r.Context()).SetAttributes(attribute.Int("weft.query.items", len(out.Items)))
	writeJSON(w, out)
}

// tableInfo describes a served table.
type tableInfo struct {
	Name       string  `json:"name"`
	Topic      string  `json:"topic"`
	Partitions int32   `json:"partitions"`
	Assigned   []int32 `json:"assigned"`
	Ready      []int32 `json:"ready"`
}

// listTables answers GET /tables.
func (s *Server) listTables(w http.ResponseWriter, _ *http.Request) {
	out := make([]tableInfo, 0, len(s.names))
	for _, name := range s.names {
		t := s.tables[name]
		info := tableInfo{Name: name, Topic: t.Topic(), Partitions: t.Partitions(), Assigned: t.Assigned(), Ready: t.Served()}
		if info.Assigned == nil {
			info.Assigned = []int32{}
		}
		if info.Ready == nil {
			info.Ready = []int32{}
		}
		out = append(out, info)
	}
	writeJSON(w, map[string]any{"tables": out})
}

// writeJSON answers 200 with v as JSON.
func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_ = json.NewEncoder(w).Encode(v)
}
