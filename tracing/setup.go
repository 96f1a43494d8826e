package tracing

import (
	"context"
	"errors"
	"fmt"
	"os"

	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"
)

// DefaultSpanQueueSize is the batch span processor's queue size unless
// OTEL_BSP_MAX_QUEUE_SIZE says otherwise.
const DefaultSpanQueueSize = 16384

// Providers are the tracer and meter providers weft uses.
type Providers struct {
	Tracer trace.TracerProvider
	Meter  metric.MeterProvider
	// TracingEnabled is false when no trace exporter is configured.
	TracingEnabled bool
	shutdown       []func(context.Context) error
	spans          sdktrace.SpanProcessor
	resource       *resource.Resource
}

// WithSampler returns a tracer provider that exports through the same
// pipeline as Tracer but samples with s, for a processor or a replay job
// whose sampling differs from OTEL_TRACES_SAMPLER. Without an exporter it
// returns Unexported().
func (p *Providers) WithSampler(s sdktrace.Sampler) trace.TracerProvider {
	if !p.TracingEnabled {
		return Unexported()
	}
	return sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p.spans), sdktrace.WithResource(p.resource), sdktrace.WithSampler(s))
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
//   - OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG choose the sampler and
//     OTEL_BSP_* tune the batch span processor (read by the OTel SDK; the
//     queue defaults to DefaultSpanQueueSize spans instead of 2048);
//   - OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES describe the service
//     (service.name defaults to "weft");
//   - metrics are exported when OTEL_METRICS_EXPORTER is set.
func Setup(ctx context.Context) (*Providers, error) {
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName("weft")),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(),
	)
	if err != nil {
		return nil, fmt.Errorf("build OpenTelemetry resource from OTEL_RESOURCE_ATTRIBUTES/OTEL_SERVICE_NAME: %w", err)
	}
	p := &Providers{Tracer: Unexported(), Meter: metricnoop.NewMeterProvider()}
	if configured("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
		exp, err := autoexport.NewSpanExporter(ctx)
		if err != nil {
			return nil, fmt.Errorf("create trace exporter from OTEL_TRACES_EXPORTER/OTEL_EXPORTER_OTLP_*: %w", err)
		}
		if !autoexport.IsNoneSpanExporter(exp) {
			var bsp []sdktrace.BatchSpanProcessorOption
			if os.Getenv("OTEL_BSP_MAX_QUEUE_SIZE") == "" {
				// A stream processor ends spans in bursts; the SDK's
				// default queue (2048) drops spans under load.
				bsp = append(bsp, sdktrace.WithMaxQueueSize(DefaultSpanQueueSize))
			}
			p.spans, p.resource = sdktrace.NewBatchSpanProcessor(exp, bsp...), res
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p.spans), sdktrace.WithResource(res))
			p.Tracer, p.TracingEnabled = tp, true
			p.shutdown = append(p.shutdown, tp.Shutdown)
		}
	}
	if configured("OTEL_METRICS_EXPORTER") {
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
	return p, nil
}
