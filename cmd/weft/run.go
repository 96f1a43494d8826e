package main

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/weftstream/weft/examples/bank"
	"github.com/weftstream/weft/kafkaclient"
	"github.com/weftstream/weft/processors"
)

type runFlags struct {
	input    string
	group    string
	progress time.Duration
}

func newRunCommand(g *globalFlags) *cobra.Command {
	f := &runFlags{}
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the bank-account projection as a stream processor",
		Long: `Run the bank-account projection: AccountCreated, Deposited, Withdrawn and
Closed events (JSON, keyed by account) from --input are folded into the
read model of each account (owner, balance, status, event count), kept in
Pebble under --state-dir and in the table topic <group>-table.

Bad events (malformed JSON, unknown types, withdrawals on unknown accounts,
...) are counted and logged with their topic, partition and offset; they
never stop the processor.

With no --brokers the embedded broker is started in-process on
--embedded-addr, keeping its data under --state-dir/broker.

SIGINT or SIGTERM stops the processor cleanly: it stops consuming, waits for
the records in flight and their produces, commits the consumer offsets and
closes the state stores; a restart resumes where it stopped.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger(os.Stderr)
			if err != nil {
				return err
			}
			k, stopBroker, err := g.serverKafka(cmd.Context(), log)
			if err != nil {
				return err
			}
			defer stopBroker()
			return runBank(cmd.Context(), log, k, g.stateDir, f)
		},
	}
	cmd.Flags().StringVar(&f.input, "input", bank.DefaultInput, "topic of the account events")
	cmd.Flags().StringVar(&f.group, "group", bank.DefaultGroup, "consumer group, and name of the table (topic <group>-table)")
	cmd.Flags().DurationVar(&f.progress, "progress-interval", 10*time.Second, "how often to log progress (0: never)")
	return cmd
}

func runBank(ctx context.Context, log *slog.Logger, k kafkaclient.Config, stateDir string, f *runFlags) error {
	tally := processors.NewTally(log)
	p, err := processors.NewProcessor(ctx, bank.Graph(f.input, f.group, tally),
		processors.WithKafka(k), processors.WithStateDir(stateDir), processors.WithLogger(log))
	if err != nil {
		return err
	}
	if f.progress > 0 {
		go logProgress(ctx, log, tally, f.progress)
	}
	err = p.Run(ctx)
	log.Info("summary", "processed", tally.Processed(), "rejected", tally.Rejected())
	return err
}

func logProgress(ctx context.Context, log *slog.Logger, tally *processors.Tally, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			log.Info("progress", "processed", tally.Processed(), "rejected", tally.Rejected())
		}
	}
}
