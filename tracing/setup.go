package tracing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"
)

// DefaultSpanQueueSize is how many ended spans may wait for the exporter
// unless OTEL_BSP_MAX_QUEUE_SIZE or WithSpanQueueSize says otherwise. A
// stream processor ends spans in bursts; the SDK's default (2048) drops
// spans under load.
const DefaultSpanQueueSize = 16384

// Providers are the tracer and meter providers weft uses.
type Providers struct {
	Tracer trace.TracerProvider
	Meter  metric.MeterProvider
	// TracingEnabled is false when no trace exporter is configured.
	TracingEnabled bool
	shutdown       []func(context.Context) error
	spans          *spanQueue
	resource       *resource.Resource
}

// DroppedSpans returns the number of spans ended but not exported so far
// (the sum of MetricSpansDropped): 0 without an exporter.
func (p *Providers) DroppedSpans() int64 {
	if p.spans == nil {
		return 0
	}
	return p.spans.drops.dropped()
}

// WithSampler returns a tracer provider that exports through the same
// pipeline as Tracer but samples with s, for a processor or a replay job
// whose sampling differs from OTEL_TRACES_SAMPLER. Without an exporter it
// returns Unexported().
func (p *Providers) WithSampler(s sdktrace.Sampler) trace.TracerProvider {
	if !p.TracingEnabled {
		return Unexported()
	}
	return NewSampledProvider(s, sdktrace.WithSpanProcessor(p.spans), sdktrace.WithResource(p.resource))
}

// Shutdown flushes and stops the providers.
func (p *Providers) Shutdown(ctx context.Context) error {
	var errs []error
	for _, f := range p.shutdown {
		errs = append(errs, f(ctx))
	}
	return errors.Join(errs...)
}

// configured reports whether any of the environment variables is set.
func configured(vars ...string) bool {
	for _, v := range vars {
		if os.Getenv(v) != "" {
			return true
		}
	}
	return false
}

// SetupOption configures Setup beyond the environment.
type SetupOption func(*setupConfig)

type setupConfig struct {
	exporter  sdktrace.SpanExporter
	meter     metric.MeterProvider
	log       *slog.Logger
	queueSize int
	blocking  *bool
	warnEvery time.Duration
}

// WithSpanExporter exports spans through exp (e.g. an exporter built in
// code) instead of the one OTEL_TRACES_EXPORTER names; it enables tracing.
// Setup's Providers shut exp down.
func WithSpanExporter(exp sdktrace.SpanExporter) SetupOption {
	return func(c *setupConfig) { c.exporter = exp }
}

// WithMeterProvider records weft's metrics (e.g. MetricSpansDropped) with
// mp instead of a meter provider built from OTEL_METRICS_EXPORTER. The
// caller shuts mp down.
func WithMeterProvider(mp metric.MeterProvider) SetupOption {
	return func(c *setupConfig) { c.meter = mp }
}

// WithLogger sets the logger of the dropped-spans warnings (default
// slog.Default(); nil keeps it).
func WithLogger(l *slog.Logger) SetupOption {
	return func(c *setupConfig) {
		if l != nil {
			c.log = l
		}
	}
}

// WithSpanQueueSize sets how many ended spans may wait for the exporter
// (overriding OTEL_BSP_MAX_QUEUE_SIZE; n <= 0 keeps it).
func WithSpanQueueSize(n int) SetupOption {
	return func(c *setupConfig) { c.queueSize = n }
}

// WithBlockingSpanQueue sets whether ending a span waits for room in a
// full span queue instead of dropping the span (overriding
// WEFT_TRACES_BLOCKING).
func WithBlockingSpanQueue(blocking bool) SetupOption {
	return func(c *setupConfig) { c.blocking = &blocking }
}

// WithDropWarningInterval sets how often, at most, dropped spans are
// logged (default DefaultDropWarningInterval).
func WithDropWarningInterval(d time.Duration) SetupOption {
	return func(c *setupConfig) { c.warnEvery = d }
}

// Setup builds providers from the standard OpenTelemetry environment
// variables, so that Jaeger, Tempo or any OTLP collector needs no weft
// setting:
//
//   - traces are exported when OTEL_TRACES_EXPORTER (otlp, console, none)
//     or an OTLP endpoint (OTEL_EXPORTER_OTLP_ENDPOINT,
//     OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set; otherwise spans are not
//     exported (see Unexported);
//   - OTEL_EXPORTER_OTLP_PROTOCOL, OTEL_EXPORTER_OTLP_HEADERS and the other
//     exporter variables are read by the exporters (go.opentelemetry.io
//     contrib autoexport);
//   - OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG choose the sampler;
//   - OTEL_BSP_MAX_QUEUE_SIZE is how many ended spans may wait for the
//     exporter (default DefaultSpanQueueSize instead of the SDK's 2048);
//     when the queue is full a span is dropped, unless
//     WEFT_TRACES_BLOCKING=true, which makes processing wait for the
//     exporter instead. Dropped spans (and spans of batches the exporter
//     failed) are counted in the MetricSpansDropped counter and logged as a
//     warning at most every DefaultDropWarningInterval (see spanQueue);
//     OTEL_BSP_SCHEDULE_DELAY, OTEL_BSP_EXPORT_TIMEOUT and
//     OTEL_BSP_MAX_EXPORT_BATCH_SIZE are read by the OTel SDK;
//   - OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES describe the service
//     (service.name defaults to "weft");
//   - metrics are exported when OTEL_METRICS_EXPORTER is set.
//
// Options override the environment.
func Setup(ctx context.Context, opts ...SetupOption) (*Providers, error) {
	cfg := setupConfig{log: slog.Default(), warnEvery: DefaultDropWarningInterval}
	for _, o := range opts {
		o(&cfg)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName("weft")),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(),
	)
	if err != nil {
		return nil, fmt.Errorf("build OpenTelemetry resource from OTEL_RESOURCE_ATTRIBUTES/OTEL_SERVICE_NAME: %w", err)
	}
	p := &Providers{Tracer: Unexported(), Meter: metricnoop.NewMeterProvider()}
	if cfg.meter != nil {
		p.Meter = cfg.meter
	} else if configured("OTEL_METRICS_EXPORTER") {
		reader, err := autoexport.NewMetricReader(ctx)
		if err != nil {
			return nil, fmt.Errorf("create metric reader from OTEL_METRICS_EXPORTER: %w", err)
		}
		if !autoexport.IsNoneMetricReader(reader) {
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader), sdkmetric.WithResource(res))
			p.Meter = mp
			p.shutdown = append(p.shutdown, mp.Shutdown)
		}
	}
	exp := cfg.exporter
	if exp == nil && configured("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
		e, err := autoexport.NewSpanExporter(ctx)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("create trace exporter from OTEL_TRACES_EXPORTER/OTEL_EXPORTER_OTLP_*: %w", err), p.Shutdown(ctx))
		}
		if !autoexport.IsNoneSpanExporter(e) {
			exp = e
		}
	}
	if exp == nil {
		return p, nil
	}
	qcfg, err := cfg.spanQueue(p.Meter.Meter(ScopeName))
	if err == nil {
		p.spans, err = newSpanQueue(exp, qcfg)
	}
	if err != nil {
		return nil, errors.Join(err, exp.Shutdown(ctx), p.Shutdown(ctx))
	}
	p.resource = res
	var tp interface {
		trace.TracerProvider
		Shutdown(context.Context) error
	}
	if s, ok := SamplerFromEnv(); ok {
		tp = NewSampledProvider(s, sdktrace.WithSpanProcessor(p.spans), sdktrace.WithResource(res))
	} else {
		tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p.spans), sdktrace.WithResource(res))
	}
	p.Tracer, p.TracingEnabled = tp, true
	p.shutdown = append([]func(context.Context) error{tp.Shutdown}, p.shutdown...)
	return p, nil
}

// spanQueue returns the span queue settings from the options and the
// environment.
func (c *setupConfig) spanQueue(meter metric.Meter) (spanQueueConfig, error) {
	q := spanQueueConfig{queueSize: c.queueSize, batchSize: sdktrace.DefaultMaxExportBatchSize,
		warnEvery: c.warnEvery, log: c.log, meter: meter}
	if q.queueSize <= 0 {
		n, err := positiveEnv("OTEL_BSP_MAX_QUEUE_SIZE", DefaultSpanQueueSize)
		if err != nil {
			return q, err
		}
		q.queueSize = n
	}
	n, err := positiveEnv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", sdktrace.DefaultMaxExportBatchSize)
	if err != nil {
		return q, err
	}
	q.batchSize = n
	if c.blocking != nil {
		q.blocking = *c.blocking
	} else if v := os.Getenv("WEFT_TRACES_BLOCKING"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return q, fmt.Errorf("WEFT_TRACES_BLOCKING=%q must be true or false", v)
		}
		q.blocking = b
	}
	if q.warnEvery <= 0 {
		q.warnEvery = DefaultDropWarningInterval
	}
	return q, nil
}

// positiveEnv reads a positive whole number from the environment variable
// name, or returns def when it is unset.
func positiveEnv(name string, def int) (int, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s=%q is %w", name, v, errNotPositive)
	}
	return n, nil
}

// errNotPositive is returned for a size setting that is not a positive
// whole number.
var errNotPositive = errors.New("not a positive whole number")
