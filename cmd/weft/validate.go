package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"github.com/spf13/cobra"
	"github.com/weftstream/weft/kafkaclient"
	"github.com/weftstream/weft/topology"
)

func newValidateCommand(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:           "validate <file>...",
		SilenceUsage:  true,
		SilenceErrors: true,
		Short:         "Check topology files without running them",
		Long: `Load each topology file, type-check its CEL expressions and compile it to
consumer groups, without connecting to Kafka.

Every mistake is printed on stderr as file:line:col: message, all of them at
once, so that editors can jump to them. A good file prints
"<file>: ok (<n> pipelines, <m> groups)" on stdout. Environment variables the
file references (${NAME}) must be set. Exits with 1 if any file has a
mistake.

With --brokers (or WEFT_BROKERS) it also looks at the topics that exist on
that cluster: the topics a consumer group reads together (its input, the
tables it joins, its own table; both tables of a join_table) must have the
same number of partitions. Missing topics count with --partitions, the
number weft creates them with. 'weft run' makes the same check before it
starts.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return &usageError{errors.New("validate needs at least one topology file")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			var check partitionCheck
			if len(g.brokers) > 0 {
				k := g.kafka(g.brokers)
				if err := k.Validate(); err != nil {
					return &usageError{err}
				}
				check = func(f *topology.File, c *topology.Compiled) error {
					return checkPartitions(cmd.Context(), k, f, c)
				}
			}
			bad := 0
			for _, path := range args {
				if strings.HasSuffix(path, ".test.yaml") || strings.HasSuffix(path, ".test.yml") {
					// Test cases (weft test) often sit beside the topologies a
					// glob names; they are not topology files.
					fmt.Fprintf(cmd.OutOrStdout(), "%s: skipped (test cases: run 'weft test' on its topology)\n", path)
					continue
				}
				if !validateFile(path, cmd.OutOrStdout(), cmd.ErrOrStderr(), check) {
					bad++
				}
			}
			if bad > 0 {
				return fmt.Errorf("%d of %d topology files have errors", bad, len(args))
			}
			return nil
		},
	}
}

// partitionCheck checks the topics of a compiled file on a cluster.
type partitionCheck func(*topology.File, *topology.Compiled) error

// checkPartitions checks that the topics the groups of c read together are
// co-partitioned on the cluster k (see topology.File.CheckPartitions).
func checkPartitions(ctx context.Context, k kafkaclient.Config, f *topology.File, c *topology.Compiled) error {
	counts, err := k.PartitionCounts(ctx, c.CoPartitionTopics())
	if err != nil {
		return err
	}
	return f.CheckPartitions(c, func(topic string) (int, bool) {
		n, ok := counts[topic]
		return n, ok
	}, k.DefaultPartitions())
}

// validateFile checks one topology file (and its topics, with check),
// printing its errors on stderr or a summary on stdout; it reports whether
// the file is good.
func validateFile(path string, stdout, stderr io.Writer, check partitionCheck) bool {
	f, err := topology.LoadFile(path)
	if err != nil {
		var ces topology.ConfigErrors
		if errors.As(err, &ces) {
			for _, e := range ces {
				fmt.Fprintln(stderr, e.Error())
			}
		} else if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
			fmt.Fprintf(stderr, "%s: %v\n", path, pe.Err)
		} else {
			fmt.Fprintf(stderr, "%s: %v\n", path, err)
		}
		return false
	}
	c, err := topology.Compile(f.Topology)
	if err != nil {
		fmt.Fprintf(stderr, "%s:1:1: %v\n", path, err)
		return false
	}
	if check != nil {
		if err := check(f, c); err != nil {
			var ces topology.ConfigErrors
			if errors.As(err, &ces) {
				for _, e := range ces {
					fmt.Fprintln(stderr, e.Error())
				}
			} else {
				fmt.Fprintf(stderr, "%s: check the topics: %v\n", path, err)
			}
			return false
		}
	}
	fmt.Fprintf(stdout, "%s: ok (%d pipelines, %d groups)\n", path, len(f.Pipelines), len(c.Groups))
	return true
}
