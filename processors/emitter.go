package processors

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/weftstream/weft/tracing"
	"go.opentelemetry.io/otel/trace"
)

// Emitter publishes raw records to one topic with weft's producer settings
// (acks=all, idempotence) and goka's partitioner, so that records land in
// the partition a goka processor of the same key expects.
type Emitter struct {
	topic  string
	em     *goka.Emitter
	tracer *tracing.Tracer

	wg       sync.WaitGroup
	mu       sync.Mutex
	firstErr error
	sent     int64
}

// NewEmitter creates the topic if it is missing and returns an Emitter.
// WithTracerProvider sets the provider of Publish's spans.
func NewEmitter(ctx context.Context, topic string, opts ...Option) (*Emitter, error) {
	cfg, err := buildConfig("NewEmitter", emitterOptions, opts)
	if err != nil {
		return nil, err
	}
	sc, err := cfg.kafka.Sarama(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := cfg.kafka.EnsureTopic(sc, topic); err != nil {
		return nil, err
	}
	em, err := goka.NewEmitter(cfg.kafka.Brokers, goka.Stream(topic), new(codec.Bytes), cfg.kafka.EmitterOptions(sc)...)
	if err != nil {
		return nil, cfg.kafka.Explain(fmt.Errorf("create producer for %s: %w", topic, err))
	}
	tp := cfg.tracerProvider
	if tp == nil {
		tp = tracing.Unexported()
	}
	return &Emitter{topic: topic, em: em, tracer: tracing.NewTracer(tp)}, nil
}

// Emit sends a record asynchronously; Close reports the first failure.
func (e *Emitter) Emit(key string, value []byte, headers map[string]string) {
	var h goka.Headers
	if len(headers) > 0 {
		h = make(goka.Headers, len(headers))
		for k, v := range headers {
			h[k] = []byte(v)
		}
	}
	e.EmitHeaders(key, value, h, nil)
}

// EmitHeaders sends a record asynchronously and calls done (if not nil)
// with the outcome once the brokers acknowledged it or the produce failed.
func (e *Emitter) EmitHeaders(key string, value []byte, headers goka.Headers, done func(error)) {
	e.wg.Add(1)
	finish := func(err error) {
		if err != nil {
			e.fail(err)
		} else {
			e.mu.Lock()
			e.sent++
			e.mu.Unlock()
		}
		if done != nil {
			done(err)
		}
		e.wg.Done()
	}
	p, err := e.em.EmitWithHeaders(key, value, headers)
	if err != nil {
		finish(err)
		return
	}
	p.Then(finish)
}

// Publish sends a record the way a service publishing events should: in a
// span "send <topic>" (kind PRODUCER) that is a child of the span in ctx,
// or of the traceparent in headers when ctx has none, and whose context
// goes into the record's traceparent header. The span ends when the brokers
// acknowledge the record (status Error if the produce fails); done, if not
// nil, is called then.
func (e *Emitter) Publish(ctx context.Context, key string, value []byte, headers map[string]string, done func(error)) {
	h := make(goka.Headers, len(headers)+2)
	for k, v := range headers {
		h[k] = []byte(v)
	}
	if !trace.SpanContextFromContext(ctx).IsValid() {
		ctx = e.tracer.Extract(ctx, h)
	}
	_, span := e.tracer.StartSend(ctx, e.topic, key, h)
	e.EmitHeaders(key, value, h, func(err error) {
		if err != nil {
			tracing.RecordError(span, err)
		}
		span.End()
		if done != nil {
			done(err)
		}
	})
}

// Flush waits until every record emitted so far is acknowledged (or
// failed).
func (e *Emitter) Flush() { e.wg.Wait() }

func (e *Emitter) fail(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.firstErr == nil {
		e.firstErr = fmt.Errorf("produce to %s: %w", e.topic, err)
	}
}

// Sent returns the number of records the brokers acknowledged.
func (e *Emitter) Sent() int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.sent
}

// Close waits for every record to be acknowledged, closes the producer and
// returns the first failure.
func (e *Emitter) Close() error {
	e.wg.Wait()
	err := e.em.Finish()
	e.mu.Lock()
	defer e.mu.Unlock()
	return errors.Join(e.firstErr, err)
}
