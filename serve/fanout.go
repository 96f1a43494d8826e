package serve

// Requests that span partitions held by several instances: a scan reads
// the partitions this instance does not serve from their owners (asked
// with Weft-Forwarded-By, so that each answers from its own partitions
// only) and merges the pages in key order; a key watch is proxied to the
// key's owner for as long as the stream lasts; a prefix watch streams
// the changes of the partitions served here and says, in its first event
// "partial", which instances hold the others.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/weftstream/weft/processors"
	"github.com/weftstream/weft/tracing"
	"go.opentelemetry.io/otel/trace"
)

// fanoutTimeout bounds the scan of one owner.
const fanoutTimeout = 10 * time.Second

// elsewhere groups the partitions of t that this instance does not serve
// by the advertised URL of their owners; unknown are those without a
// known owner. Nothing without forwarding or for a request that was
// forwarded already.
func (s *Server) elsewhere(r *http.Request, t *processors.TableReader, served []int32) (byOwner map[string][]int32, unknown []int32) {
	f := s.forwarder
	if int32(len(served)) >= t.Partitions() {
		return nil, nil
	}
	byOwner = map[string][]int32{}
	for p := range t.Partitions() {
		if slices.Contains(served, p) {
			continue
		}
		owner := ""
		if f != nil && r.Header.Get(HeaderForwardedBy) == "" {
			var err error
			if owner, err = f.owner(r.Context(), string(t.Group()), p); err != nil {
				s.cfg.logger.Warn("finding the owner of a partition failed", "table", t.Topic(), "partition", p, "error", err)
			}
		}
		if u, err := url.Parse(owner); owner == "" || err != nil || u.Host == "" {
			unknown = append(unknown, p)
			continue
		}
		byOwner[owner] = append(byOwner[owner], p)
	}
	return byOwner, unknown
}

// remotePage is what one owner answered to a scan.
type remotePage struct {
	owner string
	page  scanResponse
	err   error
}

// scanElsewhere adds to out (the page of the partitions served here, in
// key order) the keys of the other partitions, read from their owners,
// and returns whether any source has more after its page. The merged page
// keeps the limit first keys: every source answered its first keys after
// from, so the next page starts after the last key kept.
func (s *Server) scanElsewhere(r *http.Request, t *processors.TableReader, out *scanResponse, prefix, from string, limit int) (more bool) {
	byOwner, unknown := s.elsewhere(r, t, out.Partitions)
	out.Unavailable = append(out.Unavailable, unknown...)
	if len(byOwner) == 0 {
		return false
	}
	pages := make(chan remotePage, len(byOwner))
	var wg sync.WaitGroup
	for owner := range byOwner {
		wg.Add(1)
		go func() {
			defer wg.Done()
			page, err := s.scanOwner(r, owner, string(t.Group()), prefix, from, limit)
			pages <- remotePage{owner: owner, page: page, err: err}
		}()
	}
	wg.Wait()
	close(pages)
	span := trace.SpanFromContext(r.Context())
	for rp := range pages {
		want := byOwner[rp.owner]
		if rp.err != nil {
			s.forwarder.forget(string(t.Group()))
			s.cfg.logger.Warn("scanning the partitions of another instance failed", "table", t.Topic(), "owner", rp.owner, "error", rp.err)
			tracing.RecordError(span, rp.err)
			out.Unavailable = append(out.Unavailable, want...)
			continue
		}
		// The owner may serve fewer (restoring, moved) or more (a
		// partition moved here meanwhile) partitions than asked.
		read := map[int32]bool{}
		for _, p := range rp.page.Partitions {
			if slices.Contains(want, p) {
				read[p] = true
				out.Partitions = append(out.Partitions, p)
			}
		}
		for _, p := range want {
			if !read[p] {
				out.Unavailable = append(out.Unavailable, p)
			}
		}
		for _, v := range rp.page.Items {
			if read[t.Partition(v.Key)] {
				out.Items = append(out.Items, v)
			}
		}
		more = more || rp.page.Next != ""
	}
	slices.SortFunc(out.Items, func(a, b Value) int { return strings.Compare(a.Key, b.Key) })
	if len(out.Items) > limit {
		out.Items, more = out.Items[:limit], true
	}
	slices.Sort(out.Partitions)
	slices.Sort(out.Unavailable)
	return more
}

// scanOwner asks owner for a page of the partitions it serves, with the
// request's bearer token.
func (s *Server) scanOwner(r *http.Request, owner, group, prefix, from string, limit int) (scanResponse, error) {
	var page scanResponse
	u, err := url.Parse(owner + "/tables/" + url.PathEscape(group))
	if err != nil {
		return page, fmt.Errorf("owner URL %q: %w", owner, err)
	}
	q := url.Values{}
	if prefix != "" {
		q.Set("prefix", prefix)
	}
	if from != "" {
		q.Set("from", from)
	}
	q.Set("limit", strconv.Itoa(limit))
	u.RawQuery = q.Encode()
	ctx, cancel := context.WithTimeout(r.Context(), fanoutTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return page, err
	}
	if a := r.Header.Get("Authorization"); a != "" {
		req.Header.Set("Authorization", a)
	}
	by := s.forwarder.self
	if by == "" {
		by = "unadvertised"
	}
	req.Header.Set(HeaderForwardedBy, by)
	resp, err := s.forwarder.transport.RoundTrip(req)
	if err != nil {
		return page, fmt.Errorf("scan at %s: %w", owner, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return page, fmt.Errorf("scan at %s: read the answer: %w", owner, err)
	}
	if resp.StatusCode != http.StatusOK {
		return page, fmt.Errorf("scan at %s: %s: %s", owner, resp.Status, strings.TrimSpace(string(body)))
	}
	if err := json.Unmarshal(body, &page); err != nil {
		return page, fmt.Errorf("scan at %s: undecodable answer: %w", owner, err)
	}
	return page, nil
}

// forwardStream proxies a watch of key, whose partition this instance
// does not serve, to its owner (see notServed) for as long as the stream
// lasts: without the server's timeouts, but with streamWriteTimeout on
// every write, as for the streams served here.
func (s *Server) forwardStream(w http.ResponseWriter, r *http.Request, t *processors.TableReader, key string) {
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	s.notServed(&deadlineWriter{ResponseWriter: w, rc: rc}, r, t, key)
}

// deadlineWriter sets a write deadline before every write.
type deadlineWriter struct {
	http.ResponseWriter
	rc *http.ResponseController
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	_ = d.rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	return d.ResponseWriter.Write(p)
}

func (d *deadlineWriter) Flush() { _ = d.rc.Flush() }

// Unwrap lets http.ResponseController reach the connection.
func (d *deadlineWriter) Unwrap() http.ResponseWriter { return d.ResponseWriter }

// partialWatch is the first event of a prefix watch on an instance that
// does not serve every partition.
type partialWatch struct {
	Partitions []int32 `json:"partitions"`
	// Elsewhere are the owners of the other partitions: watch the prefix
	// there too.
	Elsewhere []ownerPartitions `json:"elsewhere,omitempty"`
	// Unknown are partitions without a known owner (restoring,
	// rebalancing, or held by an instance that advertises no API).
	Unknown []int32 `json:"unknown,omitempty"`
	Detail  string  `json:"detail"`
}

type ownerPartitions struct {
	URL        string  `json:"url"`
	Partitions []int32 `json:"partitions"`
}

// partial describes the partitions a prefix watch here does not see, or
// nil when it sees them all.
func (s *Server) partial(r *http.Request, t *processors.TableReader) *partialWatch {
	served := t.Served()
	byOwner, unknown := s.elsewhere(r, t, served)
	if len(byOwner) == 0 && len(unknown) == 0 {
		return nil
	}
	pw := &partialWatch{Partitions: served, Unknown: unknown,
		Detail: fmt.Sprintf("this stream has the changes of the %d of %d partitions served here; watch the prefix at the instances listed for the others", len(served), t.Partitions())}
	if pw.Partitions == nil {
		pw.Partitions = []int32{}
	}
	for u, ps := range byOwner {
		pw.Elsewhere = append(pw.Elsewhere, ownerPartitions{URL: u, Partitions: ps})
	}
	slices.SortFunc(pw.Elsewhere, func(a, b ownerPartitions) int { return strings.Compare(a.URL, b.URL) })
	return pw
}
