package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/weftstream/weft/serve"
)

// Event is one server-sent event of a watch stream.
type Event struct {
	// Kind is "" for a change, "open" for the start of the stream (ID is
	// the server's last change then; the watch is subscribed), "partial"
	// for a prefix watch of an instance that does not serve every
	// partition (Data names the owners of the others), "missed" when changes after the id the
	// stream resumed from are no longer held (read the value again), or
	// "unavailable" when the watched key's partition left the instance.
	Kind string
	// ID is the event's id (resume after it with Last-Event-ID); a change
	// always has one.
	ID string
	// Change is the new value of a change (Deleted for a delete).
	Change serve.Value
	// Data is the event's data as sent (JSON).
	Data json.RawMessage
}

// WatchQuery selects what Watch follows: one key, or every key that
// starts with Prefix when IsPrefix.
type WatchQuery struct {
	Key      string
	IsPrefix bool
	// LastEventID resumes after this id ("" for changes from now on).
	LastEventID string
}

// maxEventBytes bounds one line of a stream.
const maxEventBytes = 16 << 20

// Watch follows the changes of table the query selects and calls fn for
// every event, until ctx ends, the server ends the stream, or fn returns
// an error. It returns the id of the last event seen (the stream's head
// id when no change came), to resume with, and why it stopped: nil when
// the server closed the stream, ctx.Err() when ctx ended, fn's error, or
// ErrNoTable, ErrUnavailable or another error when the server refused
// the watch.
func (c *Client) Watch(ctx context.Context, table string, q WatchQuery, fn func(Event) error) (lastID string, err error) {
	lastID = q.LastEventID
	u, err := url.Parse(c.base.String() + "/tables/" + url.PathEscape(table) + "/watch")
	if err != nil {
		return lastID, fmt.Errorf("watch URL: %w", err)
	}
	v := url.Values{}
	if q.IsPrefix {
		v.Set("prefix", q.Key)
	} else {
		v.Set("key", q.Key)
	}
	u.RawQuery = v.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return lastID, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	// A stream lasts: no client timeout (c.http has one), ctx ends it.
	resp, err := c.streams().Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return lastID, ctx.Err()
		}
		return lastID, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return lastID, c.problemError(resp, body)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), maxEventBytes)
	var kind, id string
	var data strings.Builder
	opened := false
	for sc.Scan() {
		line := sc.Text()
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch {
		case line == "":
			if id != "" {
				lastID = id
			}
			if !opened && id != "" && data.Len() == 0 {
				opened = true
				if err := fn(Event{Kind: "open", ID: id}); err != nil {
					return lastID, err
				}
			}
			if data.Len() > 0 {
				e := Event{Kind: kind, ID: id, Data: json.RawMessage(data.String())}
				if kind == "" {
					if err := json.Unmarshal(e.Data, &e.Change); err != nil {
						return lastID, fmt.Errorf("watch %s: undecodable change %s: %w", table, e.Data, err)
					}
				}
				if err := fn(e); err != nil {
					return lastID, err
				}
			}
			kind, id = "", ""
			data.Reset()
		case field == "": // a comment (heartbeat)
		case field == "event":
			kind = value
		case field == "id":
			id = value
		case field == "data":
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.WriteString(value)
		}
	}
	if ctx.Err() != nil {
		return lastID, ctx.Err()
	}
	if err := sc.Err(); err != nil {
		return lastID, fmt.Errorf("watch %s: the stream broke: %w", table, err)
	}
	return lastID, nil
}

// streams is the HTTP client of long-lived streams: c's transport
// without its timeout.
func (c *Client) streams() *http.Client {
	return &http.Client{Transport: c.http.Transport}
}

// problemError turns a non-200 answer into the client's errors.
func (c *Client) problemError(resp *http.Response, body []byte) error {
	var p problem
	_ = json.Unmarshal(body, &p)
	detail := p.Detail
	if detail == "" {
		detail = strings.TrimSpace(string(body))
	}
	switch {
	case resp.StatusCode == http.StatusNotFound && p.Table != "" && strings.HasPrefix(detail, "no table"):
		return fmt.Errorf("%w: %s", ErrNoTable, detail)
	case resp.StatusCode == http.StatusNotFound, resp.StatusCode == http.StatusUnprocessableEntity:
		return fmt.Errorf("%w: %s", ErrNoValue, detail)
	case resp.StatusCode == http.StatusServiceUnavailable:
		return fmt.Errorf("%w: %s", ErrUnavailable, detail)
	case resp.StatusCode == http.StatusUnauthorized, resp.StatusCode == http.StatusForbidden:
		return fmt.Errorf("%w: %s", ErrRefused, detail)
	}
	return fmt.Errorf("%s answered %s: %s", c.base.Host, resp.Status, detail)
}

// ErrRefused: the server refused the bearer token (or its absence).
var ErrRefused = errors.New("the server refused the request")
