// Package client reads tables from a running weft instance's query API
// (package serve): the values and lineage 'weft get' and 'weft explain'
// print, without restoring the table locally.
package client

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/weftstream/weft/serve"
	"github.com/weftstream/weft/statestore"
)

// Errors of the API that callers act on.
var (
	// ErrNoTable: the instance does not serve the table.
	ErrNoTable = errors.New("the server does not serve this table")
	// ErrNoValue: the key has no value (or the version asked for is not
	// recorded).
	ErrNoValue = errors.New("no value")
	// ErrUnavailable: the key's partition is restoring or held by
	// another instance.
	ErrUnavailable = errors.New("the key's partition is not served by this instance now")
)

// Client talks to one weft query API.
type Client struct {
	base  *url.URL
	token string
	http  *http.Client
}

// New returns a client of the API at baseURL (e.g. http://127.0.0.1:7070),
// sending token as a bearer token when it is not empty.
func New(baseURL, token string) (*Client, error) {
	u, err := url.Parse(strings.TrimSuffix(baseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server %q: give a URL such as http://127.0.0.1:7070", baseURL)
	}
	return &Client{base: u, token: token, http: &http.Client{Timeout: 30 * time.Second}}, nil
}

// URL returns the base URL.
func (c *Client) URL() string { return c.base.String() }

// problem is the part of an RFC 9457 answer the client reads.
type problem struct {
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Table  string `json:"table"`
}

// get requests rawPath (escaped) with query and decodes a 200 answer
// into out.
func (c *Client) get(ctx context.Context, rawPath string, query url.Values, out any) error {
	u, err := url.Parse(c.base.String() + rawPath)
	if err != nil {
		return fmt.Errorf("query URL: %w", err)
	}
	u.RawQuery = query.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("read the answer of %s: %w", u.Redacted(), err)
	}
	if resp.StatusCode == http.StatusOK {
		return json.Unmarshal(body, out)
	}
	return c.problemError(resp, body)
}

// Get returns the envelope of key in table; asOf ("" for the current
// value) is a version number or an RFC 3339 time.
func (c *Client) Get(ctx context.Context, table, key, asOf string) (statestore.Envelope, error) {
	q := url.Values{}
	if asOf != "" {
		q.Set("as_of", asOf)
	}
	var v serve.Value
	if err := c.get(ctx, "/tables/"+url.PathEscape(table)+"/"+url.PathEscape(key), q, &v); err != nil {
		return statestore.Envelope{}, err
	}
	return envelopeOf(v)
}

// Lineage returns the recorded versions of key in table, newest first.
func (c *Client) Lineage(ctx context.Context, table, key string) ([]statestore.Envelope, error) {
	var out struct {
		Versions []serve.Value `json:"versions"`
	}
	if err := c.get(ctx, "/tables/"+url.PathEscape(table)+"/"+url.PathEscape(key)+"/lineage", nil, &out); err != nil {
		return nil, err
	}
	envs := make([]statestore.Envelope, 0, len(out.Versions))
	for _, v := range out.Versions {
		e, err := envelopeOf(v)
		if err != nil {
			return nil, err
		}
		envs = append(envs, e)
	}
	return envs, nil
}

// envelopeOf turns an API value back into the envelope it shows.
func envelopeOf(v serve.Value) (statestore.Envelope, error) {
	env := statestore.Envelope{Version: v.Version, Value: v.Value, Dropped: v.ContributorsDropped, ReplayJob: v.ReplayJob}
	if v.ValueText != "" {
		env.Value = []byte(v.ValueText)
	}
	if v.EventTime != nil {
		env.EventTime = *v.EventTime
	}
	var err error
	if env.Writer, err = spanRef(v.Writer); err != nil {
		return env, err
	}
	for _, c := range v.Contributors {
		r, err := spanRef(c)
		if err != nil {
			return env, err
		}
		env.Contributors = append(env.Contributors, r)
	}
	for _, s := range v.Sources {
		env.Sources = append(env.Sources, statestore.SourceOffset{Topic: s.Topic, Partition: s.Partition, Offset: s.Offset,
			Index: s.Index, Upstream: s.Upstream})
	}
	return env, nil
}

// spanRef parses a W3C traceparent ("" gives the zero SpanRef).
func spanRef(tp string) (statestore.SpanRef, error) {
	var r statestore.SpanRef
	if tp == "" {
		return r, nil
	}
	parts := strings.Split(tp, "-")
	if len(parts) != 4 || len(parts[1]) != 32 || len(parts[2]) != 16 || len(parts[3]) != 2 {
		return r, fmt.Errorf("traceparent %q is malformed", tp)
	}
	var flags [1]byte
	if _, err := hex.Decode(r.TraceID[:], []byte(parts[1])); err != nil {
		return r, fmt.Errorf("traceparent %q: %w", tp, err)
	}
	if _, err := hex.Decode(r.SpanID[:], []byte(parts[2])); err != nil {
		return r, fmt.Errorf("traceparent %q: %w", tp, err)
	}
	if _, err := hex.Decode(flags[:], []byte(parts[3])); err != nil {
		return r, fmt.Errorf("traceparent %q: %w", tp, err)
	}
	r.Flags = flags[0]
	return r, nil
}
