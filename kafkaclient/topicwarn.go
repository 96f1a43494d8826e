package kafkaclient

import (
	"log/slog"
	"strings"

	"github.com/lovoo/goka"
)

// mismatchWarner is goka's topic manager with its warnings about a topic
// configured otherwise than weft asks (partition count, replication
// factor, cleanup policy, retention) logged through slog: goka prints them
// with its own logger, plain text on stderr, which cannot be replaced. The
// topic manager it wraps fails at the first mismatch instead
// (TMConfigMismatchBehaviorFail), which mismatchWarner turns into a
// warning, as goka's TMConfigMismatchBehaviorWarn would have. Every topic
// manager weft builds is one (see ensure).
type mismatchWarner struct {
	goka.TopicManager
	log *slog.Logger
}

func (m mismatchWarner) EnsureTableExists(topic string, npar int) error {
	return m.ensure(topic, func() error { return m.TopicManager.EnsureTableExists(topic, npar) })
}

func (m mismatchWarner) EnsureStreamExists(topic string, npar int) error {
	return m.ensure(topic, func() error { return m.TopicManager.EnsureStreamExists(topic, npar) })
}

func (m mismatchWarner) EnsureTopicExists(topic string, npar, rfactor int, config map[string]string) error {
	return m.ensure(topic, func() error { return m.TopicManager.EnsureTopicExists(topic, npar, rfactor, config) })
}

// ensure runs one of goka's Ensure calls. A topic that another process
// created between goka's check and its creation (two instances of one
// application starting together: goka's processors create their loop and
// repartition topics themselves) is no error: the call is repeated until
// the topic is in the metadata, as EnsureTopic does.
func (m mismatchWarner) ensure(topic string, f func() error) error {
	err := f()
	if err != nil && createdMeanwhile(err) {
		err = awaitCreated(f)
	}
	return m.warn(topic, err)
}

// gokaMismatches start the messages of goka's configuration mismatches
// (goka's topic_manager.go).
var gokaMismatches = []string{
	"partition count mismatch for topic",
	"config for topic ",
	"unexpected config value for topic",
	"unexpected replication factor for topic",
}

func (m mismatchWarner) warn(topic string, err error) error {
	if err == nil {
		return nil
	}
	for _, p := range gokaMismatches {
		if strings.HasPrefix(err.Error(), p) {
			m.log.Warn("a topic is configured otherwise than weft asks", "topic", topic, "mismatch", err.Error())
			return nil
		}
	}
	return err
}
