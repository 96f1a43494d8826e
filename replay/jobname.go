package replay

import (
	"fmt"
	"strings"
	"time"

	"github.com/weftstream/weft/statestore"
)

// A replay job's name is written into every version it makes
// (statestore.Envelope.ReplayJob), so that the lineage of a rebuilt or
// rewound value names the job that wrote it and a live value names none.
// Kafka Streams' reset tool names nothing but the application id, and
// Flink names a savepoint by the job id and a random suffix; a weft job is
// named, unless --job-name says otherwise, by its mode, the application
// it writes, the pipelines it runs when they are chosen, and the time it
// started: into:bank-v2@20261202T023100Z, in-place:bank/totals@....

// jobTimeLayout is the start time in a job's name (UTC, to the second).
const jobTimeLayout = "20060102T150405Z"

// JobName is the name of a job of mode ("into" or "in-place") writing
// app's tables, for pipelines (empty: all), started at start.
func JobName(mode, app string, pipelines []string, start time.Time) string {
	var b strings.Builder
	b.WriteString(mode)
	b.WriteByte(':')
	b.WriteString(app)
	if len(pipelines) > 0 {
		b.WriteByte('/')
		b.WriteString(strings.Join(pipelines, "+"))
	}
	b.WriteByte('@')
	b.WriteString(start.UTC().Format(jobTimeLayout))
	name := b.String()
	if len(name) > statestore.MaxReplayJobLen {
		// Many long pipeline names: the mode, the app and the time stay.
		name = mode + ":" + app + "@" + start.UTC().Format(jobTimeLayout)
		if len(name) > statestore.MaxReplayJobLen {
			name = name[len(name)-statestore.MaxReplayJobLen:]
		}
	}
	return name
}

// CheckJobName reports what is wrong with a job name given by the user
// (--job-name), or nil: it is stored in every version the job writes, so
// it is bounded and printable.
func CheckJobName(name string) error {
	if name == "" {
		return fmt.Errorf("give a name, or leave the flag out for one made of the mode, the application and the start time")
	}
	if len(name) > statestore.MaxReplayJobLen {
		return fmt.Errorf("%d bytes is too long: give at most %d", len(name), statestore.MaxReplayJobLen)
	}
	for _, r := range name {
		if r <= ' ' || r == 0x7f || r == '\uFFFD' {
			return fmt.Errorf("%q has a space or a control character: give letters, digits and punctuation such as - _ . : @ /", name)
		}
	}
	return nil
}

// jobName is the given name, or the one JobName makes.
func jobName(given, mode, app string, pipelines []string, start time.Time) string {
	if given != "" {
		return given
	}
	return JobName(mode, app, pipelines, start)
}
