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
		topic, table, loop := kafkatest.Topic(t, "race"), kafkatest.Topic(t, "race-table"), kafkatest.Topic(t, "race-loop")
		var wg sync.WaitGroup
		errs := make([]error, 12)
		parts := make([]int, 12)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				switch i % 3 {
				case 0:
					parts[i], errs[i] = c.EnsureTopic(sc, topic)
				case 1:
					parts[i] = 4
					errs[i] = c.EnsureTable(sc, table)
				default:
					// goka's processors create their loop topics
					// themselves, through the topic manager weft gives them.
					parts[i] = 4
					tm, err := c.TopicManagerBuilder(sc)(c.Brokers)
					if err != nil {
						errs[i] = err
						return
					}
					defer tm.Close()
					errs[i] = tm.EnsureStreamExists(loop, 4)
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
