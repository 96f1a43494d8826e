package serve

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// change is a write to a table that the changelog has acknowledged.
type change struct {
	seq       uint64
	partition int32
	key       string
	value     []byte // the stored bytes (an envelope), nil for a delete; never changed
}

// watcher is one client of GET /tables/{table}/watch.
type watcher struct {
	key    string // the key watched, or the prefix
	prefix bool
	ch     chan change
	// gone is closed when the hub drops the watcher: it fell behind (its
	// buffer filled) or the server shuts down.
	gone   chan struct{}
	reason string // why it was dropped, set before gone is closed
}

func (w *watcher) matches(key string) bool {
	if w.prefix {
		return strings.HasPrefix(key, w.key)
	}
	return key == w.key
}

// hub keeps the recent changes of one table in a bounded ring and fans
// them out to its watchers. Its ids are "<epoch>-<seq>": the epoch is
// the hub's start, so that an id of an earlier process is recognised as
// such instead of resuming at the wrong place.
type hub struct {
	epoch string

	mu       sync.Mutex
	next     uint64                // seq of the next change; seqs start at 1
	ring     []change              // circular, capacity fixed
	head     int                   // index of the oldest change in ring
	n        int                   // changes in ring
	keys     map[string][]*watcher // key watchers by key
	prefixes map[string][]*watcher // prefix watchers by prefix
	closed   bool
}

func newHub(size int) *hub {
	return &hub{epoch: strconv.FormatInt(time.Now().UnixNano(), 36), next: 1,
		ring: make([]change, size), keys: map[string][]*watcher{}, prefixes: map[string][]*watcher{}}
}

// id is the SSE id of seq.
func (h *hub) id(seq uint64) string { return h.epoch + "-" + strconv.FormatUint(seq, 10) }

// publish records a change and hands it to the watchers of its key; a
// watcher whose buffer is full is dropped. It runs under the store's
// lock (see processors.TableReader.Watch): it never blocks.
func (h *hub) publish(partition int32, key string, value []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := change{seq: h.next, partition: partition, key: key, value: slices.Clone(value)}
	h.next++
	if len(h.ring) > 0 {
		if h.n < len(h.ring) {
			h.ring[(h.head+h.n)%len(h.ring)] = c
			h.n++
		} else {
			h.ring[h.head] = c
			h.head = (h.head + 1) % len(h.ring)
		}
	}
	var slow []*watcher // allocated only when someone falls behind
	for _, w := range h.keys[key] {
		slow = send(slow, w, c)
	}
	// The prefix watchers of key: look up key's prefixes or scan the
	// prefixes watched, whichever is fewer (min(len(key)+1, prefixes)).
	if len(h.prefixes) <= len(key)+1 {
		for p, ws := range h.prefixes {
			if strings.HasPrefix(key, p) {
				for _, w := range ws {
					slow = send(slow, w, c)
				}
			}
		}
	} else {
		for i := 0; i <= len(key); i++ {
			for _, w := range h.prefixes[key[:i]] {
				slow = send(slow, w, c)
			}
		}
	}
	for _, w := range slow {
		h.dropLocked(w, "the client did not read its changes fast enough")
	}
}

// send hands c to w without blocking, adding w to slow if its buffer is
// full.
func send(slow []*watcher, w *watcher, c change) []*watcher {
	select {
	case w.ch <- c:
		return slow
	default:
		return append(slow, w)
	}
}

// gap says that a client resuming after lastID missed changes the ring no
// longer holds.
type gap struct {
	LastEventID string `json:"last_event_id"`
	// Oldest is the id of the oldest change still held ("" if none).
	Oldest string `json:"oldest_available,omitempty"`
	Detail string `json:"detail"`
}

// subscribe registers w and returns the changes after lastID (an SSE id,
// "" for none) that it missed and the ring still holds, or the gap if the
// ring no longer holds them all; head is the id of the last change so far.
func (h *hub) subscribe(w *watcher, lastID string) (replay []change, missed *gap, head string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, nil, "", errShuttingDown
	}
	oldest := h.next - uint64(h.n) // seq of the oldest change held
	if lastID != "" {
		epoch, seqText, _ := strings.Cut(lastID, "-")
		seq, perr := strconv.ParseUint(seqText, 10, 64)
		switch {
		case epoch == h.epoch && perr == nil && seq < h.next && seq+1 >= oldest:
			for i := range h.n {
				c := h.ring[(h.head+i)%len(h.ring)]
				if c.seq > seq && w.matches(c.key) {
					replay = append(replay, c)
				}
			}
		default:
			missed = &gap{LastEventID: lastID, Detail: "changes after this id are no longer held here (the buffer moved on, or the server restarted); read the current value again"}
			if h.n > 0 {
				missed.Oldest = h.id(oldest)
			}
		}
	}
	m := h.keys
	if w.prefix {
		m = h.prefixes
	}
	m[w.key] = append(m[w.key], w)
	return replay, missed, h.id(h.next - 1), nil
}

// unsubscribe removes w (if still there).
func (h *hub) unsubscribe(w *watcher) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.removeLocked(w)
}

func (h *hub) removeLocked(w *watcher) bool {
	del := func(ws []*watcher) ([]*watcher, bool) {
		i := slices.Index(ws, w)
		if i < 0 {
			return ws, false
		}
		return slices.Delete(ws, i, i+1), true
	}
	m := h.keys
	if w.prefix {
		m = h.prefixes
	}
	ws, ok := del(m[w.key])
	if len(ws) == 0 {
		delete(m, w.key)
	} else {
		m[w.key] = ws
	}
	return ok
}

func (h *hub) dropLocked(w *watcher, reason string) {
	if h.removeLocked(w) {
		w.reason = reason
		close(w.gone)
	}
}

// close drops every watcher and refuses new ones.
func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for _, m := range []map[string][]*watcher{h.keys, h.prefixes} {
		for _, ws := range m {
			for _, w := range slices.Clone(ws) {
				h.dropLocked(w, "the server is shutting down")
			}
		}
	}
}

var errShuttingDown = fmt.Errorf("the server is shutting down")
