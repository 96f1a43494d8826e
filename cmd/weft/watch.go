package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/weftstream/weft/serve"
	"github.com/weftstream/weft/serve/client"
)

// Reconnection delays of weft watch (doubling from the first to the last).
const (
	watchRetryFirst = 200 * time.Millisecond
	watchRetryMax   = 5 * time.Second
)

func newWatchCommand(g *globalFlags) *cobra.Command {
	var asJSON bool
	var prefix string
	var sf serverFlags
	cmd := &cobra.Command{
		Use:   "watch <table> <key> | watch <table> --prefix <prefix>",
		Short: "Print the changes of a key (or of the keys with a prefix) as they happen",
		Long: `Print every change of <key> in <table> (or of every key that starts with
--prefix) as the running weft instance at --server acknowledges it: one line
per change with the key, its version, the value and the writer's
traceparent, or the change as a JSON line with --json (a delete has
"deleted": true). Nothing is restored locally: watch needs the query API of
a running 'weft run' (default http://127.0.0.1:7070).

When the stream breaks (the instance restarts, the network drops), watch
reconnects and resumes after the last change it printed (Last-Event-ID). If
the instance no longer holds the changes in between, watch says so on
stderr and, for a key, prints its current value. A key held by another
instance is watched there (the instance forwards the stream); a prefix is
watched at every instance that holds some of the table's partitions (the
first one names the others). Ctrl-C ends it (exit 0).`,
		Args: func(cmd *cobra.Command, args []string) error {
			switch {
			case prefix == "" && len(args) != 2:
				return &usageError{fmt.Errorf("watch needs <table> and <key> (or <table> and --prefix), got %d arguments", len(args))}
			case prefix != "" && len(args) != 1:
				return &usageError{fmt.Errorf("watch --prefix needs <table> alone, got %d arguments", len(args))}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := g.logger(os.Stderr)
			if err != nil {
				return err
			}
			url := sf.url
			if url == "" {
				url = "http://" + defaultHTTPAddr
			}
			c, err := client.New(url, sf.token)
			if err != nil {
				return &usageError{fmt.Errorf("--server: %w", err)}
			}
			q := client.WatchQuery{Key: prefix, IsPrefix: true}
			if prefix == "" {
				q = client.WatchQuery{Key: args[1]}
			}
			w := &watchPrinter{out: cmd.OutOrStdout(), errOut: cmd.ErrOrStderr(), json: asJSON}
			err = newWatchSet(cmd.Context(), log, sf.token, args[0], q, w).run(c)
			if errors.Is(err, context.Canceled) && cmd.Context().Err() != nil {
				return nil // Ctrl-C
			}
			return err
		},
	}
	cmd.Flags().StringVar(&prefix, "prefix", "", "watch every key that starts with this prefix instead of one key")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print every change as a JSON line")
	sf.register(cmd.Flags())
	cmd.Flags().Lookup("server").Usage = "query API of the running 'weft run' to watch (default http://" + defaultHTTPAddr + ")"
	return cmd
}

// follow watches table until ctx ends, reconnecting after the last event
// seen. A first connection that fails (but for a 503: the key's partition
// is restoring or moving), and answers that will not change by retrying
// (no such table, a refused token), end it with an error.
func follow(ctx context.Context, log *slog.Logger, c *client.Client, table string, q client.WatchQuery, w *watchPrinter, set *watchSet) error {
	delay := watchRetryFirst
	connected := false
	for {
		start := time.Now()
		last, err := c.Watch(ctx, table, q, func(e client.Event) error {
			connected = true
			return w.print(ctx, c, table, q, e, set)
		})
		q.LastEventID = last
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var werr *writeError
		switch {
		case errors.As(err, &werr), errors.Is(err, client.ErrNoTable), errors.Is(err, client.ErrRefused):
			return fmt.Errorf("watch %s: %w", table, err)
		case err != nil && !connected && q.LastEventID == "" && !errors.Is(err, client.ErrUnavailable):
			// Nothing reached (a wrong --server): say so. A partition that
			// is restoring or moving (503) is waited for.
			return fmt.Errorf("watch %s at %s: %w", table, c.URL(), err)
		}
		connected = connected || q.LastEventID != ""
		if time.Since(start) > watchRetryMax {
			delay = watchRetryFirst // it ran a while: a fresh break
		}
		log.Warn("watch stream ended; reconnecting", "server", c.URL(), "table", table, "last_event_id", q.LastEventID, "in", delay, "error", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, watchRetryMax)
	}
}

// watchSet follows a watch at every instance that holds some of what it
// watches: the first one, and those its "partial" event names (a prefix
// watch on an instance that does not hold every partition).
type watchSet struct {
	ctx    context.Context
	cancel context.CancelFunc
	log    *slog.Logger
	token  string
	table  string
	q      client.WatchQuery
	w      *watchPrinter
	first  string // URL of the first instance
	mu     sync.Mutex
	seen   map[string]bool
	ended  chan error // each follow's end
}

func newWatchSet(ctx context.Context, log *slog.Logger, token, table string, q client.WatchQuery, w *watchPrinter) *watchSet {
	ctx, cancel := context.WithCancel(ctx)
	return &watchSet{ctx: ctx, cancel: cancel, log: log, token: token, table: table, q: q, w: w,
		seen: map[string]bool{}, ended: make(chan error, 16)}
}

// run follows the watch at c (and the instances it names) until one of
// the follows ends: ctx ended, or a final error.
func (s *watchSet) run(c *client.Client) error {
	defer s.cancel()
	s.first = c.URL()
	s.start(c)
	return <-s.ended
}

func (s *watchSet) start(c *client.Client) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen[c.URL()] {
		return
	}
	s.seen[c.URL()] = true
	go func() {
		err := follow(s.ctx, s.log, c, s.table, s.q, s.w, s)
		if c.URL() != s.first && s.ctx.Err() == nil {
			// The others' changes still come: say what is missing.
			s.w.note("stopped watching at %s: %v", c.URL(), err)
			return
		}
		select {
		case s.ended <- err:
		default: // run returned already
		}
	}()
}

// partial follows the prefix at the instances a "partial" event names.
func (s *watchSet) partial(data []byte) {
	var p struct {
		Elsewhere []struct {
			URL string `json:"url"`
		} `json:"elsewhere"`
		Unknown []int32 `json:"unknown"`
	}
	if err := json.Unmarshal(data, &p); err != nil {
		s.w.note("the instance holds only some partitions and named the others unreadably: %s", data)
		return
	}
	if len(p.Unknown) > 0 {
		s.w.note("no instance is known to hold partitions %v: their changes are not shown", p.Unknown)
	}
	for _, o := range p.Elsewhere {
		c, err := client.New(o.URL, s.token)
		if err != nil {
			s.w.note("cannot watch at %s: %v", o.URL, err)
			continue
		}
		s.start(c)
	}
}

// watchPrinter prints the events of a watch (from several streams).
type watchPrinter struct {
	mu     sync.Mutex
	out    io.Writer
	errOut io.Writer
	json   bool
}

// note prints a line for the user on stderr.
func (w *watchPrinter) note(format string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	fmt.Fprintf(w.errOut, "weft watch: "+format+"\n", args...)
}

// writeError is a failure to print (stdout closed): final.
type writeError struct{ err error }

func (e *writeError) Error() string { return "print: " + e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }

func (w *watchPrinter) print(ctx context.Context, c *client.Client, table string, q client.WatchQuery, e client.Event, set *watchSet) error {
	switch e.Kind {
	case "":
		return w.change(e.Change)
	case "open":
		if set != nil && c.URL() != set.first {
			w.note("watching %s too", c.URL())
		}
	case "missed":
		w.note("some changes were missed (the instance no longer holds them): %s", e.Data)
		if q.IsPrefix {
			return nil
		}
		// Show where the key is now instead.
		gctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		env, err := c.Get(gctx, table, q.Key, "")
		switch {
		case errors.Is(err, client.ErrNoValue):
			return nil
		case err != nil:
			w.note("reading the current value failed: %v", err)
			return nil
		}
		return w.change(serve.ValueOf(table, q.Key, env))
	case "partial":
		if set != nil {
			set.partial(e.Data)
		}
	case "unavailable":
		w.note("the instance no longer serves the key: %s", e.Data)
	}
	return nil
}

func (w *watchPrinter) change(v serve.Value) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	var err error
	if w.json {
		var b []byte
		if b, err = json.Marshal(v); err == nil {
			_, err = fmt.Fprintf(w.out, "%s\n", b)
		}
	} else {
		value := string(v.Value)
		switch {
		case v.Deleted:
			value = "deleted"
		case v.ValueText != "":
			value = v.ValueText
		}
		_, err = fmt.Fprintf(w.out, "%s  version %d  %s  %s\n", v.Key, v.Version, value, v.Writer)
	}
	if err != nil {
		return &writeError{err}
	}
	return nil
}
