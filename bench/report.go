package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// runRow is one engine's run, or (Kind "summary") the medians of its runs.
type runRow struct {
	Kind             string  `json:"kind"` // run or summary
	Engine           string  `json:"engine"`
	Workload         string  `json:"workload"`
	Broker           string  `json:"broker"`
	Events           int     `json:"events"`
	Rep              int     `json:"rep,omitempty"`  // 1-based (run)
	Reps             int     `json:"reps,omitempty"` // verified runs (summary)
	WallSeconds      float64 `json:"wall_s"`
	EventsPerSecond  float64 `json:"events_per_s"`
	CPUPerEvent      float64 `json:"cpu_us_per_event"`
	PeakRSS          int64   `json:"peak_rss_bytes"`
	ChangelogBytes   int64   `json:"changelog_bytes"`
	ChangelogRecords int64   `json:"changelog_records"`
	Table            string  `json:"table,omitempty"`
	Spans            int64   `json:"spans,omitempty"`
	Links            int64   `json:"links,omitempty"`
	// CacheHitRatio: of the records' lookups of their key in weft's record
	// cache, the share that found it (weft engines; 0 otherwise).
	CacheHitRatio float64 `json:"cache_hit_ratio,omitempty"`
	Verified      bool    `json:"verified"`
	// Ratios of the summary: > 1 means this engine is better. CPU: the
	// peer's CPU per event over this engine's; wall: this engine's events/s
	// over the peer's. 0: the peer did not run.
	CPUvsGoka      float64 `json:"cpu_x_goka_leveldb,omitempty"`
	WallvsGoka     float64 `json:"wall_x_goka_leveldb,omitempty"`
	CPUvsKStreams  float64 `json:"cpu_x_kafka_streams,omitempty"`
	WallvsKStreams float64 `json:"wall_x_kafka_streams,omitempty"`
	Error          string  `json:"error,omitempty"`
	Skipped        string  `json:"skipped,omitempty"`
}

// fill takes the measurements of an engine process.
func (r *runRow) fill(p procRun) {
	r.WallSeconds = p.wall.Seconds()
	if p.wall > 0 {
		r.EventsPerSecond = float64(r.Events) / p.wall.Seconds()
	}
	r.CPUPerEvent = float64(p.cpu) / float64(time.Microsecond) / float64(r.Events)
	r.PeakRSS = p.maxRSS
	r.Spans = p.result.Spans
	r.Links = p.result.Links
	if n := p.result.CacheHits + p.result.CacheMisses; n > 0 {
		r.CacheHitRatio = float64(p.result.CacheHits) / float64(n)
	}
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func (h *harness) printJSON(r runRow) {
	line, _ := json.Marshal(r)
	fmt.Fprintf(h.out, "%s\n", line)
}

// median of xs (not empty).
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if n := len(s); n%2 == 1 {
		return s[n/2]
	} else {
		return (s[n/2-1] + s[n/2]) / 2
	}
}

// summaries are the medians of each engine's verified runs per workload.
func (h *harness) summaries() []runRow {
	var out []runRow
	for _, w := range h.cfg.workloads {
		byEngine := map[string]*runRow{}
		for _, e := range h.cfg.engines {
			var ok []runRow
			var failed string
			for _, r := range h.runs {
				if r.Workload != w || r.Engine != e {
					continue
				}
				if r.Error != "" {
					failed = r.Error
				} else {
					ok = append(ok, r)
				}
			}
			s := runRow{Kind: "summary", Engine: e, Workload: w, Broker: h.brokerKind(), Reps: len(ok), Skipped: h.skipped[e]}
			if failed != "" {
				s.Error = failed
			}
			if len(ok) > 0 {
				pick := func(f func(runRow) float64) float64 {
					xs := make([]float64, len(ok))
					for i, r := range ok {
						xs[i] = f(r)
					}
					return median(xs)
				}
				s.Events = ok[0].Events
				s.WallSeconds = pick(func(r runRow) float64 { return r.WallSeconds })
				s.EventsPerSecond = pick(func(r runRow) float64 { return r.EventsPerSecond })
				s.CPUPerEvent = pick(func(r runRow) float64 { return r.CPUPerEvent })
				s.PeakRSS = int64(pick(func(r runRow) float64 { return float64(r.PeakRSS) }))
				s.ChangelogBytes = int64(pick(func(r runRow) float64 { return float64(r.ChangelogBytes) }))
				s.ChangelogRecords = int64(pick(func(r runRow) float64 { return float64(r.ChangelogRecords) }))
				s.Spans = int64(pick(func(r runRow) float64 { return float64(r.Spans) }))
				s.Links = int64(pick(func(r runRow) float64 { return float64(r.Links) }))
				s.CacheHitRatio = pick(func(r runRow) float64 { return r.CacheHitRatio })
				s.Verified = failed == "" && e != engineRaw
			}
			byEngine[e] = &s
		}
		for _, e := range h.cfg.engines {
			s := byEngine[e]
			if s.Reps > 0 {
				if g := byEngine[engineGoka]; g != nil && g.Reps > 0 {
					s.CPUvsGoka, s.WallvsGoka = ratio(g.CPUPerEvent, s.CPUPerEvent), ratio(s.EventsPerSecond, g.EventsPerSecond)
				}
				if k := byEngine[engineKStreams]; k != nil && k.Reps > 0 {
					s.CPUvsKStreams, s.WallvsKStreams = ratio(k.CPUPerEvent, s.CPUPerEvent), ratio(s.EventsPerSecond, k.EventsPerSecond)
				}
			}
			out = append(out, *s)
		}
	}
	return out
}

func ratio(a, b float64) float64 {
	if a <= 0 || b <= 0 {
		return 0
	}
	return a / b
}

// report prints the summaries: JSON lines, or a text table.
func (h *harness) report() {
	sums := h.summaries()
	if h.cfg.json {
		for _, s := range sums {
			h.printJSON(s)
		}
		return
	}
	fmt.Fprintf(h.out, "broker: %s; medians of %d repetition(s); CPU and peak RSS of each engine's own process; ratios > 1: better than the peer (CPU: peer µs / engine µs, wall: engine ev/s / peer ev/s)\n",
		h.brokerKind(), h.cfg.reps)
	tw := tabwriter.NewWriter(h.out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "engine\tworkload\tevents\twall s\tevents/s\tCPU µs/ev\tpeak RSS MiB\tchangelog MiB\tCPU x goka\twall x goka\tCPU x kstreams\twall x kstreams\tverified\t")
	for _, s := range sums {
		if s.Reps == 0 {
			why := s.Skipped
			if why == "" {
				why = "FAILED: " + firstLine(s.Error)
			} else {
				why = "skipped: " + firstLine(why)
			}
			fmt.Fprintf(tw, "%s\t%s\t\t\t\t\t\t\t\t\t\t\t%s\t\n", s.Engine, s.Workload, why)
			continue
		}
		verified := "yes"
		switch {
		case s.Error != "":
			verified = "FAILED in a rep"
		case s.Engine == engineRaw:
			verified = "reads only"
		}
		changelog := "-"
		if s.Engine != engineRaw {
			changelog = fmt.Sprintf("%.2f", mib(s.ChangelogBytes))
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.2f\t%.0f\t%.2f\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t\n",
			s.Engine, s.Workload, s.Events, s.WallSeconds, s.EventsPerSecond, s.CPUPerEvent, mib(s.PeakRSS), changelog,
			fmtRatio(s.CPUvsGoka), fmtRatio(s.WallvsGoka), fmtRatio(s.CPUvsKStreams), fmtRatio(s.WallvsKStreams), verified)
	}
	tw.Flush()
	for _, s := range sums {
		if s.Spans > 0 {
			fmt.Fprintf(h.out, "%s %s: %d spans, %d links exported (median)\n", s.Engine, s.Workload, s.Spans, s.Links)
		}
		if s.CacheHitRatio > 0 {
			fmt.Fprintf(h.out, "%s %s: %.1f%% of the records found their key in the record cache (median)\n", s.Engine, s.Workload, 100*s.CacheHitRatio)
		}
	}
}

func fmtRatio(r float64) string {
	if r == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", r)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}
