package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"github.com/weftstream/weft/kafkaclient"
	"github.com/weftstream/weft/processors"
	"github.com/weftstream/weft/serve"
	"github.com/weftstream/weft/topology"
	"go.opentelemetry.io/otel/trace"
)

// defaultHTTPAddr is where weft run serves its query API by default: on
// loopback only, so that nothing is exposed without a decision to.
const defaultHTTPAddr = "127.0.0.1:7070"

// queryAPIFlags configure the query API of weft run.
type queryAPIFlags struct {
	addr      string
	token     string
	tokenFile string
	certFile  string
	keyFile   string
	traceURL  string
	changed   bool // --http-addr was set (an address in use is then an error)
	// topology is the compiled topology the processors run, for GET
	// /topology (nil for the built-in projection).
	topology *topology.Compiled
	// metrics are served on GET /metrics (see meterProvider, metrics.go).
	metrics *serve.Metrics
	// advertise is --http-advertise (see advertisedURL).
	advertise string
	// kafka is the cluster of the processors' groups, where the API finds
	// which instance owns a key it does not hold (no forwarding without).
	kafka kafkaclient.Config
	// lineage is the topology file's lineage: {versions, retention},
	// topologyFile the file (for the replay command of an as_of beyond it).
	lineageVersions int
	retention       time.Duration
	topologyFile    string
}

func (q *queryAPIFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&q.addr, "http-addr", defaultHTTPAddr, "address of the query API (GET /tables/<table>/<key>, ...); empty: no API")
	fs.StringVar(&q.token, "http-token", "", "bearer token the query API requires (prefer its environment variable; empty: none)")
	fs.StringVar(&q.tokenFile, "http-token-file", "", "file holding the bearer token the query API requires")
	fs.StringVar(&q.certFile, "http-tls-cert", "", "TLS certificate file: serve the query API over HTTPS")
	fs.StringVar(&q.keyFile, "http-tls-key", "", "TLS key file, with --http-tls-cert")
	fs.StringVar(&q.advertise, "http-advertise", "", "host:port at which the other instances reach this query API, to forward keys they do not hold (default: --http-addr unless it is a wildcard)")
	fs.StringVar(&q.traceURL, "trace-url-template", "", "link of a trace in your tracing UI, for the web page, e.g. http://localhost:16686/trace/{trace_id}")
}

// check validates the flags before anything starts.
func (q *queryAPIFlags) check() error {
	if q.addr != "" {
		if _, _, err := net.SplitHostPort(q.addr); err != nil {
			return &usageError{fmt.Errorf("--http-addr %q: give host:port, e.g. 127.0.0.1:7070, or empty for no query API", q.addr)}
		}
	}
	if q.advertise != "" {
		if h, p, err := net.SplitHostPort(q.advertise); err != nil || h == "" || p == "" || p == "0" {
			return &usageError{fmt.Errorf("--http-advertise %q: give the host:port other instances reach this one at, e.g. 10.0.0.5:7070", q.advertise)}
		}
	}
	if q.token != "" && q.tokenFile != "" {
		return &usageError{errors.New("--http-token and --http-token-file both given: use one")}
	}
	if (q.certFile == "") != (q.keyFile == "") {
		return &usageError{errors.New("--http-tls-cert and --http-tls-key go together")}
	}
	if err := serve.CheckTraceURLTemplate(q.traceURL); err != nil {
		return &usageError{fmt.Errorf("--trace-url-template: %w", err)}
	}
	return nil
}

// advertisedURL is the URL of the query API that this instance advertises
// in its consumer groups (kafkaclient.Config.GroupUserData), so that the
// other instances forward to it the keys of the partitions it holds:
// --http-advertise, else --http-addr when it names a host and a port
// (a loopback address reaches only instances on the same host); "" (no
// advertisement) without an API or for a wildcard address.
func (q *queryAPIFlags) advertisedURL() string {
	if q.addr == "" {
		return ""
	}
	hostPort := q.advertise
	if hostPort == "" {
		h, p, err := net.SplitHostPort(q.addr)
		if err != nil || p == "0" || h == "" || net.ParseIP(h) != nil && net.ParseIP(h).IsUnspecified() {
			return ""
		}
		hostPort = q.addr
	}
	if q.certFile != "" {
		return "https://" + hostPort
	}
	return "http://" + hostPort
}

// tls returns the TLS configuration of the flags, or nil for plain HTTP.
func (q *queryAPIFlags) tls() (*tls.Config, error) {
	if q.certFile == "" {
		return nil, nil
	}
	return serve.TLSConfig(q.certFile, q.keyFile)
}

// start serves the tables of procs, and their metrics, until ctx ends;
// wait waits for the server to stop. The caller stops the metrics
// (stopMetrics) once the processors and tracing have stopped.
func (q *queryAPIFlags) start(ctx context.Context, log *slog.Logger, tp trace.TracerProvider, procs ...*processors.Processor) (wait func(), err error) {
	nothing := func() {}
	if q.addr == "" {
		return nothing, nil
	}
	token := q.token
	if q.tokenFile != "" {
		if token, err = serve.ReadToken(q.tokenFile); err != nil {
			return nil, err
		}
	}
	var readers []*processors.TableReader
	for _, p := range procs {
		if r := p.TableReader(); r != nil {
			readers = append(readers, r)
		}
	}
	metrics, err := q.ensureMetrics(ctx)
	if err != nil {
		return nil, err
	}
	if err := metrics.Observe(procs...); err != nil {
		return nil, err
	}
	srv, err := serve.New(readers, serve.WithLogger(log), serve.WithTracerProvider(tp), serve.WithToken(token),
		serve.WithTopology(q.topology), serve.WithTraceURLTemplate(q.traceURL), serve.WithMetrics(metrics.Handler()),
		serve.WithForwarding(q.kafka, q.advertisedURL()), serve.WithKafka(q.kafka),
		serve.WithLineageRetention(q.lineageVersions, q.retention, q.topologyFile),
		// /readyz: every group joined and restored, the cluster answering.
		serve.WithProcessors(procs...), serve.WithBrokerCheck(q.kafka))
	if err != nil {
		return nil, err
	}
	if self := q.advertisedURL(); self != "" {
		log.Info("query API advertised to the group", "url", self)
	}
	ln, err := net.Listen("tcp", q.addr)
	if err != nil {
		if !q.changed && errors.Is(err, syscall.EADDRINUSE) {
			log.Warn("query API not served: its default address is in use (pass --http-addr to choose another)", "addr", q.addr)
			return nothing, nil
		}
		return nil, fmt.Errorf("query API on %s: %w (choose another address with --http-addr)", q.addr, err)
	}
	tc, err := q.tls()
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	scheme := "http"
	if tc != nil {
		scheme = "https"
	}
	log.Info("query API serving", "url", fmt.Sprintf("%s://%s/tables", scheme, ln.Addr()),
		"page", fmt.Sprintf("%s://%s/", scheme, ln.Addr()), "auth", token != "")
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Run(ctx, ln, tc); err != nil {
			log.Error("query API stopped", "error", err)
		}
	}()
	return func() { <-done }, nil
}
