package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/weftstream/weft/topofile"
	"github.com/weftstream/weft/topotest"
)

func newTestCommand(_ *globalFlags) *cobra.Command {
	var tests string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "test <topology.yaml>",
		Short: "Run the test cases of a topology file, without a broker",
		Long: `Run the test cases of a topology file on goka's in-memory tester, without
Kafka: each case feeds its input records to a fresh copy of the topology and
compares the records it wrote, its table values and the number of records it
sent to dead-letter topics with what the case expects.

The cases are read from --tests, by default the topology file's name with
.yaml replaced by .test.yaml (app.yaml: app.test.yaml). The format is
described in docs/topology-format.md, section "Test cases".

Prints PASS or FAIL per case, with a diff of every failed expectation, then
a summary. Exits with 1 if any case failed.

With --json the output is JSON lines: one per case
({"kind":"case","name","passed","diff"}, diff being the failed
expectations), then {"kind":"summary","cases","failed"}.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return &usageError{fmt.Errorf("test needs one topology file, got %d arguments", len(args))}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			path := tests
			if path == "" {
				path = defaultTestsPath(args[0])
			}
			return runTests(cmd.Context(), args[0], path, cmd.OutOrStdout(), asJSON)
		},
	}
	cmd.Flags().StringVar(&tests, "tests", "", "test file (default: the topology file with .yaml replaced by .test.yaml)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON lines (one per case, then a summary)")
	return cmd
}

// defaultTestsPath is the test file beside a topology file: app.yaml ->
// app.test.yaml.
func defaultTestsPath(topologyPath string) string {
	ext := filepath.Ext(topologyPath)
	switch ext {
	case ".yaml", ".yml":
		return strings.TrimSuffix(topologyPath, ext) + ".test" + ext
	}
	return topologyPath + ".test.yaml"
}

// runTests runs the cases of testsPath on the topology file at
// topologyPath and reports to w; the error says how many cases failed.
func runTests(ctx context.Context, topologyPath, testsPath string, w io.Writer, asJSON bool) error {
	f, err := topofile.LoadFile(topologyPath)
	if err != nil {
		return err
	}
	cases, err := topotest.LoadCases(testsPath)
	if err != nil {
		return err
	}
	results, err := topotest.Run(ctx, f.Topology, cases)
	if err != nil {
		return err
	}
	report := reportTests
	if asJSON {
		report = reportTestsJSON
	}
	failed, err := report(w, results)
	if err != nil {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d test cases failed", failed, len(results))
	}
	return nil
}

// reportTests prints PASS/FAIL per case, the failures indented, and a
// summary; it returns the number of failed cases.
func reportTests(w io.Writer, results []topotest.Result) (int, error) {
	failed := 0
	for _, r := range results {
		if r.Passed {
			fmt.Fprintf(w, "PASS %s\n", r.Case)
			continue
		}
		failed++
		fmt.Fprintf(w, "FAIL %s\n", r.Case)
		for _, f := range r.Failures {
			for _, line := range strings.Split(f, "\n") {
				fmt.Fprintf(w, "    %s\n", line)
			}
		}
	}
	_, err := fmt.Fprintf(w, "%d passed, %d failed\n", len(results)-failed, failed)
	return failed, err
}

// testLine is a JSON line of weft test --json.
type testLine struct {
	Kind   string   `json:"kind"`
	Name   string   `json:"name,omitempty"`
	Passed *bool    `json:"passed,omitempty"`
	Diff   []string `json:"diff,omitempty"`
	Cases  *int     `json:"cases,omitempty"`
	Failed *int     `json:"failed,omitempty"`
}

// reportTestsJSON is reportTests as JSON lines.
func reportTestsJSON(w io.Writer, results []topotest.Result) (int, error) {
	enc := json.NewEncoder(w)
	failed := 0
	for _, r := range results {
		if !r.Passed {
			failed++
		}
		if err := enc.Encode(testLine{Kind: "case", Name: r.Case, Passed: &r.Passed, Diff: r.Failures}); err != nil {
			return failed, err
		}
	}
	cases := len(results)
	return failed, enc.Encode(testLine{Kind: "summary", Cases: &cases, Failed: &failed})
}
