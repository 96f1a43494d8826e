package serve

import (
	"io"
	"net/http"
	"sync"

	"github.com/weftstream/weft/tracing"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// traced runs h, behind the bearer token, in a span "query <table>" of
// kind SERVER, child of the request's traceparent, with the attributes of
// the OTel HTTP server conventions weft's queries need (method, route,
// path, status). It does what otelhttp.NewHandler did here for a third
// of the CPU: no response body wrapping, no metrics, no attributes
// computed from headers nobody reads.
func (s *Server) traced(route string, h http.HandlerFunc) http.Handler {
	tracer := s.cfg.tracerProvider.Tracer(tracerName)
	prop := tracing.Propagator()
	inner := s.auth(h)
	routeAttr := attribute.String("http.route", route)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := tracer.Start(ctx, "query "+r.PathValue("table"), trace.WithSpanKind(trace.SpanKindServer))
		defer span.End()
		if span.IsRecording() {
			span.SetAttributes(attribute.String("http.request.method", r.Method), routeAttr,
				attribute.String("url.path", r.URL.Path), attribute.String("url.scheme", scheme(r)))
		}
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		inner(sw, r.WithContext(ctx))
		if span.IsRecording() {
			span.SetAttributes(attribute.Int("http.response.status_code", sw.status))
			if sw.status >= 500 {
				span.SetStatus(codes.Error, "")
			}
		}
	})
}

func scheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

// statusWriter records the status of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (flushes,
// deadlines).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// hopTransport runs every request in a span "forward <host>" of kind
// CLIENT, child of the request's context, whose context goes to the
// owner as traceparent: what otelhttp.NewTransport did here, without its
// per-request httptrace and body wrapping.
type hopTransport struct {
	base   http.RoundTripper
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
}

func (t *hopTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	ctx, span := t.tracer.Start(r.Context(), "forward "+r.URL.Host, trace.WithSpanKind(trace.SpanKindClient))
	if span.IsRecording() {
		span.SetAttributes(attribute.String("http.request.method", r.Method), attribute.String("server.address", r.URL.Host),
			attribute.String("url.full", r.URL.Redacted()))
	}
	r = r.Clone(ctx) // a RoundTripper must not change the caller's request
	t.prop.Inject(ctx, propagation.HeaderCarrier(r.Header))
	resp, err := t.base.RoundTrip(r)
	if err != nil {
		tracing.RecordError(span, err)
		span.End()
		return nil, err
	}
	if span.IsRecording() {
		span.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
		if resp.StatusCode >= 500 {
			span.SetStatus(codes.Error, "")
		}
	}
	// The hop lasts until its answer is read (a watch stream: its end).
	resp.Body = &endOnClose{ReadCloser: resp.Body, span: span}
	return resp, nil
}

// endOnClose ends a span when the body is closed.
type endOnClose struct {
	io.ReadCloser
	span trace.Span
	once sync.Once
}

func (b *endOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(func() { b.span.End() })
	return err
}
