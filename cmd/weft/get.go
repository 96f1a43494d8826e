package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/spf13/cobra"
	"github.com/weftstream/weft/processors"
)

func newGetCommand(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "get <table> <key>",
		Short: "Print the value of a key in a table",
		Long: `Print the value stored under <key> in <table>, read from the table topic:
<table> is a processor group (its table topic is <group>-table) or a table
topic. The table is restored into a temporary local store first, so this
works from any machine that reaches the brokers. Exits with 1 if the key has
no value.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 2 {
				return &usageError{fmt.Errorf("get needs <table> and <key>, got %d arguments", len(args))}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := g.logger(os.Stderr)
			if err != nil {
				return err
			}
			k, err := g.clientKafka()
			if err != nil {
				return err
			}
			table := tableTopic(args[0])
			dir, err := os.MkdirTemp("", "weft-get-")
			if err != nil {
				return fmt.Errorf("create temporary state directory: %w", err)
			}
			defer os.RemoveAll(dir)
			v, err := processors.StartView(cmd.Context(), table, new(codec.Bytes),
				processors.WithKafka(k), processors.WithStateDir(dir), processors.WithLogger(log))
			if err != nil {
				return err
			}
			defer v.Close()
			val, err := v.Get(args[1])
			if err != nil {
				return fmt.Errorf("get %s from %s: %w", args[1], table, err)
			}
			if val == nil {
				return fmt.Errorf("key %q has no value in table %s", args[1], table)
			}
			fmt.Fprintln(cmd.OutOrStdout(), string(val.([]byte)))
			return nil
		},
	}
	return cmd
}

// tableTopic names the table topic of a group, or returns a table topic
// unchanged.
func tableTopic(name string) goka.Table {
	if strings.HasSuffix(name, "-table") {
		return goka.Table(name)
	}
	return goka.GroupTable(goka.Group(name))
}
