package tracing

import (
	"context"
	"net"
	"strconv"
	"sync"

	"github.com/lovoo/goka"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"
)

// Record describes a consumed Kafka record.
type Record struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       string
	Group     string // consumer group
	Headers   goka.Headers
}

// Tracer starts weft's messaging spans with one tracer and propagator.
type Tracer struct {
	tracer     trace.Tracer
	propagator propagation.TextMapPropagator
	// Span names and constant attributes per consumed partition, built once.
	processAttrs sync.Map             // partitionKey -> *processSpanInfo
	server       []attribute.KeyValue // server.address and server.port, if known
	unexported   bool                 // the provider is Unexported (see StartProcessSpan)
	// consumerOpts is the options of a process span without others, made
	// once: a variadic argument of the tracer's Start (an interface
	// method) escapes to the heap.
	consumerOpts []trace.SpanStartOption
	sampler      sdktrace.Sampler // the provider's, if it is a SampledProvider
}

type partitionKey struct {
	topic, group string
	partition    int32
}

type processSpanInfo struct {
	name  string
	attrs []attribute.KeyValue // the attributes that do not change per record
}

var consumerKind = trace.WithSpanKind(trace.SpanKindConsumer)

// NewTracer returns a Tracer using tp and the W3C propagator.
func NewTracer(tp trace.TracerProvider, opts ...TracerOption) *Tracer {
	_, unexported := tp.(unexportedProvider)
	t := &Tracer{tracer: tp.Tracer(ScopeName), propagator: Propagator(), unexported: unexported,
		consumerOpts: []trace.SpanStartOption{consumerKind}}
	if sp, ok := tp.(*SampledProvider); ok {
		t.sampler = sp.sampler
	}
	for _, o := range opts {
		o(t)
	}
	return t
}

// TracerOption configures NewTracer.
type TracerOption func(*Tracer)

// WithBrokers gives the Tracer the Kafka bootstrap brokers (host:port), for
// the server.address and server.port attributes of process spans. They are
// set only when there is exactly one: a record comes from its partition's
// leader, which weft's callbacks do not know when there are several
// brokers to choose from. An address that is not host:port with a numeric
// port is left out.
func WithBrokers(brokers []string) TracerOption {
	return func(t *Tracer) {
		if len(brokers) != 1 {
			return
		}
		host, port, err := net.SplitHostPort(brokers[0])
		if err != nil || host == "" {
			return
		}
		n, err := strconv.Atoi(port)
		if err != nil || n <= 0 || n > 65535 {
			return
		}
		t.server = []attribute.KeyValue{semconv.ServerAddress(host), semconv.ServerPort(n)}
	}
}

// ScopeName is the instrumentation scope of weft's spans.
const ScopeName = "github.com/weftstream/weft"

// Extract returns ctx with the remote span context and baggage found in
// headers. A missing or malformed traceparent leaves ctx without one.
func (t *Tracer) Extract(ctx context.Context, headers goka.Headers) context.Context {
	if len(headers) == 0 {
		return ctx
	}
	if sc, ok := traceparentOnly(headers); ok {
		// What the propagator finds, without its string copies.
		if !sc.IsValid() {
			return ctx
		}
		return trace.ContextWithRemoteSpanContext(ctx, sc)
	}
	return t.propagator.Extract(ctx, HeaderCarrier(headers))
}

// Inject writes the trace context (and baggage) of ctx into headers, which
// must be non-nil.
func (t *Tracer) Inject(ctx context.Context, headers goka.Headers) {
	t.propagator.Inject(ctx, HeaderCarrier(headers))
}

// StartProcess starts the span "process <topic>" (kind CONSUMER) for a
// consumed record: a child of the record's traceparent when it is valid, a
// new root otherwise. Attributes follow the OTel messaging conventions and
// are only built when the span is sampled; server.address/server.port
// when known (WithBrokers).
func (t *Tracer) StartProcess(ctx context.Context, rec Record, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	ctx = t.Extract(ctx, rec.Headers)
	info := t.processSpan(rec)
	var span trace.Span
	if len(opts) == 0 {
		ctx, span = t.tracer.Start(ctx, info.name, t.consumerOpts...)
	} else {
		ctx, span = t.tracer.Start(ctx, info.name, append(opts, consumerKind)...)
	}
	if span.IsRecording() {
		attrs := make([]attribute.KeyValue, 0, len(info.attrs)+2)
		attrs = append(attrs, info.attrs...)
		attrs = append(attrs, semconv.MessagingKafkaOffset(int(rec.Offset)), semconv.MessagingKafkaMessageKey(rec.Key))
		span.SetAttributes(attrs...)
	}
	return ctx, span
}

func (t *Tracer) processSpan(rec Record) *processSpanInfo {
	k := partitionKey{topic: rec.Topic, group: rec.Group, partition: rec.Partition}
	if v, ok := t.processAttrs.Load(k); ok {
		return v.(*processSpanInfo)
	}
	info := &processSpanInfo{
		name: "process " + rec.Topic,
		attrs: []attribute.KeyValue{
			semconv.MessagingSystemKafka,
			semconv.MessagingOperationTypeProcess,
			semconv.MessagingOperationName("process"),
			semconv.MessagingDestinationName(rec.Topic),
			semconv.MessagingDestinationPartitionID(strconv.Itoa(int(rec.Partition))),
			semconv.MessagingConsumerGroupName(rec.Group),
		},
	}
	info.attrs = append(info.attrs, t.server...)
	v, _ := t.processAttrs.LoadOrStore(k, info)
	return v.(*processSpanInfo)
}

// StartSend starts the span "send <topic>" (kind PRODUCER) for a record a
// service publishes, and injects its context into headers (non-nil).
func (t *Tracer) StartSend(ctx context.Context, topic, key string, headers goka.Headers, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	opts = append(opts, trace.WithSpanKind(trace.SpanKindProducer))
	ctx, span := t.tracer.Start(ctx, "send "+topic, opts...)
	if span.IsRecording() {
		span.SetAttributes(
			semconv.MessagingSystemKafka,
			semconv.MessagingOperationTypeSend,
			semconv.MessagingOperationName("send"),
			semconv.MessagingDestinationName(topic),
			semconv.MessagingKafkaMessageKey(key),
		)
	}
	t.Inject(ctx, headers)
	return ctx, span
}

// Start starts an internal span (e.g. "flush <table>") with the given kind.
func (t *Tracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	return t.tracer.Start(ctx, name, opts...)
}
