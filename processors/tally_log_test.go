package processors

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/lovoo/goka"
)

// rejectedRecord is the part of goka.Context a Tally reads.
type rejectedRecord struct {
	gokaContext
	offset int64
}

type gokaContext = goka.Context

func (r rejectedRecord) Topic() goka.Stream { return "in" }
func (r rejectedRecord) Partition() int32   { return 0 }
func (r rejectedRecord) Offset() int64      { return r.offset }
func (r rejectedRecord) Key() string        { return "k" }

// A burst of rejections is logged one by one up to rejectLogBurst, the rest
// in one line with the count; every rejection is counted.
func TestTallyRateLimitsRejectionLogs(t *testing.T) {
	var buf bytes.Buffer
	tl := NewTally(slog.New(slog.NewTextHandler(&buf, nil)))
	const n = 100
	for i := range n {
		tl.Reject(rejectedRecord{offset: int64(i)}, &Rejection{Reason: "decode"})
	}
	tl.FlushLog()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != rejectLogBurst+1 {
		t.Fatalf("%d log lines, want %d one by one and one summary:\n%s", len(lines), rejectLogBurst+1, buf.String())
	}
	if !strings.Contains(lines[len(lines)-1], "not_logged=80") || !strings.Contains(lines[len(lines)-1], "rejected_total=100") {
		t.Fatalf("summary line %q, want not_logged=80 rejected_total=100", lines[len(lines)-1])
	}
	if tl.Rejected() != n || tl.RejectedByReason()["decode"] != n {
		t.Fatalf("counted %d (%v), want %d", tl.Rejected(), tl.RejectedByReason(), n)
	}
	buf.Reset()
	tl.FlushLog()
	if buf.Len() != 0 {
		t.Fatalf("a second flush logged %q", buf.String())
	}
}
