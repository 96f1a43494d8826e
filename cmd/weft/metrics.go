package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/weftstream/weft/serve"
	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
)

// meterProvider returns the meter provider of weft run's metrics, served
// on GET /metrics of the query API (made once per process), for
// tracing.WithMeterProvider; nil without a query API (tracing then reads
// OTEL_METRICS_EXPORTER itself). With OTEL_METRICS_EXPORTER set, the same
// metrics are exported there too.
func (q *queryAPIFlags) meterProvider(ctx context.Context) (metric.MeterProvider, error) {
	if q.addr == "" {
		return nil, nil
	}
	m, err := q.ensureMetrics(ctx)
	if err != nil {
		return nil, err
	}
	return m.MeterProvider(), nil
}

// ensureMetrics makes the process's metrics on first use.
func (q *queryAPIFlags) ensureMetrics(ctx context.Context) (*serve.Metrics, error) {
	if q.metrics != nil {
		return q.metrics, nil
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName("weft")),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(),
	)
	if err != nil {
		return nil, fmt.Errorf("build OpenTelemetry resource from OTEL_RESOURCE_ATTRIBUTES/OTEL_SERVICE_NAME: %w", err)
	}
	var extra []sdkmetric.Reader
	if os.Getenv("OTEL_METRICS_EXPORTER") != "" {
		r, err := autoexport.NewMetricReader(ctx)
		if err != nil {
			return nil, fmt.Errorf("create metric reader from OTEL_METRICS_EXPORTER: %w", err)
		}
		if !autoexport.IsNoneMetricReader(r) {
			extra = append(extra, r)
		}
	}
	m, err := serve.NewMetrics(res, extra...)
	if err != nil {
		return nil, err
	}
	q.metrics = m
	return m, nil
}

// stopMetrics shuts the metrics down (flushing OTEL_METRICS_EXPORTER's
// reader, for at most 5 s).
func (q *queryAPIFlags) stopMetrics(log *slog.Logger) {
	if q.metrics == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := q.metrics.Shutdown(ctx); err != nil {
		log.Warn("stopping the metrics failed", "error", err)
	}
	q.metrics = nil
}
