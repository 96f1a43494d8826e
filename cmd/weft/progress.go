package main

import (
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progressQuiet is how long work runs before a terminal shows its progress
// bar: work that ends sooner prints nothing.
const progressQuiet = time.Second

// progressSample is how often a running progress report asks how far the
// work has got.
const progressSample = 200 * time.Millisecond

// progressReport shows how far long work (a produce, a table restore) has
// got: a progress bar with rate and ETA on a terminal, a log line every
// interval otherwise, and nothing for work that ends before the first
// report is due.
type progressReport struct {
	what  string // the work, e.g. "produce", and the log message's first word
	unit  string // what done and total count, e.g. "bytes", "records"
	log   *slog.Logger
	every time.Duration // between log lines; 0 turns them off
	now   func() time.Time

	// A bar on w instead of log lines when bar is set.
	terminal bool
	w        io.Writer

	mu    sync.Mutex
	start time.Time
	last  time.Time // of the last log line
	bar   *progressbar.ProgressBar
}

// newProgressReport reports the progress of what on stderr: a bar if
// stderr is a terminal, else a log line every interval.
func newProgressReport(log *slog.Logger, what, unit string, every time.Duration) *progressReport {
	p := &progressReport{what: what, unit: unit, log: log, every: every, now: time.Now,
		terminal: term.IsTerminal(int(os.Stderr.Fd())), w: os.Stderr}
	p.start = p.now()
	return p
}

// update reports that done of total units are done (total <= 0: unknown).
func (p *progressReport) update(done, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if p.terminal {
		if p.bar == nil {
			if now.Sub(p.start) < progressQuiet {
				return
			}
			p.bar = p.newBar(total)
		}
		if total > 0 {
			p.bar.ChangeMax64(total)
		}
		_ = p.bar.Set64(done)
		return
	}
	since := p.last
	if since.IsZero() {
		since = p.start
	}
	if p.every <= 0 || now.Sub(since) < p.every {
		return
	}
	p.last = now
	elapsed := now.Sub(p.start)
	rate := float64(done) / max(elapsed.Seconds(), 1e-9)
	attrs := []any{p.unit, done}
	if total > 0 {
		attrs = append(attrs, "total_"+p.unit, total, "percent", done*100/total)
	}
	attrs = append(attrs, p.unit+"_per_second", int64(rate), "elapsed", elapsed.Round(time.Second).String())
	if total > 0 && rate > 0 && done < total {
		attrs = append(attrs, "eta", (time.Duration(float64(total-done) / rate * float64(time.Second))).Round(time.Second).String())
	}
	p.log.Info(p.what+" progress", attrs...)
}

func (p *progressReport) newBar(total int64) *progressbar.ProgressBar {
	opts := []progressbar.Option{progressbar.OptionSetWriter(p.w), progressbar.OptionSetDescription(p.what),
		progressbar.OptionShowCount(), progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(progressSample), progressbar.OptionClearOnFinish()}
	if p.unit == "bytes" {
		opts = append(opts, progressbar.OptionShowBytes(true))
	} else {
		opts = append(opts, progressbar.OptionShowIts(), progressbar.OptionSetItsString(p.unit))
	}
	if total <= 0 {
		total = -1 // a spinner
	}
	return progressbar.NewOptions64(total, opts...)
}

// finish removes the bar, if one is shown.
func (p *progressReport) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		_ = p.bar.Finish()
		p.bar = nil
	}
}

// follow samples the progress of running work every progressSample until
// the returned function is called; that function stops sampling and
// removes the bar.
func (p *progressReport) follow(sample func() (done, total int64)) (stop func()) {
	quit, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(progressSample)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				p.update(sample())
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(quit)
			<-stopped
			p.finish()
		})
	}
}
