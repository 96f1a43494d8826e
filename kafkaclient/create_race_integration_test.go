package kafkaclient_test

import (
	"sync"
	"testing"

	"github.com/weftstream/weft/internal/kafkatest"
	"github.com/weftstream/weft/kafkaclient"
)

// Instances of one application that start at the same time all create
// its topics: each must succeed, whichever of them created a topic (on
// real Kafka the losers got "Topic with this name already exists" and
// exited).
func TestIntegrationConcurrentTopicCreation(t *testing.T) {
	c := kafkaclient.Config{Brokers: kafkatest.Brokers(t), Partitions: 4}
	sc, err := c.Sarama(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for round := range 5 {
		topic, table := kafkatest.Topic(t, "race"), kafkatest.Topic(t, "race-table")
		var wg sync.WaitGroup
		errs := make([]error, 8)
		parts := make([]int, 8)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if i%2 == 0 {
					parts[i], errs[i] = c.EnsureTopic(sc, topic)
				} else {
					parts[i] = 4
					errs[i] = c.EnsureTable(sc, table)
				}
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("round %d, instance %d: %v", round, i, err)
			} else if parts[i] != 4 {
				t.Errorf("round %d, instance %d: %d partitions, want 4", round, i, parts[i])
			}
		}
	}
}
