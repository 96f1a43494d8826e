package kafkaclient

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/weftstream/weft/internal/kafkatest"
)

// TestGroupConfigOutwaitsRebalance checks the invariant the group client
// needs: its read timeout exceeds the rebalance timeout it asks for, while
// other clients keep sarama's read timeout.
func TestGroupConfigOutwaitsRebalance(t *testing.T) {
	sc := Config{Brokers: []string{"127.0.0.1:1"}}.WithDefaults().base()
	gc := GroupConfig(sc, "x")
	if gc.Net.ReadTimeout <= gc.Consumer.Group.Rebalance.Timeout {
		t.Fatalf("group client read timeout %s does not exceed the rebalance timeout %s", gc.Net.ReadTimeout, gc.Consumer.Group.Rebalance.Timeout)
	}
	if sc.Net.ReadTimeout != 30*time.Second {
		t.Fatalf("other clients' read timeout %s, want sarama's 30s", sc.Net.ReadTimeout)
	}
	if gc.ClientID != "x" || sc.ClientID != "weft" {
		t.Fatalf("client ids %q (group) %q (base)", gc.ClientID, sc.ClientID)
	}
	if err := gc.Validate(); err != nil {
		t.Fatal(err)
	}
}

// The test runs the group protocol scaled down: the joining member asks
// for a rebalance timeout of joinRebalance with a base read timeout of
// joinReadTimeout (as weft asks for 30 s with sarama's 30 s read timeout),
// and the dead member holds the rebalance for deadMemberRebalance, longer
// than the read timeout: without GroupConfig's longer read timeout the
// join fails with an i/o timeout.
const (
	joinRebalance       = 6 * time.Second
	joinReadTimeout     = 3 * time.Second
	deadMemberRebalance = 8 * time.Second
)

// TestIntegrationJoinBehindDeadMember reproduces a restart into a group
// whose previous member was killed while it joined: the coordinator holds
// the rebalance for that member's rebalance timeout, and the new member's
// JoinGroup is answered only then. weft's group client must wait for it
// instead of failing with an i/o timeout.
func TestIntegrationJoinBehindDeadMember(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic, group := kafkatest.Topic(t, "join"), kafkatest.Group(t, "join")
	kafkatest.CreateTopic(t, brokers, topic, 2)
	cfg := Config{Brokers: brokers}
	sc, err := cfg.Sarama(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	sc.Net.ReadTimeout = joinReadTimeout
	sc.Consumer.Group.Session.Timeout = 6 * time.Second // the brokers' minimum
	sc.Consumer.Group.Heartbeat.Interval = 2 * time.Second
	sc.Consumer.Group.Rebalance.Timeout = joinRebalance

	killMemberWhileJoining(t, cfg, sc, group, topic)

	cg, err := consumerGroupBuilder(sc)(brokers, group, "weft-test")
	if err != nil {
		t.Fatal(err)
	}
	defer cg.Close()
	var mu sync.Mutex
	var groupErrs []error
	go func() {
		for err := range cg.Errors() {
			mu.Lock()
			groupErrs = append(groupErrs, err)
			mu.Unlock()
		}
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 3*deadMemberRebalance)
	defer cancel()
	h := &setupHandler{joined: make(chan struct{})}
	start := time.Now()
	consumed := make(chan error, 1)
	go func() { consumed <- cg.Consume(ctx, []string{topic}, h) }()
	select {
	case <-h.joined:
		took := time.Since(start)
		t.Logf("joined after %s", took.Round(time.Millisecond))
		if took < deadMemberRebalance-time.Second {
			t.Fatalf("joined after %s: the dead member did not hold the rebalance (want about %s)", took, deadMemberRebalance)
		}
	case err := <-consumed:
		t.Fatalf("Consume returned before joining after %s: %v", time.Since(start).Round(time.Millisecond), err)
	case <-ctx.Done():
		t.Fatalf("not joined after %s", time.Since(start).Round(time.Millisecond))
	}
	cancel()
	if err := <-consumed; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("Consume: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, err := range groupErrs {
		t.Errorf("group error: %v", err)
	}
}

// killMemberWhileJoining joins group as a member that then dies: it gets
// its JoinGroup answer (as the group's leader) but never sends SyncGroup
// or a heartbeat, like a process killed in the middle of a join.
func killMemberWhileJoining(t *testing.T, cfg Config, sc *sarama.Config, group, topic string) {
	t.Helper()
	cc := GroupConfig(sc, "dead-member")
	cc.Net.ReadTimeout = 3 * deadMemberRebalance
	client, err := sarama.NewClient(cfg.Brokers, cc)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	coord, err := client.Coordinator(group)
	if err != nil {
		t.Fatal(err)
	}
	memberID := ""
	for range 3 {
		req := sarama.NewJoinGroupRequest(sc.Version)
		req.GroupId = group
		req.MemberId = memberID
		req.SessionTimeout = int32((3 * deadMemberRebalance) / time.Millisecond) // outlives the test's wait: only the rebalance timeout removes it
		req.RebalanceTimeout = int32(deadMemberRebalance / time.Millisecond)
		req.ProtocolType = "consumer"
		if err := req.AddGroupProtocolMetadata(goka.CopartitioningStrategy.Name(), &sarama.ConsumerGroupMemberMetadata{Topics: []string{topic}}); err != nil {
			t.Fatal(err)
		}
		resp, err := coord.JoinGroup(req)
		if err != nil {
			t.Fatalf("dead member's JoinGroup: %v", err)
		}
		switch resp.Err {
		case sarama.ErrNoError:
			return
		case sarama.ErrMemberIdRequired:
			memberID = resp.MemberId
		default:
			t.Fatalf("dead member's JoinGroup: %v", resp.Err)
		}
	}
	t.Fatal("dead member did not join")
}

type setupHandler struct {
	once   sync.Once
	joined chan struct{}
}

func (h *setupHandler) Setup(sarama.ConsumerGroupSession) error {
	h.once.Do(func() { close(h.joined) })
	return nil
}
func (h *setupHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h *setupHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for range c.Messages() {
	}
	return nil
}
