package main

import (
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// offlineAnnotation marks a command that talks neither to Kafka nor to a
// state directory (describe, test, version): its help leaves out the
// global flags of those.
const offlineAnnotation = "weft/offline"

// kafkaFlags are the global flags of commands that talk to Kafka or keep
// state.
var kafkaFlags = []string{
	"brokers", "embedded-addr", "embedded-sync", "state-dir", "kafka-version", "client-id", "start-offset",
	"partitions", "replication-factor", "tls", "sasl-mechanism", "sasl-user", "sasl-password", "give-up-after",
}

// clientOnlyAnnotation marks a command that talks to Kafka only through
// --brokers, as a client (validate): its help leaves out the flags of the
// embedded broker, of state and of processors.
const clientOnlyAnnotation = "weft/client-only"

// processorFlags are the global flags a client-only command ignores.
var processorFlags = []string{
	"embedded-addr", "embedded-sync", "state-dir", "start-offset", "replication-factor", "give-up-after",
}

// markClientOnly annotates cmd as a client-only command.
func markClientOnly(cmd *cobra.Command) *cobra.Command {
	if cmd.Annotations == nil {
		cmd.Annotations = map[string]string{}
	}
	cmd.Annotations[clientOnlyAnnotation] = "true"
	return cmd
}

// markOffline annotates cmd as one that does not talk to Kafka.
func markOffline(cmd *cobra.Command) *cobra.Command {
	if cmd.Annotations == nil {
		cmd.Annotations = map[string]string{}
	}
	cmd.Annotations[offlineAnnotation] = "true"
	return cmd
}

// offline reports whether c does not talk to Kafka: annotated so, or one
// of cobra's own help and completion commands.
func offline(c *cobra.Command) bool {
	for p := c; p != nil; p = p.Parent() {
		if p.Annotations[offlineAnnotation] == "true" || p.Name() == "completion" {
			return true
		}
	}
	return c.Name() == "help"
}

// hideKafkaFlagsInHelp makes the help of offline commands leave out the
// Kafka flags, and that of client-only commands the processor flags, which
// they accept (they are global) but ignore.
func hideKafkaFlagsInHelp(root *cobra.Command) {
	help := root.HelpFunc()
	root.SetHelpFunc(func(c *cobra.Command, args []string) {
		var hide []string
		switch {
		case offline(c):
			hide = kafkaFlags
		case c.Annotations[clientOnlyAnnotation] == "true":
			hide = processorFlags
		default:
			help(c, args)
			return
		}
		var hidden []*pflag.Flag
		for _, name := range hide {
			if f := root.PersistentFlags().Lookup(name); f != nil && !f.Hidden {
				f.Hidden = true
				hidden = append(hidden, f)
			}
		}
		defer func() {
			for _, f := range hidden {
				f.Hidden = false
			}
		}()
		help(c, args)
	})
}
