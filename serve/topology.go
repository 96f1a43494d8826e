package serve

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/weftstream/weft/topology"
)

// WithTopology makes GET /topology answer the description of the
// compiled topology the tables belong to (topology.DescribeJSON).
func WithTopology(c *topology.Compiled) Option { return func(cfg *config) { cfg.topology = c } }

// describeTopology renders the topology once, at New.
func (s *Server) describeTopology() error {
	if s.cfg.topology == nil {
		return nil
	}
	d, err := topology.DescribeJSON(s.cfg.topology)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	if s.topology, err = json.Marshal(d); err != nil {
		return fmt.Errorf("serve: encode the topology: %w", err)
	}
	return nil
}

// getTopology answers GET /topology.
func (s *Server) getTopology(w http.ResponseWriter, _ *http.Request) {
	if s.topology == nil {
		writeProblem(w, http.StatusNotFound, "this instance runs processors built in code, not a topology file: it has no topology description")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(s.topology)
}

// WithTraceURLTemplate sets the link of a trace in a tracing UI, for the
// web page: {trace_id} (and {span_id}) are replaced, e.g.
// http://localhost:16686/trace/{trace_id} for Jaeger. Empty: no links.
func WithTraceURLTemplate(template string) Option {
	return func(c *config) { c.traceURL = template }
}

// CheckTraceURLTemplate checks a template for WithTraceURLTemplate: an
// http or https URL that contains {trace_id}; "" is valid (no links).
func CheckTraceURLTemplate(template string) error {
	if template == "" {
		return nil
	}
	if !strings.Contains(template, "{trace_id}") {
		return fmt.Errorf("%q has no {trace_id} to replace", template)
	}
	u, err := url.Parse(strings.NewReplacer("{trace_id}", "0", "{span_id}", "0").Replace(template))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http or https URL", template)
	}
	return nil
}
