package serve

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/weftstream/weft/processors"
	"github.com/weftstream/weft/statestore"
)

// WithLineageRetention sets what the lineage answers with, as a topology
// file's lineage: {versions, retention} says: at most versions versions
// of a key, newest first (0: what the index holds, which trims in steps),
// and how far back (in event time, from now): a version is kept while it
// was the value at some time within retention (it is the newest, or the
// next one's event time is not before now - retention); an as_of older
// than that answers 422 with the oldest time available and the 'weft
// replay' command that can answer it (for topologyFile, the file the
// processors run; "" names it <topology.yaml>). 0 keeps what the lineage
// index holds.
func WithLineageRetention(versions int, retention time.Duration, topologyFile string) Option {
	return func(c *config) {
		c.lineageVersions = max(versions, 0)
		c.retention = max(retention, 0)
		c.replayFile = topologyFile
	}
}

// cutoff is the oldest time the lineage answers for, zero without
// retention.
func (s *Server) cutoff() time.Time {
	if s.cfg.retention == 0 {
		return time.Time{}
	}
	return time.Now().Add(-s.cfg.retention).UTC()
}

// kept returns the versions (newest first) within the retention and the
// count.
func (s *Server) kept(versions []statestore.Envelope) []statestore.Envelope {
	if n := s.cfg.lineageVersions; n > 0 && len(versions) > n {
		versions = versions[:n]
	}
	cut := s.cutoff()
	if cut.IsZero() {
		return versions
	}
	for i := 1; i < len(versions); i++ {
		// versions[i] was the value until versions[i-1] replaced it.
		if next := versions[i-1].EventTime; !next.IsZero() && next.Before(cut) {
			return versions[:i]
		}
	}
	return versions
}

// replayCommand is the command that folds key's records up to at.
func (s *Server) replayCommand(key string, at string) string {
	file := s.cfg.replayFile
	if file == "" {
		file = "<topology.yaml>"
	}
	return fmt.Sprintf("weft replay %s --key %s --until-time %s", shellWord(file), shellWord(key), at)
}

// shellWord quotes s for a shell when it needs it.
func shellWord(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n'\"\\$`!*?[]{}()<>|&;#~") {
		return s
	}
	return strconv.Quote(s)
}

// tooOld answers an as_of before the retention: 422 with the oldest
// time available and the replay command that can answer it.
func (s *Server) tooOld(w http.ResponseWriter, t *processors.TableReader, key, asOf string, cut time.Time) {
	oldest := cut.Format(time.RFC3339Nano)
	cmd := s.replayCommand(key, asOf)
	writeProblem(w, http.StatusUnprocessableEntity,
		fmt.Sprintf("as_of %s is older than the lineage keeps (retention %s): the oldest time it answers for is %s; '%s' folds the key's records up to that time",
			asOf, s.cfg.retention, oldest, cmd),
		withTable(string(t.Group())), withKey(key), func(p *problem) { p.OldestAvailable, p.Replay = oldest, cmd })
}
