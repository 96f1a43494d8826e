package serve

// What /readyz asks: the processors' assignments, the tables' partitions
// and the Kafka cluster.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/weftstream/weft/kafkaclient"
	"github.com/weftstream/weft/processors"
)

// Bounds of the cluster check of WithBrokerCheck.
const (
	// brokerCheckEvery is how long an answer of the cluster is reused.
	brokerCheckEvery = time.Second
	// brokerCheckTimeout bounds one check.
	brokerCheckTimeout = time.Second
)

// WithProcessors makes /readyz ready only while each of procs is
// (processors.Processor.Ready): its consumer group's join complete, a
// current assignment held, every partition assigned to it restored. The
// tables' partitions alone cannot tell: a group that is joining or
// rebalancing holds no partition, and a group without a table has none
// to restore.
func WithProcessors(procs ...*processors.Processor) Option {
	return func(c *config) { c.processors = append(c.processors, procs...) }
}

// WithBrokerCheck makes /readyz ready only while the Kafka cluster k
// describes answers: one of its brokers answers an ApiVersions request
// within a second. An answer is reused for a second, so probes cost the
// cluster at most one request a second. With no brokers in k it checks
// nothing.
func WithBrokerCheck(k kafkaclient.Config) Option {
	return func(c *config) {
		c.brokerCheck = nil
		if len(k.Brokers) > 0 {
			c.brokerCheck = &k
		}
	}
}

// readiness is the default of what /readyz asks: every processor of
// WithProcessors ready, every table's assigned partitions restored, the
// cluster of WithBrokerCheck reachable; nil when all hold.
func (s *Server) readiness() error {
	var why []string
	for _, p := range s.cfg.processors {
		if err := p.Ready(); err != nil {
			why = append(why, err.Error())
		}
	}
	if len(why) == 0 { // (a processor restoring says so; its table would say it again)
		if err := s.restored(); err != nil {
			why = append(why, err.Error())
		}
	}
	if s.brokers != nil {
		if err := s.brokers.check(); err != nil {
			why = append(why, err.Error())
		}
	}
	if len(why) > 0 {
		return errors.New(strings.Join(why, "; "))
	}
	return nil
}

// restored is every partition of every table restored on this instance,
// or held by no one here.
func (s *Server) restored() error {
	for _, name := range s.names {
		t := s.tables[name]
		if len(t.Served()) < len(t.Assigned()) {
			return fmt.Errorf("table %s is restoring: %d of %d assigned partitions ready", name, len(t.Served()), len(t.Assigned()))
		}
	}
	return nil
}

// brokerProbe asks the cluster whether it answers, at most once a
// second: concurrent probes wait for one answer.
type brokerProbe struct {
	cl      *kgo.Client
	brokers string

	mu  sync.Mutex
	at  time.Time // of the last answer
	err error     // the last answer
}

func newBrokerProbe(k kafkaclient.Config) (*brokerProbe, error) {
	opts, err := k.FranzOptions()
	if err != nil {
		return nil, fmt.Errorf("serve: broker check: %w", err)
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("serve: broker check: Kafka client: %w", err)
	}
	return &brokerProbe{cl: cl, brokers: strings.Join(k.Brokers, ",")}, nil
}

// check returns nil if the cluster answered within the last second or
// answers now.
func (b *brokerProbe) check() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.at.IsZero() && time.Since(b.at) < brokerCheckEvery {
		return b.err
	}
	ctx, cancel := context.WithTimeout(context.Background(), brokerCheckTimeout)
	defer cancel()
	b.err = nil
	if err := b.cl.Ping(ctx); err != nil {
		b.err = fmt.Errorf("the Kafka cluster at %s does not answer: %w", b.brokers, err)
	}
	b.at = time.Now()
	return b.err
}

func (b *brokerProbe) close() { b.cl.Close() }
