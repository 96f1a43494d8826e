package main

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/weftstream/weft/topofile"
	"github.com/weftstream/weft/topology"
)

func newDescribeCommand(_ *globalFlags) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "describe <file>",
		Short: "Describe a topology file: its sub-topologies, topics and state stores",
		Long: `Print the topology of a topology file as weft compiles it, without
connecting to Kafka.

--format text (the default) prints it like Kafka Streams' Topology.describe():
one sub-topology per consumer group, with its nodes ("Source:", "Processor:",
"Sink:", "--> children", "<-- parents"), then the topics it reads and writes
(inputs, outputs, repartition, table and dead-letter topics) and its state
stores with their changelog topics.

--format mermaid prints a Mermaid flowchart (paste it into Markdown on
GitHub), --format dot a Graphviz digraph (weft describe app.yaml --format dot
| dot -Tsvg > app.svg). In both, topics are rounded boxes, processors boxes,
state stores cylinders, and each consumer group is a subgraph.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return &usageError{fmt.Errorf("describe needs one topology file, got %d arguments", len(args))}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if !slices.Contains(topology.DescribeFormats, format) {
				return &usageError{fmt.Errorf("--format %q: use %s", format, strings.Join(topology.DescribeFormats, ", "))}
			}
			return describeFile(args[0], format, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&format, "format", "text", "output format: "+strings.Join(topology.DescribeFormats, ", "))
	return cmd
}

// describeFile loads the topology file at path, compiles it and writes its
// description in format to w.
func describeFile(path, format string, w io.Writer) error {
	f, err := topofile.LoadFile(path)
	if err != nil {
		return err
	}
	c, err := topology.Compile(f.Topology)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return topology.Describe(w, c, format)
}
