package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/weftstream/weft/broker"
	"github.com/weftstream/weft/kafkaclient"
	"github.com/weftstream/weft/processors"
)

// globalFlags are the settings every command shares.
type globalFlags struct {
	brokers       []string
	embeddedAddr  string
	embeddedSync  bool
	stateDir      string
	logLevel      string
	logFormat     string
	kafkaVersion  string
	clientID      string
	startOffset   string
	partitions    int
	replication   int
	tls           bool
	saslMechanism string
	saslUser      string
	saslPassword  string
	giveUpAfter   time.Duration
}

const envPrefix = "WEFT_"

func newRootCommand() *cobra.Command {
	root, _ := newRoot()
	return root
}

// newRoot returns the root command and the global flags it parses into.
func newRoot() (*cobra.Command, *globalFlags) {
	g := &globalFlags{}
	root := &cobra.Command{
		Use:   "weft",
		Short: "A stateful stream processor for Kafka whose traces survive state",
		Long: `weft projects Kafka events into Pebble-backed state stores (read models)
with goka, and keeps track of which events made every stored value.

With no --brokers, weft uses its embedded Kafka-protocol broker:
'weft run' starts it in-process on --embedded-addr, and the other commands
connect to that address. Every flag can also be set through an environment
variable: WEFT_ followed by the flag name in upper case with '_' for '-'
(e.g. WEFT_BROKERS, WEFT_STATE_DIR, WEFT_SASL_PASSWORD); a command's own
flags have the command in the name too (get --meta: WEFT_GET_META). Each
flag's help names its variable.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			deprecated, err := applyEnv(cmd)
			if err != nil {
				return err
			}
			if err := g.validate(); err != nil {
				return err
			}
			if len(deprecated) > 0 {
				log, err := g.logger(cmd.ErrOrStderr())
				if err != nil {
					return err
				}
				for _, d := range deprecated {
					log.Warn(d)
				}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
		// An unknown command is a usage error, like an unknown flag.
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return &usageError{fmt.Errorf("unknown command %q: see 'weft --help' for the commands", args[0])}
			}
			return nil
		},
	}
	pf := root.PersistentFlags()
	pf.StringSliceVarP(&g.brokers, "brokers", "b", nil, "Kafka bootstrap brokers, host:port[,host:port] (empty: the embedded broker)")
	pf.StringVar(&g.embeddedAddr, "embedded-addr", broker.DefaultAddr, "address of the embedded broker, used when --brokers is empty")
	pf.BoolVar(&g.embeddedSync, "embedded-sync", false, "fsync every write of the embedded broker, so that acknowledged records survive a machine crash (slower; see 'weft broker --help')")
	pf.StringVar(&g.stateDir, "state-dir", processors.DefaultStateDir, "directory for state stores and the embedded broker's data")
	pf.StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	pf.StringVar(&g.logFormat, "log-format", "text", "log format: text or json")
	pf.StringVar(&g.kafkaVersion, "kafka-version", "", "Kafka protocol version to speak, e.g. 3.7.0 (empty: ask the brokers)")
	pf.StringVar(&g.clientID, "client-id", kafkaclient.DefaultClientID, "Kafka client id")
	pf.StringVar(&g.startOffset, "start-offset", string(kafkaclient.DefaultStartOffset), "where a new consumer group starts: earliest or latest")
	pf.IntVar(&g.partitions, "partitions", kafkaclient.DefaultPartitions, "partitions of input topics weft creates")
	pf.IntVar(&g.replication, "replication-factor", kafkaclient.DefaultReplicationFactor, "replication factor of topics weft creates (-1: the brokers' default)")
	pf.BoolVar(&g.tls, "tls", false, "connect to Kafka with TLS")
	pf.StringVar(&g.saslMechanism, "sasl-mechanism", "", "SASL mechanism: "+kafkaclient.SASLMechanisms+" (empty: no SASL)")
	pf.StringVar(&g.saslUser, "sasl-user", "", "SASL user name")
	pf.StringVar(&g.saslPassword, "sasl-password", "", "SASL password (prefer WEFT_SASL_PASSWORD; never logged)")
	pf.DurationVar(&g.giveUpAfter, "give-up-after", 0, "stop a processor that has been without the Kafka cluster this long, e.g. 5m, for a supervisor to restart it (0: keep reconnecting)")

	root.AddCommand(
		newRunCommand(g),
		newDemoCommand(g),
		newBrokerCommand(g),
		newProduceCommand(g),
		newConsumeCommand(g),
		newGetCommand(g),
		newExplainCommand(g),
		markOffline(newWatchCommand(g)),
		markClientOnly(newValidateCommand(g)),
		markOffline(newDescribeCommand(g)),
		markOffline(newTestCommand(g)),
		newReplayCommand(g), newResetCommand(g),
		markOffline(newVersionCommand()),
	)
	// weft --version prints what weft version prints.
	root.Version = versionText()
	root.SetVersionTemplate("{{.Version}}")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	annotateEnv(root)
	hideKafkaFlagsInHelp(root)
	return root, g
}

// envName is the environment variable of a global flag: WEFT_ + its name
// in upper case with '_' for '-'.
func envName(name string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// envNames returns the environment variable that sets flag f of cmd, and
// the deprecated name it also answers to ("" if none). A global flag's is
// envName (WEFT_BROKERS); a command's own flag's is named after the command
// as well (get --meta: WEFT_GET_META), and its old name without the command
// (WEFT_META) still works with a warning, unless a global flag has that
// name.
func envNames(cmd *cobra.Command, f *pflag.Flag) (name, alias string) {
	root := cmd.Root()
	if root.PersistentFlags().Lookup(f.Name) == f {
		return envName(f.Name), ""
	}
	path := strings.Fields(cmd.CommandPath())[1:] // without "weft"
	name = envName(strings.Join(append(path, f.Name), "-"))
	if root.PersistentFlags().Lookup(f.Name) != nil {
		return name, ""
	}
	return name, envName(f.Name)
}

// annotateEnv adds the environment variable of every flag to its usage.
func annotateEnv(cmd *cobra.Command) {
	mark := func(f *pflag.Flag) {
		if !strings.Contains(f.Usage, "[$") && f.Name != "help" && f.Name != "version" {
			name, _ := envNames(cmd, f)
			f.Usage += " [$" + name + "]"
		}
	}
	cmd.PersistentFlags().VisitAll(mark)
	cmd.LocalNonPersistentFlags().VisitAll(mark)
	for _, c := range cmd.Commands() {
		annotateEnv(c)
	}
}

// applyEnv sets every flag the command line did not set from its
// environment variable (see envNames), and returns a warning for every
// deprecated variable it used.
func applyEnv(cmd *cobra.Command) (deprecated []string, err error) {
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed || f.Name == "help" || f.Name == "version" {
			return // cobra's own flags have no variable
		}
		name, alias := envNames(cmd, f)
		v := os.Getenv(name)
		if v == "" && alias != "" {
			if v = os.Getenv(alias); v != "" {
				deprecated = append(deprecated, fmt.Sprintf("environment variable %s is deprecated: use %s (it sets %s --%s)", alias, name, cmd.Name(), f.Name))
				name = alias
			}
		}
		if v == "" {
			return // unset or empty: keep the default
		}
		if serr := cmd.Flags().Set(f.Name, v); serr != nil {
			err = &usageError{fmt.Errorf("environment variable %s: %w", name, serr)}
		}
	})
	return deprecated, err
}

// logger builds the slog logger the flags ask for.
func (g *globalFlags) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(g.logLevel)); err != nil {
		return nil, &usageError{fmt.Errorf("--log-level %q: use debug, info, warn or error", g.logLevel)}
	}
	opts := &slog.HandlerOptions{Level: level}
	switch g.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, &usageError{fmt.Errorf("--log-format %q: use text or json", g.logFormat)}
}

// stderrLogger is the logger the flags ask for on stderr, or nil before
// they are valid.
func (g *globalFlags) stderrLogger() *slog.Logger {
	l, err := g.logger(os.Stderr)
	if err != nil {
		return nil
	}
	return l
}

// kafka returns the client configuration for brokers.
func (g *globalFlags) kafka(brokers []string) kafkaclient.Config {
	return kafkaclient.Config{
		Brokers:           brokers,
		ClientID:          g.clientID,
		Version:           g.kafkaVersion,
		StartOffset:       kafkaclient.StartOffset(g.startOffset),
		ReplicationFactor: g.replication,
		Partitions:        g.partitions,
		TLS:               g.tls,
		SASL:              kafkaclient.SASL{Mechanism: g.saslMechanism, User: g.saslUser, Password: g.saslPassword},
		DialTimeout:       kafkaclient.DefaultDialTimeout,
		// "connecting to Kafka" when the brokers are slow to answer.
		Logger: g.stderrLogger(),
	}
}

// clientKafka is the configuration of a command that connects to a broker
// someone else runs: --brokers, or the embedded broker's address.
func (g *globalFlags) clientKafka() (kafkaclient.Config, error) {
	brokers := g.brokers
	hint := ""
	if len(brokers) == 0 {
		brokers = []string{g.embeddedAddr}
		hint = "No --brokers given, so weft looked for its embedded broker, which 'weft run' or 'weft broker' starts."
	}
	k := g.kafka(brokers)
	k.UnreachableHint = hint
	if err := k.Validate(); err != nil {
		return k, &usageError{err}
	}
	return k, nil
}

// serverKafka is the configuration of a command that runs a processor: the
// configured brokers, or else an embedded broker it starts (stopped by the
// returned function).
func (g *globalFlags) serverKafka(ctx context.Context, log *slog.Logger) (kafkaclient.Config, func(), error) {
	if len(g.brokers) > 0 {
		k := g.kafka(g.brokers)
		if err := k.Validate(); err != nil {
			return k, nil, &usageError{err}
		}
		return k, func() {}, nil
	}
	dataDir := filepath.Join(g.stateDir, "broker")
	opts := []broker.Option{broker.WithAddr(g.embeddedAddr), broker.WithDataDir(dataDir),
		broker.WithPartitions(int32(g.partitions)), broker.WithLogger(log.With("component", "broker")),
		broker.WithFlagNames("--embedded-addr", "--state-dir")}
	if g.embeddedSync {
		opts = append(opts, broker.WithSyncWrites())
	}
	b, err := broker.Start(ctx, opts...)
	if err != nil {
		return kafkaclient.Config{}, nil, err
	}
	log.Info("embedded broker started (no --brokers given)", "addr", strings.Join(b.Addrs(), ","), "data_dir", dataDir)
	return g.kafka(b.Addrs()), func() { _ = b.Close() }, nil
}
