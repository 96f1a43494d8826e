package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/weftstream/weft/broker"
)

func newBrokerCommand(g *globalFlags) *cobra.Command {
	var addr, dataDir string
	var partitions int32
	cmd := &cobra.Command{
		Use:   "broker",
		Short: "Serve the embedded Kafka-protocol broker for any Kafka client",
		Long: `Serve weft's embedded single-node Kafka-protocol broker (franz-go's kfake)
on --embedded-addr until interrupted. Any Kafka client (kcat, sarama,
franz-go, the Java client) can use it. Topics, records and committed
consumer-group offsets are kept in --data-dir and survive a restart; only
one broker can use a data dir at a time. Topics created without a partition
count get --partitions partitions.

Durability: the broker writes every record to its files before it
acknowledges it, so everything acknowledged survives the broker's process
being stopped or killed (kill -9). By default it leaves flushing the files
to the disk to the operating system, as Kafka does by default: a crash of
the machine or a power loss can lose what was acknowledged in the last
seconds before it (Linux writes files back within about 30 s). With
--embedded-sync every produced batch and committed offset is fsynced before
the broker answers, so acknowledged records also survive a machine crash,
at the cost of produce throughput.

It serves plaintext without authentication (so --tls and --sasl-* are
refused). It is meant for development and tests; use a real Kafka cluster in
production.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := g.checkEmbeddedServable(); err != nil {
				return err
			}
			flags := cmd.Flags()
			if !flags.Changed("addr") {
				addr = g.embeddedAddr
			}
			if !flags.Changed("default-partitions") {
				partitions = int32(g.partitions)
			}
			if partitions < 1 {
				return &usageError{fmt.Errorf("--partitions %d: the broker needs at least one partition per topic", partitions)}
			}
			log, err := g.logger(os.Stderr)
			if err != nil {
				return err
			}
			if dataDir == "" {
				dataDir = filepath.Join(g.stateDir, "broker")
			}
			opts := []broker.Option{broker.WithAddr(addr), broker.WithDataDir(dataDir),
				broker.WithPartitions(partitions), broker.WithLogger(log), broker.WithFlagNames("--embedded-addr", "--data-dir")}
			if g.embeddedSync {
				opts = append(opts, broker.WithSyncWrites())
			}
			b, err := broker.Start(cmd.Context(), opts...)
			if err != nil {
				return err
			}
			log.Info("embedded broker serving; press Ctrl-C to stop", "addr", b.Addrs()[0], "data_dir", dataDir, "sync_writes", g.embeddedSync)
			<-cmd.Context().Done()
			log.Info("embedded broker stopping")
			return b.Close()
		},
	}
	cmd.Flags().StringVar(&addr, "addr", broker.DefaultAddr, "host:port to listen on")
	_ = cmd.Flags().MarkDeprecated("addr", "use --embedded-addr")
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "where topics, records and offsets are kept (default <state-dir>/broker)")
	cmd.Flags().Int32Var(&partitions, "default-partitions", broker.DefaultPartitions, "partitions of auto-created topics")
	_ = cmd.Flags().MarkDeprecated("default-partitions", "use --partitions")
	return cmd
}

// checkEmbeddedServable refuses the client security flags for the
// embedded broker, which serves plaintext without authentication.
func (g *globalFlags) checkEmbeddedServable() error {
	var set []string
	if g.tls {
		set = append(set, "--tls")
	}
	if g.saslMechanism != "" || g.saslUser != "" || g.saslPassword != "" {
		set = append(set, "--sasl-*")
	}
	if len(set) == 0 {
		return nil
	}
	return &usageError{errors.New("weft broker serves plaintext without authentication, so " +
		joinFlags(set) + " cannot apply: remove it (or its WEFT_ variable)")}
}

func joinFlags(set []string) string {
	if len(set) == 2 {
		return set[0] + " and " + set[1]
	}
	return set[0]
}
