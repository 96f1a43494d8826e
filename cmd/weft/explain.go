package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/weftstream/weft/processors"
	"github.com/weftstream/weft/serve/client"
	"github.com/weftstream/weft/statestore"
	"github.com/weftstream/weft/tracing"
)

func newExplainCommand(g *globalFlags) *cobra.Command {
	var asJSON bool
	var sf serverFlags
	var progressEvery time.Duration
	cmd := &cobra.Command{
		Use:   "explain <table> <key>",
		Short: "Show the versions of a key: which event and which span made each",
		Long: `Show how the value of <key> in <table> came to be: its recorded versions,
newest first, each with the event time, the traceparent of the span that
wrote it (look it up in Jaeger, Tempo, ...), the source record
(topic/partition@offset; for a record that reached the table through a
repartition topic, the record upstream that emitted it,
topic/partition@offset#n for its n-th output), the replay job that wrote
it (weft replay; "-" for live processing) and the value.

The history is rebuilt from the table topic into a temporary local store, so
it goes back as far as the topic still holds versions of the key (a
compacted topic keeps fewer) and the lineage index keeps them (the last 8 to
15 versions). A restore that takes more than a second shows a progress bar
on a terminal, or a log line every --progress-interval otherwise.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 2 {
				return &usageError{fmt.Errorf("explain needs <table> and <key>, got %d arguments", len(args))}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			versions, table, err := g.history(cmd, &sf, args[0], args[1], progressEvery)
			if err != nil {
				return err
			}
			if len(versions) == 0 {
				return fmt.Errorf("key %q has no recorded versions in table %s", args[1], table)
			}
			if asJSON {
				return writeVersionsJSON(cmd.OutOrStdout(), versions)
			}
			noun := "versions"
			if len(versions) == 1 {
				noun = "version"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s: %d %s, newest first\n", table, args[1], len(versions), noun)
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "VERSION\tEVENT TIME\tWRITER TRACEPARENT\tSOURCE\tREPLAY JOB\tVALUE")
			for _, v := range versions {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", v.Version, formatTime(v.EventTime), writerTraceparent(v), sourceOf(v), replayJobOf(v), v.Value)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON lines instead of a table")
	restoreProgressFlag(cmd.Flags(), &progressEvery)
	sf.register(cmd.Flags())
	return withTimeout(cmd, nil)
}

// history returns the lineage of key: from the query API of a running
// weft (see serverFlags), or else restored from the table topic into a
// temporary view.
func (g *globalFlags) history(cmd *cobra.Command, sf *serverFlags, tableName, key string, progressEvery time.Duration) ([]statestore.Envelope, string, error) {
	log, err := g.logger(os.Stderr)
	if err != nil {
		return nil, "", err
	}
	if versions, a := sf.askLineage(cmd.Context(), log, g, tableName, key); a.done {
		if errors.Is(a.err, client.ErrNoValue) {
			return nil, string(tableTopic(tableName)), nil
		}
		return versions, string(tableTopic(tableName)), a.err
	}
	k, err := g.clientKafka()
	if err != nil {
		return nil, "", err
	}
	table := tableTopic(tableName)
	v, err := restoreTable(cmd.Context(), log, k, table, progressEvery)
	if err != nil {
		return nil, "", err
	}
	defer v.Close()
	versions, err := v.Lineage(key)
	if err != nil {
		return nil, "", fmt.Errorf("history of %s in %s: %w", key, table, err)
	}
	return versions, string(table), nil
}

// asOf picks the version a --as-of value names: a version number or an
// RFC 3339 time (the newest version whose event time is not after it).
func asOf(versions []statestore.Envelope, spec string) (statestore.Envelope, error) {
	if n, err := strconv.ParseUint(spec, 10, 64); err == nil {
		for _, v := range versions {
			if v.Version == n {
				return v, nil
			}
		}
		return statestore.Envelope{}, fmt.Errorf("version %d is not recorded (recorded: %s)", n, versionRange(versions))
	}
	t, err := time.Parse(time.RFC3339Nano, spec)
	if err != nil {
		return statestore.Envelope{}, &usageError{fmt.Errorf("--as-of %q is neither a version number nor an RFC 3339 time", spec)}
	}
	for _, v := range versions {
		if !v.EventTime.After(t) {
			return v, nil
		}
	}
	return statestore.Envelope{}, fmt.Errorf("no recorded version is as old as %s (recorded: %s)", spec, versionRange(versions))
}

func versionRange(versions []statestore.Envelope) string {
	if len(versions) == 0 {
		return "none"
	}
	return fmt.Sprintf("versions %d to %d", versions[len(versions)-1].Version, versions[0].Version)
}

func writerTraceparent(v statestore.Envelope) string {
	if !v.Writer.IsValid() {
		return "-"
	}
	return string(tracing.AppendTraceparent(nil, processors.SpanContextOf(v.Writer)))
}

func sourceOf(v statestore.Envelope) string {
	if len(v.Sources) == 0 {
		return "-"
	}
	s := v.Sources[0]
	if s.Upstream {
		// emitted by the processor of that record (its Index-th output)
		return fmt.Sprintf("%s/%d@%d#%d", s.Topic, s.Partition, s.Offset, s.Index)
	}
	return fmt.Sprintf("%s/%d@%d", s.Topic, s.Partition, s.Offset)
}

// replayJobOf is the replay job that wrote v, "-" for live processing.
func replayJobOf(v statestore.Envelope) string {
	if v.ReplayJob == "" {
		return "-"
	}
	return v.ReplayJob
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format(time.RFC3339Nano)
}

// versionJSON is one line of explain --json.
type versionJSON struct {
	Version   uint64                    `json:"version"`
	EventTime *time.Time                `json:"event_time,omitempty"`
	Writer    string                    `json:"writer_traceparent,omitempty"`
	Source    *statestore.SourceOffset  `json:"source,omitempty"`
	Sources   []statestore.SourceOffset `json:"sources,omitempty"`
	// Contributors are the spans of the records coalesced into the
	// version (the record cache, suppress) whose traces are sampled,
	// Dropped the others (unsampled, or beyond the bound).
	Contributors []string `json:"contributors,omitempty"`
	Dropped      uint64   `json:"contributors_dropped,omitempty"`
	// ReplayJob names the replay job that wrote the version (absent:
	// live processing).
	ReplayJob string          `json:"replay_job,omitempty"`
	Value     json.RawMessage `json:"value,omitempty"`
	ValueText string          `json:"value_text,omitempty"`
}

func writeVersionsJSON(w io.Writer, versions []statestore.Envelope) error {
	enc := json.NewEncoder(w)
	for _, v := range versions {
		out := versionJSON{Version: v.Version, Sources: v.Sources}
		if !v.EventTime.IsZero() {
			out.EventTime = &v.EventTime
		}
		if v.Writer.IsValid() {
			out.Writer = writerTraceparent(v)
		}
		if len(v.Sources) > 0 {
			out.Source = &v.Sources[0]
		}
		for _, c := range v.Contributors {
			sc := processors.SpanContextOf(c)
			out.Contributors = append(out.Contributors, fmt.Sprintf("00-%s-%s-%s", sc.TraceID(), sc.SpanID(), sc.TraceFlags()))
		}
		out.Dropped, out.ReplayJob = v.Dropped, v.ReplayJob
		if json.Valid(v.Value) {
			out.Value = v.Value
		} else if len(v.Value) > 0 {
			out.ValueText = string(v.Value)
		}
		if err := enc.Encode(out); err != nil {
			return err
		}
	}
	return nil
}
