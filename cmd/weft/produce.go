package main

import (
	"fmt"
	"io"
	"maps"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"github.com/weftstream/weft/eventfile"
	"github.com/weftstream/weft/kafkaclient"
	"github.com/weftstream/weft/processors"
	"github.com/weftstream/weft/tracing"
)

// produceFlags are the flags of weft produce.
type produceFlags struct {
	keyField        string
	timestampField  string
	maxMessageBytes int
	onError         string
	progress        time.Duration
}

func newProduceCommand(g *globalFlags) *cobra.Command {
	f := &produceFlags{}
	cmd := &cobra.Command{
		Use:   "produce <topic> <file.jsonl>",
		Short: "Produce the events of a JSON-lines file to a topic",
		Long: `Produce every line of a JSON-lines file as one record to <topic>, creating
the topic if it is missing. '-' reads standard input.

With --key-field NAME the record key is the string field NAME of each line
and the value is the line itself. Without it, lines of the form
{"key": "...", "value": ..., "headers": {"name": "value"}} give key, value
and headers (a header value that is not a string is sent as its JSON text).

With --timestamp-field NAME the event time of each record is the field NAME
of its value (an RFC 3339 string or milliseconds since the Unix epoch): weft
processors read it from the record's weft.event.time header, so windows,
'weft explain' and '--as-of' see the time of the event, not of the produce.

Lines that are not valid JSON, or have no key, are produced anyway (without
a key) and counted in a warning: the processor decides what is bad input.
A line that cannot be sent (a record over --max-message-bytes, a bad
timestamp) stops the command with its line number and the number of records
produced before it, or with --on-error skip is reported and skipped.

Every record is sent in a span "send <topic>" (a child of the line's
traceparent header, if it has one) whose context goes into the record's
traceparent header; the OTEL_* variables decide whether spans are exported.
Records are partitioned as goka partitions them, so a processor finds each
key's state where it expects it. Ctrl-C stops reading, waits for the
records sent so far and exits non-zero.

A produce that takes more than a second shows a progress bar on a terminal;
when stderr is not a terminal, a log line every --progress-interval says
how far it has got.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 2 {
				return &usageError{fmt.Errorf("produce needs <topic> and <file.jsonl>, got %d arguments", len(args))}
			}
			if err := kafkaclient.ValidateTopicName(args[0]); err != nil {
				return &usageError{err}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.onError != "stop" && f.onError != "skip" {
				return &usageError{fmt.Errorf("--on-error %q: use stop or skip", f.onError)}
			}
			if f.maxMessageBytes < 1 {
				return &usageError{fmt.Errorf("--max-message-bytes %d: give a positive size", f.maxMessageBytes)}
			}
			return produce(cmd, g, f, args[0], args[1])
		},
	}
	cmd.Flags().StringVar(&f.keyField, "key-field", "", "JSON field whose string value is the record key")
	cmd.Flags().StringVar(&f.timestampField, "timestamp-field", "", "JSON field of the value with the event time (RFC 3339 or epoch milliseconds)")
	cmd.Flags().IntVar(&f.maxMessageBytes, "max-message-bytes", 1000000, "largest key + value + headers of a line (the brokers' message.max.bytes must allow it)")
	cmd.Flags().StringVar(&f.onError, "on-error", "stop", "a line that cannot be sent: stop, or skip it and go on")
	cmd.Flags().DurationVar(&f.progress, "progress-interval", 5*time.Second, "how often to log progress when stderr is not a terminal (0: never)")
	return withTimeout(cmd, nil)
}

func produce(cmd *cobra.Command, g *globalFlags, f *produceFlags, topic, path string) error {
	log, err := g.logger(os.Stderr)
	if err != nil {
		return err
	}
	in := &countingReader{r: os.Stdin}
	var size int64 // 0: unknown (standard input, a pipe)
	if path != "-" {
		file, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("open event file: %w", err)
		}
		defer file.Close()
		if st, err := file.Stat(); err == nil && st.Mode().IsRegular() {
			size = st.Size()
		}
		in.r = file
	}
	k, err := g.clientKafka()
	if err != nil {
		return err
	}
	// The producer's limit counts the record's framing and the headers
	// weft adds (traceparent, event time) too.
	k.MaxMessageBytes = f.maxMessageBytes + recordOverhead
	prov, err := tracing.Setup(cmd.Context(), tracing.WithLogger(log))
	if err != nil {
		return err
	}
	defer shutdownTracing(log, prov)
	em, err := processors.NewEmitter(cmd.Context(), topic, processors.WithKafka(k), processors.WithTracerProvider(prov.Tracer))
	if err != nil {
		return err
	}
	var lines, invalid, keyless, skipped int
	var mu sync.Mutex
	var failed []string // lines whose produce failed, first few
	var stopErr error
	bad := func(line int, msg string) bool { // reports whether to go on
		if f.onError == "skip" {
			skipped++
			log.Warn("skipped a line", "line", line, "reason", msg)
			return true
		}
		em.Flush() // the count below is of acknowledged records
		stopErr = fmt.Errorf("line %d: %s (produced %d records before it; --on-error skip goes on)", line, msg, em.Sent())
		return false
	}
	stopProgress := newProgressReport(log, "produce", "bytes", f.progress).follow(func() (int64, int64) {
		return in.n.Load(), size
	})
	defer stopProgress()
	for rec, err := range eventfile.ReadWith(in, eventfile.Options{KeyField: f.keyField, TimestampField: f.timestampField}) {
		if err != nil {
			stopErr = err
			break
		}
		if cmd.Context().Err() != nil {
			break
		}
		lines++
		if rec.TimeErr != nil {
			if !bad(rec.Line, rec.TimeErr.Error()) {
				break
			}
			continue
		}
		if size := recordSize(rec); size > f.maxMessageBytes {
			if !bad(rec.Line, fmt.Sprintf("the record has %d bytes, more than --max-message-bytes %d", size, f.maxMessageBytes)) {
				break
			}
			continue
		}
		if rec.Invalid {
			invalid++
		} else if !rec.HasKey {
			keyless++
		}
		headers := rec.Headers
		if !rec.Time.IsZero() {
			headers = maps.Clone(headers)
			if headers == nil {
				headers = map[string]string{}
			}
			headers[processors.HeaderEventTime] = strconv.FormatInt(rec.Time.UnixMilli(), 10)
		}
		line := rec.Line
		em.Publish(cmd.Context(), rec.Key, rec.Value, headers, func(err error) {
			if err == nil {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if len(failed) < 5 {
				failed = append(failed, fmt.Sprintf("line %d: %v", line, err))
			}
		})
	}
	stopProgress()
	closeErr := em.Close()
	if invalid+keyless > 0 {
		log.Warn("produced lines without a key", "invalid_json", invalid, "missing_key", keyless)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "produced %d records to %s", em.Sent(), topic)
	if skipped > 0 {
		fmt.Fprintf(cmd.OutOrStdout(), " (%d lines skipped)", skipped)
	}
	fmt.Fprintln(cmd.OutOrStdout())
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d records were not produced, e.g. %s: %w", int64(lines-skipped)-em.Sent(), lines-skipped,
			strings.Join(failed, "; "), closeErr)
	}
	if closeErr != nil {
		return closeErr
	}
	if stopErr != nil {
		return stopErr
	}
	if err := cmd.Context().Err(); err != nil {
		return fmt.Errorf("interrupted after %d lines: %w", lines, err)
	}
	return nil
}

// recordOverhead is room for a record's framing and the headers weft adds.
const recordOverhead = 1 << 10

// recordSize is the size of the record a line becomes, as the producer's
// limit counts it (key, value and headers).
func recordSize(rec eventfile.Record) int {
	n := len(rec.Key) + len(rec.Value)
	for k, v := range rec.Headers {
		n += len(k) + len(v)
	}
	return n
}

// countingReader counts the bytes read through it, for progress reports
// from another goroutine.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}
