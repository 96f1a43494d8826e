package processors

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
)

// Emitter publishes raw records to one topic with weft's producer settings
// (acks=all, idempotence) and goka's partitioner, so that records land in
// the partition a goka processor of the same key expects.
type Emitter struct {
	topic string
	em    *goka.Emitter

	wg       sync.WaitGroup
	mu       sync.Mutex
	firstErr error
	sent     int64
}

// NewEmitter creates the topic if it is missing and returns an Emitter.
func NewEmitter(ctx context.Context, topic string, opts ...Option) (*Emitter, error) {
	cfg := buildConfig(opts)
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
	return &Emitter{topic: topic, em: em}, nil
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
