package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/weftstream/weft/broker"
	"github.com/weftstream/weft/eventfile"
	"github.com/weftstream/weft/examples/bank"
	"github.com/weftstream/weft/processors"
)

type demoFlags struct {
	events   string
	expected string
	exit     bool
}

func newDemoCommand(g *globalFlags) *cobra.Command {
	f := &demoFlags{}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the bank projection on the embedded broker with sample events",
		Long: `A self-contained tour: start the embedded broker on --embedded-addr (fresh,
in a temporary directory), produce the sample account events from --events
to topic bank-events, run the bank projection until it has handled every
event, print part of the read model and check all of it against --expected
(computed independently of weft). Then keep running so that you can query
the read model from another terminal, e.g.

  go run ./cmd/weft get bank-balances acc-0001

until Ctrl-C (or exit at once with --exit). Run it from the repository root,
or point --events at the file.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			checked := false
			err := runDemo(cmd.Context(), cmd.OutOrStdout(), g, f, &checked)
			if !checked && cmd.Context().Err() != nil && !errors.Is(err, errInterrupted) {
				// Stopped before the check, whatever step noticed it.
				err = errors.Join(errInterrupted, err)
			}
			return err
		},
	}
	cmd.Flags().StringVar(&f.events, "events", filepath.Join("testdata", "bank", "events.jsonl"), "account events, JSON lines")
	cmd.Flags().StringVar(&f.expected, "expected", "", "expected read model, JSON lines (default: expected.jsonl beside --events, if present)")
	cmd.Flags().BoolVar(&f.exit, "exit", false, "exit after the check instead of serving until Ctrl-C")
	return cmd
}

// runDemo runs the tour; checked tells whether it got as far as checking
// the read model.
func runDemo(ctx context.Context, out io.Writer, g *globalFlags, f *demoFlags, checked *bool) error {
	log, err := g.logger(os.Stderr)
	if err != nil {
		return err
	}
	events, err := os.Open(f.events)
	if err != nil {
		return fmt.Errorf("open sample events (run from the repository root, or pass --events): %w", err)
	}
	defer events.Close()

	dir, err := os.MkdirTemp("", "weft-demo-")
	if err != nil {
		return fmt.Errorf("create demo directory: %w", err)
	}
	defer os.RemoveAll(dir)
	b, err := broker.Start(ctx, broker.WithAddr(g.embeddedAddr), broker.WithDataDir(filepath.Join(dir, "broker")),
		broker.WithLogger(log.With("component", "broker")))
	if err != nil {
		return err
	}
	defer b.Close()
	k := g.kafka(b.Addrs())
	fmt.Fprintf(out, "embedded Kafka broker listening on %s\n", b.Addrs()[0])

	em, err := processors.NewEmitter(ctx, bank.DefaultInput, processors.WithKafka(k))
	if err != nil {
		return err
	}
	// The events' own times ("at") are their event times, as with
	// 'weft produce --timestamp-field at'.
	for rec, err := range eventfile.ReadWith(events, eventfile.Options{KeyField: "account", TimestampField: "at"}) {
		if err != nil {
			_ = em.Close()
			return err
		}
		if ctx.Err() != nil {
			_ = em.Close()
			return errInterrupted
		}
		headers := rec.Headers
		if !rec.Time.IsZero() {
			headers = map[string]string{processors.HeaderEventTime: strconv.FormatInt(rec.Time.UnixMilli(), 10)}
		}
		em.Emit(rec.Key, rec.Value, headers)
	}
	if err := em.Close(); err != nil {
		return err
	}
	produced := em.Sent()
	fmt.Fprintf(out, "produced %d account events to topic %s\n", produced, bank.DefaultInput)

	p, tally, _, shutdown, err := newBankProcessor(ctx, log, k, filepath.Join(dir, "state"), bank.DefaultInput, bank.DefaultGroup)
	if err != nil {
		return err
	}
	defer shutdown()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }()

	start := time.Now()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for handled := int64(0); handled < produced; handled = tally.Processed() + tally.Rejected() {
		select {
		case err := <-done:
			return fmt.Errorf("processor stopped early: %w", err)
		case <-ctx.Done():
			stop()
			return errors.Join(errInterrupted, <-done)
		case <-tick.C:
			fmt.Fprintf(out, "\rprojecting into the read model: %d/%d events", tally.Processed()+tally.Rejected(), produced)
		}
	}
	fmt.Fprintf(out, "\rprojected %d events into table %s in %s (%d rejected)\n\n",
		produced, bank.Table(bank.DefaultGroup), time.Since(start).Round(time.Millisecond), tally.Rejected())

	get := func(key string) (*bank.Account, error) {
		v, err := p.Get(key) // the record cache's values included
		if v == nil || err != nil {
			return nil, err
		}
		return v.(*processors.Stored).Value.(*bank.Account), nil
	}
	checkErr := printAndCheck(out, f, get)
	*checked = true
	if f.exit || checkErr != nil {
		stop()
		return errors.Join(checkErr, <-done)
	}
	fmt.Fprintf(out, "\nThe processor keeps running. In another terminal, query the read model:\n"+
		"  go run ./cmd/weft get %s acc-0001\nPress Ctrl-C to stop.\n", bank.DefaultGroup)
	return <-done
}

// errInterrupted is the demo's error when Ctrl-C (or SIGTERM) stops it
// before it has checked the read model.
var errInterrupted = errors.New("demo interrupted before the read model was checked")

// printAndCheck prints some accounts and compares the whole read model with
// the expected file, when there is one.
func printAndCheck(out io.Writer, f *demoFlags, get func(string) (*bank.Account, error)) error {
	path := f.expected
	if path == "" {
		path = filepath.Join(filepath.Dir(f.events), "expected.jsonl")
		if _, err := os.Stat(path); err != nil {
			return nil
		}
	}
	want, err := readAccounts(path)
	if err != nil {
		return err
	}
	ids := make([]string, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	// Balances in cents, as the table stores them and 'weft get' prints
	// them.
	fmt.Fprintln(tw, "ACCOUNT\tOWNER\tBALANCE (CENTS)\tSTATUS\tEVENTS")
	var mismatches []string
	for i, id := range ids {
		got, err := get(id)
		if err != nil {
			return fmt.Errorf("read %s: %w", id, err)
		}
		w := want[id]
		if got == nil || got.Owner != w.Owner || got.Balance != w.Balance || got.Status != w.Status || got.Events != w.Events {
			mismatches = append(mismatches, id)
			continue
		}
		if i < 8 {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\n", got.Account, got.Owner, got.Balance, got.Status, got.Events)
		}
	}
	fmt.Fprintf(tw, "...\t\t\t\t\n")
	_ = tw.Flush()
	if len(mismatches) > 0 {
		return fmt.Errorf("read model differs from %s for %d accounts, first %s", path, len(mismatches), mismatches[0])
	}
	fmt.Fprintf(out, "\nall %d accounts match %s (computed independently)\n", len(want), path)
	return nil
}

func readAccounts(path string) (map[string]bank.Account, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open expected read model: %w", err)
	}
	defer f.Close()
	out := map[string]bank.Account{}
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		var a bank.Account
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		out[a.Account] = a
	}
	return out, sc.Err()
}
