package serve

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// problem is an RFC 9457 problem details object.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	// Extensions.
	Table     string  `json:"table,omitempty"`
	Key       *string `json:"key,omitempty"`
	Partition *int32  `json:"partition,omitempty"`
	Oldest    string  `json:"oldest_recorded,omitempty"`
	// OldestAvailable is the oldest as_of time answered; Replay the
	// command that can answer older ones.
	OldestAvailable string `json:"oldest_available,omitempty"`
	Replay          string `json:"replay,omitempty"`
}

// writeProblem answers with a problem of status.
func writeProblem(w http.ResponseWriter, status int, detail string, extend ...func(*problem)) {
	p := problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: detail}
	for _, e := range extend {
		e(&p)
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds))
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(p)
}

// retryAfterSeconds is the Retry-After of a 503: restores and rebalances
// take seconds.
const retryAfterSeconds = 2

func withTable(t string) func(*problem) { return func(p *problem) { p.Table = t } }

func withKey(k string) func(*problem) { return func(p *problem) { p.Key = &k } }

func withPartition(n int32) func(*problem) { return func(p *problem) { p.Partition = &n } }
