package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/lovoo/goka"
	"github.com/spf13/cobra"
	"github.com/weftstream/weft/processors"
	"github.com/weftstream/weft/serve/client"
	"github.com/weftstream/weft/statestore"
)

func newGetCommand(g *globalFlags) *cobra.Command {
	var withMeta bool
	var asOfSpec string
	var sf serverFlags
	var progressEvery, wait time.Duration
	var get func(cmd *cobra.Command, args []string) error
	cmd := &cobra.Command{
		Use:   "get <table> <key>",
		Short: "Print the value of a key in a table",
		Long: `Print the value stored under <key> in <table>, read from the table topic:
<table> is a processor group (its table topic is <group>-table) or a table
topic. The table is restored into a temporary local store first, so this
works from any machine that reaches the brokers. Exit codes: 0 with a value,
3 if the key has no value (or not the version --as-of asks for), 2 for a
mistake in the command line, 1 for anything else (Kafka cannot be reached,
...).

With --meta the output is a JSON object with the value and the trace
metadata weft keeps beside it: the writer's traceparent, the version (number
of updates), the event time and the last applied offset per input partition.

With --as-of the value is the one the key had at a version number
(--as-of 3) or at an event time (--as-of 2026-01-05T10:00:00Z), as far as
the lineage index recorded it (see 'weft explain').

With --wait 10s a key without a value (or whose partition the running weft
is still restoring) is asked for again until it has one: a script that has
just produced the events waits for the processor.

A restore that takes more than a second shows a progress bar on a terminal;
when stderr is not a terminal, a log line every --progress-interval says
how far it has got.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 2 {
				return &usageError{fmt.Errorf("get needs <table> and <key>, got %d arguments", len(args))}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if wait < 0 {
				return &usageError{fmt.Errorf("--wait %s: give a positive duration, or 0 not to wait", wait)}
			}
			return waitForValue(cmd.Context(), wait, func() error { return get(cmd, args) })
		},
	}
	get = func(cmd *cobra.Command, args []string) error {
		if asOfSpec != "" {
			// A malformed --as-of is a usage error, before the restore.
			var ue *usageError
			if _, err := asOf(nil, asOfSpec); errors.As(err, &ue) {
				return err
			}
			versions, table, err := g.history(cmd, &sf, args[0], args[1], progressEvery)
			if err != nil {
				return err
			}
			if len(versions) == 0 {
				return &noValueError{fmt.Errorf("key %q has no value in table %s", args[1], table)}
			}
			v, err := asOf(versions, asOfSpec)
			if errors.As(err, &ue) {
				return err
			}
			if err != nil {
				return &noValueError{fmt.Errorf("%s in %s: %w", args[1], table, err)}
			}
			out, err := formatValue(statestore.AppendEnvelope(nil, &v), withMeta)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), string(out))
			return nil
		}
		log, err := g.logger(os.Stderr)
		if err != nil {
			return err
		}
		if env, a := sf.askValue(cmd.Context(), log, g, args[0], args[1], ""); a.done {
			if errors.Is(a.err, client.ErrNoValue) {
				return &noValueError{fmt.Errorf("%s in %s: %w", args[1], args[0], a.err)}
			}
			if a.err != nil {
				return fmt.Errorf("%s in %s: %w", args[1], args[0], a.err)
			}
			out, err := formatValue(statestore.AppendEnvelope(nil, &env), withMeta)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), string(out))
			return nil
		}
		k, err := g.clientKafka()
		if err != nil {
			return err
		}
		table := tableTopic(args[0])
		v, err := restoreTable(cmd.Context(), log, k, table, progressEvery)
		if err != nil {
			return err
		}
		defer v.Close()
		val, err := v.Get(args[1])
		if err != nil {
			return fmt.Errorf("get %s from %s: %w", args[1], table, err)
		}
		if val == nil {
			return &noValueError{fmt.Errorf("key %q has no value in table %s", args[1], table)}
		}
		out, err := formatValue(val, withMeta)
		if err != nil {
			return fmt.Errorf("value of %s in %s: %w", args[1], table, err)
		}
		fmt.Fprintln(cmd.OutOrStdout(), string(out))
		return nil
	}
	cmd.Flags().BoolVar(&withMeta, "meta", false, "print the value with its writer span, version and source offsets")
	sf.register(cmd.Flags())
	cmd.Flags().StringVar(&asOfSpec, "as-of", "", "the value at a version number or an RFC 3339 event time")
	cmd.Flags().DurationVar(&wait, "wait", 0, "if the key has no value yet, ask again until it has one or this long has passed, e.g. 10s (exit code 3 then)")
	restoreProgressFlag(cmd.Flags(), &progressEvery)
	return withTimeout(cmd, nil)
}

// storedValue is the --meta output of get.
type storedValue struct {
	Value      json.RawMessage           `json:"value"`
	Writer     string                    `json:"writer_traceparent,omitempty"`
	Version    uint64                    `json:"version"`
	EventTime  *time.Time                `json:"event_time,omitempty"`
	Sources    []statestore.SourceOffset `json:"sources,omitempty"`
	Coalesced  int                       `json:"coalesced_contributors,omitempty"`
	RawMessage string                    `json:"value_text,omitempty"`
}

// formatValue unwraps a stored envelope: the user value alone, or with its
// metadata. Values that are not envelopes are printed as they are.
func formatValue(data []byte, withMeta bool) ([]byte, error) {
	env, err := statestore.DecodeEnvelope(data)
	if errors.Is(err, statestore.ErrNotEnvelope) {
		env, err = statestore.Envelope{Value: data}, nil
	}
	if err != nil {
		return nil, err
	}
	if !withMeta {
		return env.Value, nil
	}
	sv := storedValue{Version: env.Version, Sources: env.Sources, Coalesced: len(env.Contributors)}
	if json.Valid(env.Value) {
		sv.Value = env.Value
	} else {
		sv.Value, sv.RawMessage = json.RawMessage("null"), string(env.Value)
	}
	if env.Writer.IsValid() {
		sc := processors.SpanContextOf(env.Writer)
		sv.Writer = fmt.Sprintf("00-%s-%s-%s", sc.TraceID(), sc.SpanID(), sc.TraceFlags())
	}
	if !env.EventTime.IsZero() {
		sv.EventTime = &env.EventTime
	}
	return json.Marshal(sv)
}

// tableTopic names the table topic of a group, or returns a table topic
// unchanged.
func tableTopic(name string) goka.Table {
	if strings.HasSuffix(name, "-table") {
		return goka.Table(name)
	}
	return goka.GroupTable(goka.Group(name))
}

// waitForValue runs get until it finds a value (or fails otherwise), for
// up to wait: a key without a value, or whose partition the query API is
// still restoring, is asked for again every quarter of a second.
func waitForValue(ctx context.Context, wait time.Duration, get func() error) error {
	deadline := time.Now().Add(wait)
	for {
		err := get()
		var nv *noValueError
		retry := errors.As(err, &nv) || errors.Is(err, client.ErrUnavailable) // a partition restoring
		if !retry || time.Now().Add(waitRetry).After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(waitRetry):
		}
	}
}

// waitRetry is how often get --wait asks again.
const waitRetry = 250 * time.Millisecond
