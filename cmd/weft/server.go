package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/spf13/pflag"
	"github.com/weftstream/weft/serve/client"
	"github.com/weftstream/weft/statestore"
)

// serverFlags choose the query API of a running weft that 'get' and
// 'explain' ask before they restore a table themselves.
type serverFlags struct {
	url   string
	token string
}

func (s *serverFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&s.url, "server", "", "query API of a running 'weft run' to ask (e.g. http://127.0.0.1:7070); "+
		"empty: with the embedded broker, try the default one, then restore the table locally")
	fs.StringVar(&s.token, "server-token", "", "bearer token of the query API (prefer its environment variable)")
}

// client returns the API client to ask and whether --server named it (its
// failures are then final); nil when no API is to be asked.
func (s *serverFlags) client(g *globalFlags) (*client.Client, bool, error) {
	if s.url != "" {
		c, err := client.New(s.url, s.token)
		if err != nil {
			return nil, true, &usageError{err}
		}
		return c, true, nil
	}
	if len(g.brokers) > 0 {
		// Another cluster: a local weft run would answer for the wrong one.
		return nil, false, nil
	}
	c, err := client.New("http://"+defaultHTTPAddr, s.token)
	return c, false, err
}

// asked is the outcome of asking the query API: done means the answer
// (or err) is final; otherwise restore the table locally.
type asked struct {
	done bool
	err  error
}

// decide tells what an API error means for the command.
func (s *serverFlags) decide(log *slog.Logger, c *client.Client, explicit bool, err error) asked {
	switch {
	case err == nil:
		return asked{done: true}
	case explicit, errors.Is(err, client.ErrNoValue):
		return asked{done: true, err: err}
	}
	log.Debug("the query API did not answer; restoring the table locally", "server", c.URL(), "error", err)
	return asked{}
}

// askValue asks the API for the value of key (asOf as in get --as-of).
func (s *serverFlags) askValue(ctx context.Context, log *slog.Logger, g *globalFlags, table, key, asOf string) (statestore.Envelope, asked) {
	c, explicit, err := s.client(g)
	if err != nil || c == nil {
		return statestore.Envelope{}, asked{done: err != nil, err: err}
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	env, err := c.Get(ctx, table, key, asOf)
	return env, s.decide(log, c, explicit, err)
}

// askLineage asks the API for the versions of key.
func (s *serverFlags) askLineage(ctx context.Context, log *slog.Logger, g *globalFlags, table, key string) ([]statestore.Envelope, asked) {
	c, explicit, err := s.client(g)
	if err != nil || c == nil {
		return nil, asked{done: err != nil, err: err}
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	versions, err := c.Lineage(ctx, table, key)
	return versions, s.decide(log, c, explicit, err)
}
