package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/weftstream/weft/eventfile"
	"github.com/weftstream/weft/processors"
	"github.com/weftstream/weft/tracing"
)

func newProduceCommand(g *globalFlags) *cobra.Command {
	var keyField string
	cmd := &cobra.Command{
		Use:   "produce <topic> <file.jsonl>",
		Short: "Produce the events of a JSON-lines file to a topic",
		Long: `Produce every line of a JSON-lines file as one record to <topic>, creating
the topic if it is missing. '-' reads standard input.

With --key-field NAME the record key is the string field NAME of each line
and the value is the line itself. Without it, lines of the form
{"key": "...", "value": ..., "headers": {"name": "value"}} give key, value
and headers.

Lines that are not valid JSON, or have no key, are produced anyway (without
a key) and counted in a warning: the processor decides what is bad input.

Every record is sent in a span "send <topic>" (a child of the line's
traceparent header, if it has one) whose context goes into the record's
traceparent header; the OTEL_* variables decide whether spans are exported.
Records are partitioned as goka partitions them, so a processor finds each
key's state where it expects it.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 2 {
				return &usageError{fmt.Errorf("produce needs <topic> and <file.jsonl>, got %d arguments", len(args))}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			topic, path := args[0], args[1]
			log, err := g.logger(os.Stderr)
			if err != nil {
				return err
			}
			in := os.Stdin
			if path != "-" {
				f, err := os.Open(path)
				if err != nil {
					return fmt.Errorf("open event file: %w", err)
				}
				defer f.Close()
				in = f
			}
			k, err := g.clientKafka()
			if err != nil {
				return err
			}
			prov, err := tracing.Setup(cmd.Context())
			if err != nil {
				return err
			}
			defer shutdownTracing(log, prov)
			em, err := processors.NewEmitter(cmd.Context(), topic, processors.WithKafka(k), processors.WithLogger(log),
				processors.WithTracerProvider(prov.Tracer))
			if err != nil {
				return err
			}
			var lines, invalid, keyless int
			var readErr error
			for rec, err := range eventfile.Read(in, keyField) {
				if err != nil {
					readErr = err
					break
				}
				if cmd.Context().Err() != nil {
					break
				}
				lines++
				if rec.Invalid {
					invalid++
				} else if !rec.HasKey {
					keyless++
				}
				em.Publish(cmd.Context(), rec.Key, rec.Value, rec.Headers, nil)
			}
			if err := em.Close(); err != nil {
				return err
			}
			if readErr != nil {
				return readErr
			}
			if invalid+keyless > 0 {
				log.Warn("produced lines without a key", "invalid_json", invalid, "missing_key", keyless)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "produced %d records to %s\n", em.Sent(), topic)
			return cmd.Context().Err()
		},
	}
	cmd.Flags().StringVar(&keyField, "key-field", "", "JSON field whose string value is the record key")
	return cmd
}
