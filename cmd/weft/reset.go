package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/weftstream/weft/replay"
	"github.com/weftstream/weft/topofile"
)

func newResetCommand(g *globalFlags) *cobra.Command {
	var (
		target    targetFlags
		pipelines []string
		execute   bool
		asJSON    bool
	)
	cmd := &cobra.Command{
		Use:   "reset <topology.yaml> [--pipeline <name>...] [start]",
		Short: "Reset a topology's groups so that the next run reprocesses its inputs (like Kafka Streams' reset tool)",
		Long: `Reset the consumer groups of a topology (all, or those of the --pipeline
given and the groups they read from): their committed offsets on the input
topics go to --from-earliest (the default), --from-offset, --from-time or
--by-duration; their internal topics (repartition and table topics) and
their local state under --state-dir (processors/<group>/) are deleted. The
next 'weft run' rebuilds the tables from there. Output topics are not
touched.

Without --execute the reset prints its plan and changes nothing. It refuses
while the groups have active members and names them: stop every instance
first.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return &usageError{fmt.Errorf("reset takes one topology file, got %d arguments", len(args))}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			from, err := target.from(cmd)
			if err != nil {
				return err
			}
			log, err := g.logger(os.Stderr)
			if err != nil {
				return err
			}
			file, err := topofile.LoadFile(args[0])
			if err != nil {
				return err
			}
			g.applyFile(cmd, file)
			k, err := g.clientKafka()
			if err != nil {
				return err
			}
			opts, err := k.FranzOptions()
			if err != nil {
				return &usageError{err}
			}
			cl, err := kgo.NewClient(opts...)
			if err != nil {
				return fmt.Errorf("connect to Kafka: %w", err)
			}
			defer cl.Close()
			adm := kadm.NewClient(cl)
			ctx := cmd.Context()
			rp, err := replay.MakeResetPlan(ctx, adm, replay.ResetSpec{File: file, Pipelines: pipelines, From: from, StateDir: g.stateDir})
			if err != nil {
				return k.Explain(err)
			}
			out := cmd.OutOrStdout()
			if asJSON {
				if err := writeJSON(out, rp); err != nil {
					return err
				}
			} else {
				printResetPlan(out, rp)
			}
			if !execute {
				if !asJSON {
					fmt.Fprintln(out, "nothing changed: run again with --execute to reset")
				}
				return nil
			}
			if err := replay.ExecuteReset(ctx, adm, log, g.stateDir, rp); err != nil {
				return k.Explain(err)
			}
			if !asJSON {
				fmt.Fprintf(out, "reset %d groups of %s: the next run reprocesses from the new offsets\n", len(rp.Groups), rp.App)
			}
			return nil
		},
	}
	target.register(cmd)
	cmd.Flags().StringSliceVar(&pipelines, "pipeline", nil, "pipeline whose group to reset (repeatable; the groups it reads from come along); default all")
	cmd.Flags().BoolVar(&execute, "execute", false, "apply the reset (without it, only print the plan)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the plan as JSON")
	return cmd
}

func printResetPlan(w io.Writer, rp *replay.ResetPlan) {
	fmt.Fprintf(w, "reset %s (app %s)\n", rp.File, rp.App)
	fmt.Fprintln(w, "groups:")
	for _, g := range rp.Groups {
		fmt.Fprintf(w, "  %s (reads %s)\n", g.Group, strings.Join(g.Input, ", "))
	}
	fmt.Fprintln(w, "new committed offsets:")
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  TOPIC\tPARTITION\tNOW\tNEW\tTO REPROCESS\tNOTE")
	for _, r := range rp.Partitions {
		now := "-"
		if r.Done != nil {
			now = fmt.Sprint(*r.Done)
		}
		fmt.Fprintf(tw, "  %s\t%d\t%s\t%d\t%d\t%s\n", r.Topic, r.Partition, now, r.From, r.Records, r.Note)
	}
	tw.Flush()
	fmt.Fprintf(w, "deletes topics: %s\n", strings.Join(rp.DeleteTopics, ", "))
	fmt.Fprintf(w, "deletes local state: %s\n", strings.Join(rp.StateDirs, ", "))
	for _, m := range rp.Active {
		fmt.Fprintf(w, "active member: %s\n", m)
	}
	for _, n := range rp.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
}
