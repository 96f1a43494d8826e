package kafkaclient

import (
	"fmt"
	"regexp"
)

// topicNameRE is the alphabet of Kafka topic names.
var topicNameRE = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// ValidateTopicName reports a name Kafka would refuse as a topic name:
// letters, digits, '.', '_' and '-', at most 249 characters, not "." or
// "..". (The embedded broker accepts more; a real cluster does not.)
func ValidateTopicName(name string) error {
	if !topicNameRE.MatchString(name) || name == "." || name == ".." || len(name) > 249 {
		return fmt.Errorf("topic %q is not a valid Kafka topic name (letters, digits, '.', '_' and '-', at most 249)", name)
	}
	return nil
}
