package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// consumeFlags are the flags of weft consume.
type consumeFlags struct {
	from     string
	count    int
	follow   bool
	envelope bool
}

func newConsumeCommand(g *globalFlags) *cobra.Command {
	f := &consumeFlags{}
	cmd := &cobra.Command{
		Use:   "consume <topic>",
		Short: "Print the records of a topic as JSON lines (like kcat -C)",
		Long: `Print the records of <topic>, every partition, as JSON lines:
{"partition":0,"offset":12,"timestamp":"2026-...","key":"acc-1","value":{...},"headers":{...}}
A value that is valid JSON is embedded as it is, any other value as a
string; a null value (a tombstone) is null. No consumer group is used, so
nothing is committed and nothing else is disturbed: read the dead-letter
topic <group>-dlq, an output, or a table topic.

--from says where to start in each partition: earliest (default), latest,
an offset (e.g. 42), or a time (RFC 3339, e.g. 2026-01-05T10:00:00Z: the
first record at or after it). Without --follow, weft consume stops at the
end of every partition as it was when it started; with --follow it waits
for new records until Ctrl-C. -n stops after that many records.

--envelope decodes the values of a weft table topic (<group>-table): the
value, the writer's traceparent, the version, the event time and the
sources, as 'weft get --meta' prints them.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return &usageError{fmt.Errorf("consume needs one <topic>, got %d arguments", len(args))}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			from, err := parseFrom(f.from)
			if err != nil {
				return &usageError{err}
			}
			if f.count < 0 {
				return &usageError{fmt.Errorf("-n %d: give a positive number of records, or 0 for all", f.count)}
			}
			k, err := g.clientKafka()
			if err != nil {
				return err
			}
			opts, err := k.FranzOptions()
			if err != nil {
				return &usageError{err}
			}
			return k.Explain(consume(cmd.Context(), cmd.OutOrStdout(), args[0], from, f, opts))
		},
	}
	cmd.Flags().StringVar(&f.from, "from", "earliest", "where to start: earliest, latest, an offset or an RFC 3339 time")
	cmd.Flags().IntVarP(&f.count, "count", "n", 0, "stop after this many records (0: no limit)")
	cmd.Flags().BoolVarP(&f.follow, "follow", "f", false, "keep waiting for new records (until Ctrl-C)")
	cmd.Flags().BoolVar(&f.envelope, "envelope", false, "decode weft table envelopes (values of <group>-table topics)")
	return withTimeout(cmd, func() bool { return f.follow })
}

// fromSpec is where --from starts each partition.
type fromSpec struct {
	kind   string // earliest, latest, offset or time
	offset int64
	time   time.Time
}

// parseFrom parses the --from flag.
func parseFrom(s string) (fromSpec, error) {
	switch s {
	case "earliest", "beginning", "":
		return fromSpec{kind: "earliest"}, nil
	case "latest", "end":
		return fromSpec{kind: "latest"}, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n >= 0 {
		return fromSpec{kind: "offset", offset: n}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return fromSpec{kind: "time", time: t}, nil
	}
	return fromSpec{}, fmt.Errorf("--from %q: use earliest, latest, an offset (e.g. 42) or an RFC 3339 time (e.g. 2026-01-05T10:00:00Z)", s)
}

// consumedRecord is one output line of weft consume.
type consumedRecord struct {
	Partition int32             `json:"partition"`
	Offset    int64             `json:"offset"`
	Timestamp time.Time         `json:"timestamp"`
	Key       *string           `json:"key"`
	Value     json.RawMessage   `json:"value"`
	Headers   map[string]string `json:"headers,omitempty"`
}

func consume(ctx context.Context, w io.Writer, topic string, from fromSpec, f *consumeFlags, opts []kgo.Opt) error {
	admCl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	// Where each partition starts, and where it ends now (where weft
	// consume stops without --follow).
	starts, ends, err := partitionRange(ctx, adm, topic, from)
	if err != nil {
		return err
	}
	pos := map[int32]int64{}
	assign := map[int32]kgo.Offset{}
	for p, o := range starts {
		pos[p] = o
		assign[p] = kgo.NewOffset().At(o)
	}
	cl, err := kgo.NewClient(append(opts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: assign}))...)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer cl.Close()
	done := func() bool {
		if f.follow {
			return false
		}
		for p, end := range ends {
			if pos[p] < end {
				return false
			}
		}
		return true
	}
	out := bufio.NewWriter(w)
	defer out.Flush()
	enc := json.NewEncoder(out)
	printed := 0
	for !done() && (f.count == 0 || printed < f.count) {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			break
		}
		if err := fetches.Err0(); err != nil {
			return fmt.Errorf("read %s: %w", topic, explainFranz(err))
		}
		var encErr error
		fetches.EachRecord(func(r *kgo.Record) {
			if encErr != nil || (f.count > 0 && printed >= f.count) || (!f.follow && r.Offset >= ends[r.Partition]) {
				return
			}
			pos[r.Partition] = r.Offset + 1
			line, err := recordLine(r, f.envelope)
			if err == nil {
				err = enc.Encode(line)
			}
			encErr = err
			printed++
		})
		if encErr != nil {
			return encErr
		}
		if err := out.Flush(); err != nil {
			return err
		}
	}
	return nil
}

// partitionRange returns, per partition of topic, the offset from puts
// it at and the end offset now.
func partitionRange(ctx context.Context, adm *kadm.Client, topic string, from fromSpec) (starts, ends map[int32]int64, err error) {
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	list := func(what string, l func() (kadm.ListedOffsets, error)) (map[int32]int64, error) {
		listed, err := listCtx(lctx, l)
		if err == nil {
			err = listed.Error()
		}
		if err != nil {
			return nil, fmt.Errorf("read the %s offsets of %s: %w", what, topic, explainFranz(err))
		}
		if len(listed[topic]) == 0 {
			return nil, fmt.Errorf("topic %s does not exist", topic)
		}
		out := map[int32]int64{}
		for p, o := range listed[topic] {
			out[p] = o.Offset
		}
		return out, nil
	}
	if ends, err = list("end", func() (kadm.ListedOffsets, error) { return adm.ListEndOffsets(lctx, topic) }); err != nil {
		return nil, nil, err
	}
	firsts, err := list("start", func() (kadm.ListedOffsets, error) { return adm.ListStartOffsets(lctx, topic) })
	if err != nil {
		return nil, nil, err
	}
	starts = map[int32]int64{}
	switch from.kind {
	case "earliest":
		starts = firsts
	case "latest":
		starts = maps.Clone(ends)
	case "offset":
		for p, end := range ends {
			starts[p] = min(max(from.offset, firsts[p]), end)
		}
	case "time":
		after, err := list("time", func() (kadm.ListedOffsets, error) {
			return adm.ListOffsetsAfterMilli(lctx, from.time.UnixMilli(), topic)
		})
		if err != nil {
			return nil, nil, err
		}
		for p, end := range ends {
			o, ok := after[p]
			if !ok || o < 0 {
				o = end
			}
			starts[p] = min(o, end)
		}
	}
	return starts, ends, nil
}

// recordLine is the output line of r.
func recordLine(r *kgo.Record, envelope bool) (consumedRecord, error) {
	line := consumedRecord{Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp.UTC()}
	if r.Key != nil {
		k := string(r.Key)
		line.Key = &k
	}
	switch {
	case r.Value == nil:
		line.Value = json.RawMessage("null")
	case envelope:
		v, err := formatValue(r.Value, true)
		if err != nil {
			return line, fmt.Errorf("partition %d offset %d: not a weft envelope: %w", r.Partition, r.Offset, err)
		}
		line.Value = v
	case json.Valid(r.Value):
		line.Value = r.Value
	default:
		b, _ := json.Marshal(string(r.Value))
		line.Value = b
	}
	if len(r.Headers) > 0 {
		line.Headers = make(map[string]string, len(r.Headers))
		for _, h := range r.Headers {
			line.Headers[h.Key] = string(h.Value)
		}
	}
	return line, nil
}

// explainFranz shortens franz-go's errors for a user.
func explainFranz(err error) error {
	if strings.Contains(err.Error(), "UNKNOWN_TOPIC_OR_PARTITION") {
		return fmt.Errorf("the topic does not exist: %w", err)
	}
	return err
}

// listCtx runs l and returns as soon as ctx ends (Ctrl-C, --timeout):
// franz-go's first metadata request on a connection that a broker accepted
// but does not answer waits for its dial timeout, whatever the context. l
// itself ends when the client is closed.
func listCtx(ctx context.Context, l func() (kadm.ListedOffsets, error)) (kadm.ListedOffsets, error) {
	type result struct {
		listed kadm.ListedOffsets
		err    error
	}
	done := make(chan result, 1)
	go func() {
		listed, err := l()
		done <- result{listed, err}
	}()
	select {
	case r := <-done:
		return r.listed, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
