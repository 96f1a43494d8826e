package serve

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/weftstream/weft/kafkaclient"
	"github.com/weftstream/weft/processors"
	"github.com/weftstream/weft/topology"
	"github.com/weftstream/weft/tracing"
	"go.opentelemetry.io/otel/trace"
)

// Server serves the tables of the processors of this process over HTTP.
type Server struct {
	cfg    config
	tables map[string]*processors.TableReader // by group name and by table topic
	names  []string                           // group names, sorted
	mux    *http.ServeMux
	// hubs hold the recent changes of each table for watchers, by group.
	hubs     map[string]*hub
	stops    []func() // remove the hubs' hooks
	watchers atomic.Int64
	topology []byte // GET /topology, nil without WithTopology
	// forwarder proxies keys this instance does not serve (WithForwarding).
	forwarder *forwarder
	// brokers asks the cluster whether it answers (WithBrokerCheck).
	brokers *brokerProbe
}

// Option configures New.
type Option func(*config)

type config struct {
	logger         *slog.Logger
	tracerProvider trace.TracerProvider
	token          string
	ready          func() error
	processors     []*processors.Processor // WithProcessors
	brokerCheck    *kafkaclient.Config     // WithBrokerCheck
	maxKeyBytes    int
	maxLimit       int
	maxWatchers    int
	changeBuffer   int
	heartbeat      time.Duration
	// Timeouts of Run's http.Server.
	readTimeout, writeTimeout time.Duration
	topology                  *topology.Compiled
	traceURL                  string
	metrics                   http.Handler // GET /metrics, nil without WithMetrics
	forward                   *forwardConfig
	kafka                     *kafkaclient.Config // WithKafka: source records of lineages
	lineageVersions           int                 // WithLineageRetention
	retention                 time.Duration
	replayFile                string
}

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.logger = l
		}
	}
}

// WithTracerProvider sets the provider of the query spans (default:
// tracing.Unexported).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) {
		if tp != nil {
			c.tracerProvider = tp
		}
	}
}

// WithToken requires "Authorization: Bearer <token>" on every request but
// /healthz and /readyz (401 without a token, 403 with a wrong one). An
// empty token (the default) serves without authentication.
func WithToken(token string) Option { return func(c *config) { c.token = token } }

// WithMetrics serves h (see Metrics.Handler) on GET /metrics, under the
// same bearer token as the tables: Prometheus sends it with
// authorization: {credentials_file: ...} in the scrape config.
func WithMetrics(h http.Handler) Option { return func(c *config) { c.metrics = h } }

// WithReadiness sets what /readyz asks: nil means ready. By default the
// server is ready when every partition of every table it serves is
// restored, every processor of WithProcessors has a current assignment
// and restored it, and the cluster of WithBrokerCheck answers;
// WithReadiness replaces all of that.
func WithReadiness(ready func() error) Option { return func(c *config) { c.ready = ready } }

// Limits of a request.
const (
	// DefaultMaxKeyBytes bounds a key in a request (414 beyond it).
	DefaultMaxKeyBytes = 4 << 10
	// DefaultScanLimit is the page size of a scan without limit; MaxScanLimit bounds it.
	DefaultScanLimit = 100
	MaxScanLimit     = 1000
)

// New returns a server of tables, the readers of the processors' group
// tables (see processors.Processor.TableReader).
func New(tables []*processors.TableReader, opts ...Option) (*Server, error) {
	cfg := config{logger: slog.New(slog.DiscardHandler), tracerProvider: tracing.Unexported(),
		maxKeyBytes: DefaultMaxKeyBytes, maxLimit: MaxScanLimit,
		maxWatchers: DefaultMaxWatchers, changeBuffer: DefaultChangeBuffer, heartbeat: DefaultHeartbeat,
		readTimeout: 10 * time.Second, writeTimeout: 30 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	s := &Server{cfg: cfg, tables: map[string]*processors.TableReader{}, mux: http.NewServeMux(), hubs: map[string]*hub{}}
	for _, t := range tables {
		if t == nil {
			continue
		}
		name := string(t.Group())
		if _, dup := s.tables[name]; dup {
			return nil, fmt.Errorf("serve: table %s given twice", name)
		}
		s.tables[name], s.tables[t.Topic()] = t, t
		s.names = append(s.names, name)
		h := newHub(cfg.changeBuffer)
		s.hubs[name] = h
		s.stops = append(s.stops, t.Watch(h.publish))
	}
	slices.Sort(s.names)
	if err := CheckTraceURLTemplate(cfg.traceURL); err != nil {
		return nil, fmt.Errorf("serve: trace URL template: %w", err)
	}
	if err := s.describeTopology(); err != nil {
		return nil, err
	}
	if s.cfg.ready == nil {
		s.cfg.ready = s.readiness
	}
	if cfg.forward != nil {
		f, err := newForwarder(s, cfg.forward)
		if err != nil {
			return nil, err
		}
		s.forwarder = f
	}
	if cfg.brokerCheck != nil && cfg.ready == nil {
		b, err := newBrokerProbe(*cfg.brokerCheck)
		if err != nil {
			if s.forwarder != nil {
				s.forwarder.close()
			}
			return nil, err
		}
		s.brokers = b
	}
	s.routes()
	return s, nil
}

// Handler returns the HTTP handler of the API.
func (s *Server) Handler() http.Handler { return s.mux }

func (s *Server) routes() {
	traced := s.traced
	s.mux.Handle("GET /tables/{table}/{key}", traced("/tables/{table}/{key}", s.getValue))
	// More specific than /tables/{table}/{key}: a key named "watch" is
	// read by a scan (?prefix=watch) and watched with ?key=watch.
	s.mux.Handle("GET /tables/{table}/watch", s.auth(s.watch))
	s.mux.Handle("GET /tables/{table}/{key}/lineage", traced("/tables/{table}/{key}/lineage", s.getLineage))
	s.mux.Handle("GET /tables/{table}", traced("/tables/{table}", s.scan))
	s.mux.Handle("GET /tables", s.auth(s.listTables))
	s.mux.Handle("GET /topology", s.auth(s.getTopology))
	s.uiRoutes()
	if s.cfg.metrics != nil {
		s.mux.Handle("GET /metrics", s.auth(s.cfg.metrics.ServeHTTP))
	}
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, map[string]string{"status": "ok"}) })
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, http.StatusNotFound, fmt.Sprintf("no such endpoint %s %s (see GET /tables)", r.Method, r.URL.Path))
	})
}

// auth checks the bearer token.
func (s *Server) auth(h http.HandlerFunc) http.HandlerFunc {
	if s.cfg.token == "" {
		return h
	}
	want := []byte("Bearer " + s.cfg.token)
	return func(w http.ResponseWriter, r *http.Request) {
		got := r.Header.Get("Authorization")
		if got == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="weft"`)
			writeProblem(w, http.StatusUnauthorized, "this server needs a bearer token: send Authorization: Bearer <token>")
			return
		}
		if subtle.ConstantTimeCompare([]byte(got), want) != 1 {
			writeProblem(w, http.StatusForbidden, "the bearer token is not the one this server accepts")
			return
		}
		h(w, r)
	}
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	if err := s.cfg.ready(); err != nil {
		writeProblem(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	writeJSON(w, map[string]string{"status": "ready"})
}

// Run serves on ln until ctx ends, then shuts down gracefully (for at most
// 5 s). A tlsConfig serves HTTPS.
func (s *Server) Run(ctx context.Context, ln net.Listener, tlsConfig *tls.Config) error {
	hs := &http.Server{
		Handler:           http.MaxBytesHandler(s.mux, 1<<20),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       s.cfg.readTimeout,
		WriteTimeout:      s.cfg.writeTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.cfg.logger.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	// Watch streams never turn idle: end them when shutting down.
	hs.RegisterOnShutdown(s.Close)
	if tlsConfig != nil {
		ln = tls.NewListener(ln, tlsConfig)
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("query API: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		// Still open after the grace period: requests that did not finish,
		// or connections a client dialed ahead and never sent a request
		// on (net/http's Shutdown waits 5 s before it counts those as
		// idle). They are closed; stopping does not fail because of them.
		s.cfg.logger.Debug("query API: closing the connections still open after the shutdown grace period",
			"grace", shutdownGrace, "error", err)
		_ = hs.Close()
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("query API: %w", err)
	}
	return nil
}

// shutdownGrace is how long Run waits, once its context is done, for the
// requests being answered to finish before it closes their connections.
const shutdownGrace = 5 * time.Second

// Close ends the watch streams, refuses new ones, stops recording
// changes and closes the Kafka clients of WithForwarding (owners not
// cached are then unknown: 503) and WithBrokerCheck (/readyz then says
// the cluster does not answer). The other endpoints keep answering.
func (s *Server) Close() {
	for _, stop := range s.stops {
		stop()
	}
	for _, h := range s.hubs {
		h.close()
	}
	if s.forwarder != nil {
		s.forwarder.close()
	}
	if s.brokers != nil {
		s.brokers.close()
	}
}

// TLSConfig loads a certificate and key for Run.
func TLSConfig(certFile, keyFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load TLS certificate %s and key %s: %w", certFile, keyFile, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// ReadToken reads a bearer token from a file (trimmed); an empty path
// gives "".
func ReadToken(path string) (string, error) {
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read the query API token: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("the query API token file %s is empty", path)
	}
	return tok, nil
}
