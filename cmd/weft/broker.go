package main

import (
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
until interrupted. Any Kafka client (kcat, sarama, franz-go, the Java
client) can use it. Topics, records and committed consumer-group offsets
are kept in --data-dir and survive a restart.

It is meant for development and tests; use a real Kafka cluster in
production.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger(os.Stderr)
			if err != nil {
				return err
			}
			if dataDir == "" {
				dataDir = filepath.Join(g.stateDir, "broker")
			}
			b, err := broker.Start(cmd.Context(), broker.WithAddr(addr), broker.WithDataDir(dataDir),
				broker.WithPartitions(partitions), broker.WithLogger(log))
			if err != nil {
				return err
			}
			log.Info("embedded broker serving; press Ctrl-C to stop", "addr", b.Addrs()[0], "data_dir", dataDir)
			<-cmd.Context().Done()
			log.Info("embedded broker stopping")
			return b.Close()
		},
	}
	cmd.Flags().StringVar(&addr, "addr", broker.DefaultAddr, "host:port to listen on (port 0: a free port)")
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "where topics, records and offsets are kept (default <state-dir>/broker)")
	cmd.Flags().Int32Var(&partitions, "default-partitions", broker.DefaultPartitions, "partitions of auto-created topics")
	return cmd
}
