package serve

// Any instance answers any key. Every weft run instance advertises the URL
// of its query API in the user data of its consumer group subscriptions
// (JoinGroup member metadata, AdvertiseUserData); the group coordinator
// keeps it beside each member's assignment. A request for a key whose
// partition this instance does not serve asks the coordinator who holds
// it (DescribeGroups of the table's group: partition → member → advertised
// URL, cached for ownersTTL) and forwards the request there with a reverse
// proxy (same path and query, the Authorization header, and the query
// span's trace context as traceparent), or, with ?redirect=true, answers
// 307 with the owner's URL. A forwarded request carries Weft-Forwarded-By
// and is never forwarded again: an instance that does not serve the key
// either answers 503. So do instances that find no owner (a rebalance in
// progress, a member that advertises nothing) and owners that do not
// answer, always with Retry-After. User data rather than the client id:
// the client id is what quotas and broker logs see, and it travels in
// every request; the subscription metadata is the group protocol's own
// place for member data.

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/weftstream/weft/kafkaclient"
	"github.com/weftstream/weft/processors"
	"github.com/weftstream/weft/tracing"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Headers of forwarded requests and their answers.
const (
	// HeaderForwardedBy marks a request forwarded by another instance (its
	// advertised URL): it is not forwarded again.
	HeaderForwardedBy = "Weft-Forwarded-By"
	// HeaderServedBy names the instance (its advertised URL) that answered
	// a forwarded request.
	HeaderServedBy = "Weft-Served-By"
)

// userDataPrefix starts the group user data of an advertised query API.
const userDataPrefix = "weft-query-api="

// AdvertiseUserData returns the consumer group user data that advertises
// the query API at apiURL (e.g. "http://10.0.0.5:7070"), for
// kafkaclient.Config.GroupUserData; nil for an empty URL.
func AdvertiseUserData(apiURL string) []byte {
	if apiURL == "" {
		return nil
	}
	return []byte(userDataPrefix + apiURL)
}

// advertised returns the query API URL in a member's user data, or "".
func advertised(userData []byte) string {
	s, ok := strings.CutPrefix(string(userData), userDataPrefix)
	if !ok {
		return ""
	}
	return s
}

// How long owners are cached, and how often a miss may ask again.
const (
	ownersTTL        = 5 * time.Second
	ownersMinRefresh = 500 * time.Millisecond
	describeTimeout  = 3 * time.Second
)

// WithForwarding forwards a request for a key that this instance does not
// serve to the instance that does, found in the consumer group of the
// key's table on the cluster k describes; self is this instance's
// advertised URL (may be empty when it advertises none). Without it
// (the default), or with no brokers in k, such requests are answered 503.
func WithForwarding(k kafkaclient.Config, self string) Option {
	return func(c *config) {
		c.forward = nil
		if len(k.Brokers) > 0 {
			c.forward = &forwardConfig{kafka: k, self: self}
		}
	}
}

type forwardConfig struct {
	kafka kafkaclient.Config
	self  string
}

// forwarder finds the owners of partitions and proxies to them.
type forwarder struct {
	self      string
	cl        *kgo.Client
	adm       *kadm.Client
	transport http.RoundTripper
	errorLog  *log.Logger // of the proxies: what their ErrorHandler does not see
	buffers   proxyBuffers
	s         *Server

	mu     sync.Mutex // held while describing: concurrent misses wait for one answer
	owners map[string]*owners
}

// owners is the advertised URL of each partition's owner in a group.
type owners struct {
	at          time.Time
	byPartition map[int32]string
}

func newForwarder(s *Server, fc *forwardConfig) (*forwarder, error) {
	opts, err := fc.kafka.FranzOptions()
	if err != nil {
		return nil, fmt.Errorf("serve: forwarding: %w", err)
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("serve: forwarding: Kafka client: %w", err)
	}
	base := &http.Transport{
		Proxy:                 nil,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 10 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	// The client span of the hop, child of the query span: its context
	// goes to the owner as traceparent.
	tr := &hopTransport{base: base, tracer: s.cfg.tracerProvider.Tracer(tracerName), prop: tracing.Propagator()}
	return &forwarder{self: fc.self, cl: cl, adm: kadm.NewClient(cl), transport: tr, s: s,
		errorLog: slog.NewLogLogger(s.cfg.logger.Handler(), slog.LevelDebug), owners: map[string]*owners{}}, nil
}

func (f *forwarder) close() { f.cl.Close() }

// proxyBufferSize is the size of a proxy's copy buffer (ReverseProxy's
// own default).
const proxyBufferSize = 32 << 10

// proxyBuffers are the copy buffers of the forwarding proxies, reused:
// without a pool, httputil.ReverseProxy makes (and clears) a 32 KiB
// buffer for every answer it copies, the largest cost of a forwarded
// read after the system calls in the CPU profile of
// BenchmarkIntegrationForwardPointRead.
type proxyBuffers struct{ pool sync.Pool }

// Get implements httputil.BufferPool.
func (b *proxyBuffers) Get() []byte {
	if p, ok := b.pool.Get().(*[]byte); ok {
		return *p
	}
	return make([]byte, proxyBufferSize)
}

// Put implements httputil.BufferPool.
func (b *proxyBuffers) Put(buf []byte) {
	if cap(buf) == proxyBufferSize {
		buf = buf[:proxyBufferSize]
		b.pool.Put(&buf)
	}
}

// owner returns the advertised URL of the instance that holds partition p
// of group, "" if none is known (or it is this instance).
func (f *forwarder) owner(ctx context.Context, group string, p int32) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	o := f.owners[group]
	if o != nil {
		u := o.byPartition[p]
		age := time.Since(o.at)
		if (u != "" && u != f.self && age < ownersTTL) || age < ownersMinRefresh {
			return f.notSelf(u), nil
		}
	}
	// Other requests wait for this answer: a client that leaves does not
	// cut it short.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), describeTimeout)
	defer cancel()
	fresh, err := f.describe(ctx, group)
	if err != nil {
		// Keep what was known (an owner that no longer holds the key
		// answers 503) for a while rather than asking on every request.
		if o == nil {
			o = &owners{}
		}
		f.owners[group] = &owners{at: time.Now(), byPartition: o.byPartition}
		return f.notSelf(o.byPartition[p]), err
	}
	f.owners[group] = fresh
	return f.notSelf(fresh.byPartition[p]), nil
}

func (f *forwarder) notSelf(u string) string {
	if u == f.self {
		return ""
	}
	return u
}

// forget drops the owners of group: the next request asks again.
func (f *forwarder) forget(group string) {
	f.mu.Lock()
	delete(f.owners, group)
	f.mu.Unlock()
}

// describe asks the group coordinator for the members of group, their
// assignments and advertised URLs. A group that is rebalancing has no
// assignments: no owners.
func (f *forwarder) describe(ctx context.Context, group string) (*owners, error) {
	ds, err := f.adm.DescribeGroups(ctx, group)
	if err != nil {
		return nil, fmt.Errorf("describe group %s: %w", group, err)
	}
	g, ok := ds[group]
	if !ok {
		return nil, fmt.Errorf("describe group %s: not in the answer", group)
	}
	if g.Err != nil {
		return nil, fmt.Errorf("describe group %s: %w", group, g.Err)
	}
	o := &owners{at: time.Now(), byPartition: map[int32]string{}}
	for _, m := range g.Members {
		join, ok := m.Join.AsConsumer()
		if !ok {
			continue
		}
		u := advertised(join.UserData)
		asg, ok := m.Assigned.AsConsumer()
		if u == "" || !ok {
			continue
		}
		// The group's inputs are copartitioned: partition p of any of
		// them goes with partition p of the table.
		for _, t := range asg.Topics {
			for _, p := range t.Partitions {
				o.byPartition[p] = u
			}
		}
	}
	return o, nil
}

// notServed answers a request for key, whose partition this instance does
// not serve: forwarded to (or redirected to) its owner when one is known,
// else 503.
func (s *Server) notServed(w http.ResponseWriter, r *http.Request, t *processors.TableReader, key string) {
	f := s.forwarder
	if f == nil || key == "" || r.Header.Get(HeaderForwardedBy) != "" {
		unavailable(w, t, key)
		return
	}
	group, p := string(t.Group()), t.Partition(key)
	owner, err := f.owner(r.Context(), group, p)
	if err != nil {
		s.cfg.logger.Warn("finding the owner of a partition failed", "table", t.Topic(), "partition", p, "owner_known", owner, "error", err)
	}
	target, perr := url.Parse(owner)
	if owner == "" || perr != nil || target.Host == "" {
		unavailable(w, t, key)
		return
	}
	span := trace.SpanFromContext(r.Context())
	span.SetAttributes(attribute.String("weft.query.forwarded_to", owner))
	if r.URL.Query().Get("redirect") == "true" {
		q := r.URL.Query()
		q.Del("redirect")
		loc := *target
		loc.Path, loc.RawPath, loc.RawQuery = r.URL.Path, r.URL.RawPath, q.Encode()
		http.Redirect(w, r, loc.String(), http.StatusTemporaryRedirect)
		return
	}
	by := f.self
	if by == "" {
		by = "unadvertised"
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.SetXForwarded()
			pr.Out.Header.Set(HeaderForwardedBy, by)
		},
		Transport:  f.transport,
		ErrorLog:   f.errorLog,
		BufferPool: &f.buffers,
		ModifyResponse: func(resp *http.Response) error {
			resp.Header.Set(HeaderServedBy, owner)
			if resp.StatusCode == http.StatusServiceUnavailable {
				f.forget(group) // moved meanwhile: ask again next time
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			f.forget(group)
			if errors.Is(r.Context().Err(), context.Canceled) {
				return // the client left
			}
			s.cfg.logger.Warn("forwarding a query failed", "table", t.Topic(), "partition", p, "owner", owner, "error", err)
			tracing.RecordError(span, err)
			writeProblem(w, http.StatusServiceUnavailable,
				fmt.Sprintf("partition %d of %s, which holds this key, is held by %s, which did not answer; retry", p, t.Topic(), owner),
				withTable(group), withKey(key), withPartition(p))
		},
	}
	proxy.ServeHTTP(w, r)
}
