package kafkaclient

import (
	"fmt"

	"github.com/IBM/sarama"
)

// TopicIdentity names one incarnation of a topic on one cluster: a topic
// that is deleted and created again under the same name gets a new
// TopicID, and another cluster has another ClusterID (where the brokers
// report one: Kafka 2.8+ has topic ids, Kafka 0.10.1+ cluster ids).
type TopicIdentity struct {
	ClusterID string `json:"cluster_id"`
	TopicID   string `json:"topic_id"`
}

// Differs reports whether id and other name different incarnations; an
// empty field (a broker that does not report it) matches anything.
func (id TopicIdentity) Differs(other TopicIdentity) bool {
	differ := func(a, b string) bool { return a != "" && b != "" && a != b }
	return differ(id.ClusterID, other.ClusterID) || differ(id.TopicID, other.TopicID)
}

// askingClient connects a client that asks about topics: its metadata
// requests never create one.
func (c Config) askingClient(sc *sarama.Config) (sarama.Client, error) {
	cc := copyConfig(sc, "")
	cc.Metadata.AllowAutoTopicCreation = false // asking must not create
	client, err := sarama.NewClient(c.Brokers, cc)
	if err != nil {
		return nil, c.Explain(fmt.Errorf("connect: %w", err))
	}
	return client, nil
}

// TopicIdentities returns the identity of each of topics that exists
// (missing topics are not in the map), from one metadata request.
func (c Config) TopicIdentities(sc *sarama.Config, topics []string) (map[string]TopicIdentity, error) {
	c = c.WithDefaults()
	client, err := c.askingClient(sc)
	if err != nil {
		return nil, err
	}
	defer client.Close()
	b, err := client.Controller() // any connected broker answers metadata
	if err != nil {
		return nil, c.Explain(fmt.Errorf("find a broker to ask for topic ids: %w", err))
	}
	resp, err := b.GetMetadata(sarama.NewMetadataRequest(sc.Version, topics))
	if err != nil {
		return nil, c.Explain(fmt.Errorf("read the ids of topics %v: %w", topics, err))
	}
	cluster := ""
	if resp.ClusterID != nil {
		cluster = *resp.ClusterID
	}
	out := make(map[string]TopicIdentity, len(topics))
	for _, t := range resp.Topics {
		if t.Err != sarama.ErrNoError {
			continue // missing (ErrUnknownTopicOrPartition) or not ours to read
		}
		id := TopicIdentity{ClusterID: cluster}
		if t.Uuid != (sarama.Uuid{}) {
			id.TopicID = t.Uuid.String()
		}
		out[t.Name] = id
	}
	return out, nil
}
