package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"github.com/spf13/cobra"
	"github.com/weftstream/weft/kafkaclient"
	"github.com/weftstream/weft/topofile"
	"github.com/weftstream/weft/topology"
)

func newValidateCommand(g *globalFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
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
starts.

With --json the output is JSON lines on stdout, one per mistake
({"kind":"error","file","line","column","message"}; line and column are
left out when the mistake has no position), one per good file
({"kind":"ok","file","pipelines","groups"}) or skipped file
({"kind":"skipped","file"}), then {"kind":"summary","files","ok","failed",
"skipped","errors"}.`,
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
				check = func(f *topofile.File, c *topology.Compiled) error {
					return checkPartitions(cmd.Context(), k, f, c)
				}
			}
			out := validateOutput{w: cmd.OutOrStdout(), errw: cmd.ErrOrStderr(), json: asJSON}
			for _, path := range args {
				if strings.HasSuffix(path, ".test.yaml") || strings.HasSuffix(path, ".test.yml") {
					// Test cases (weft test) often sit beside the topologies a
					// glob names; they are not topology files.
					out.skipped(path)
					continue
				}
				pipelines, groups, diags := validateFile(path, check)
				out.file(path, pipelines, groups, diags)
			}
			if err := out.summary(); err != nil {
				return err
			}
			if out.bad > 0 {
				return fmt.Errorf("%d of %d topology files have errors", out.bad, len(args))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON lines (mistakes, good files, a summary) on stdout")
	return cmd
}

// partitionCheck checks the topics of a compiled file on a cluster.
type partitionCheck func(*topofile.File, *topology.Compiled) error

// checkPartitions checks that the topics the groups of c read together are
// co-partitioned on the cluster k (see topofile.File.CheckPartitions).
func checkPartitions(ctx context.Context, k kafkaclient.Config, f *topofile.File, c *topology.Compiled) error {
	counts, err := k.PartitionCounts(ctx, c.CoPartitionTopics())
	if err != nil {
		return err
	}
	return f.CheckPartitions(c, func(topic string) (int, bool) {
		n, ok := counts[topic]
		return n, ok
	}, k.DefaultPartitions())
}

// diagnostic is one mistake in a topology file.
type diagnostic struct {
	File    string
	Line    int // 0: no position
	Column  int
	Message string
}

// String is "file:line:col: message", or "file: message" without a
// position.
func (d diagnostic) String() string {
	if d.Line == 0 {
		return fmt.Sprintf("%s: %s", d.File, d.Message)
	}
	return fmt.Sprintf("%s:%d:%d: %s", d.File, d.Line, d.Column, d.Message)
}

func configDiagnostics(ces topofile.ConfigErrors) []diagnostic {
	out := make([]diagnostic, 0, len(ces))
	for _, e := range ces {
		out = append(out, diagnostic{File: e.File, Line: e.Line, Column: e.Col, Message: e.Msg})
	}
	return out
}

// validateFile checks one topology file (and its topics, with check): its
// pipelines and groups when it is good, else its mistakes.
func validateFile(path string, check partitionCheck) (pipelines, groups int, diags []diagnostic) {
	f, err := topofile.LoadFile(path)
	if err != nil {
		var ces topofile.ConfigErrors
		if errors.As(err, &ces) {
			return 0, 0, configDiagnostics(ces)
		} else if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
			return 0, 0, []diagnostic{{File: path, Message: pe.Err.Error()}}
		}
		return 0, 0, []diagnostic{{File: path, Message: err.Error()}}
	}
	c, err := topology.Compile(f.Topology)
	if err != nil {
		return 0, 0, []diagnostic{{File: path, Line: 1, Column: 1, Message: err.Error()}}
	}
	if check != nil {
		if err := check(f, c); err != nil {
			var ces topofile.ConfigErrors
			if errors.As(err, &ces) {
				return 0, 0, configDiagnostics(ces)
			}
			return 0, 0, []diagnostic{{File: path, Message: "check the topics: " + err.Error()}}
		}
	}
	return len(f.Pipelines), len(c.Groups), nil
}

// validateOutput prints what validate found: text (mistakes on stderr,
// good files on stdout) or JSON lines on stdout.
type validateOutput struct {
	w, errw                         io.Writer
	json                            bool
	files, ok, bad, skips, mistakes int
	err                             error
}

// validateLine is a JSON line of validate --json.
type validateLine struct {
	Kind      string `json:"kind"`
	File      string `json:"file,omitempty"`
	Line      int    `json:"line,omitempty"`
	Column    int    `json:"column,omitempty"`
	Message   string `json:"message,omitempty"`
	Pipelines *int   `json:"pipelines,omitempty"`
	Groups    *int   `json:"groups,omitempty"`
	Files     *int   `json:"files,omitempty"`
	OK        *int   `json:"ok,omitempty"`
	Failed    *int   `json:"failed,omitempty"`
	Skipped   *int   `json:"skipped,omitempty"`
	Errors    *int   `json:"errors,omitempty"`
}

func (o *validateOutput) line(l validateLine) {
	if o.err != nil {
		return
	}
	b, err := json.Marshal(l)
	if err == nil {
		_, err = fmt.Fprintf(o.w, "%s\n", b)
	}
	o.err = err
}

func (o *validateOutput) skipped(path string) {
	o.files++
	o.skips++
	if o.json {
		o.line(validateLine{Kind: "skipped", File: path})
		return
	}
	fmt.Fprintf(o.w, "%s: skipped (test cases: run 'weft test' on its topology)\n", path)
}

func (o *validateOutput) file(path string, pipelines, groups int, diags []diagnostic) {
	o.files++
	if len(diags) == 0 {
		o.ok++
		if o.json {
			o.line(validateLine{Kind: "ok", File: path, Pipelines: &pipelines, Groups: &groups})
			return
		}
		fmt.Fprintf(o.w, "%s: ok (%d pipelines, %d groups)\n", path, pipelines, groups)
		return
	}
	o.bad++
	o.mistakes += len(diags)
	for _, d := range diags {
		if o.json {
			o.line(validateLine{Kind: "error", File: d.File, Line: d.Line, Column: d.Column, Message: d.Message})
			continue
		}
		fmt.Fprintln(o.errw, d.String())
	}
}

// summary ends JSON output with the counts; it returns the first error
// writing the output.
func (o *validateOutput) summary() error {
	if o.json {
		o.line(validateLine{Kind: "summary", Files: &o.files, OK: &o.ok, Failed: &o.bad, Skipped: &o.skips, Errors: &o.mistakes})
	}
	return o.err
}
