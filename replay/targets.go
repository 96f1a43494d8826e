package replay

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// PartitionOffsets are start offsets per topic and partition (From.Offsets):
// the topic "" stands for every input topic.
type PartitionOffsets map[string]map[int32]int64

// Set records offset for partition of topic.
func (p PartitionOffsets) Set(topic string, partition int32, offset int64) {
	if p[topic] == nil {
		p[topic] = map[int32]int64{}
	}
	p[topic][partition] = offset
}

// lookup is the offset given for partition of topic (a topic's own entry
// before the "" entry).
func (p PartitionOffsets) lookup(topic string, partition int32) (int64, bool) {
	if o, ok := p[topic][partition]; ok {
		return o, true
	}
	o, ok := p[""][partition]
	return o, ok
}

// ReadOffsetsCSV reads the lines "topic,partition,offset" of a
// --from-file (Kafka's reset-offsets CSV format); blank lines and lines
// starting with # are skipped.
func ReadOffsetsCSV(r io.Reader) (PartitionOffsets, error) {
	cr := csv.NewReader(r)
	cr.Comment = '#'
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	out := PartitionOffsets{}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read the offsets: %w", err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) != 3 {
			return nil, fmt.Errorf("line %d: want topic,partition,offset, got %d fields", line, len(rec))
		}
		topic := strings.TrimSpace(rec[0])
		part, err := strconv.ParseInt(strings.TrimSpace(rec[1]), 10, 32)
		if err != nil || part < 0 || topic == "" {
			return nil, fmt.Errorf("line %d: %q is not a topic and a partition number", line, strings.Join(rec, ","))
		}
		off, err := strconv.ParseInt(strings.TrimSpace(rec[2]), 10, 64)
		if err != nil || off < 0 {
			return nil, fmt.Errorf("line %d: offset %q: give an offset of 0 or more", line, rec[2])
		}
		if _, dup := out[topic][int32(part)]; dup {
			return nil, fmt.Errorf("line %d: %s/%d is given twice", line, topic, part)
		}
		out.Set(topic, int32(part), off)
	}
	if len(out) == 0 {
		return nil, errors.New("no offsets in it: want lines topic,partition,offset")
	}
	return out, nil
}

// ParsePartitionOffsets parses "P=N,P=N" (partition P of every input topic
// starts at offset N).
func ParsePartitionOffsets(s string) (PartitionOffsets, error) {
	out := PartitionOffsets{}
	for item := range strings.SplitSeq(s, ",") {
		ps, os, ok := strings.Cut(strings.TrimSpace(item), "=")
		part, perr := strconv.ParseInt(strings.TrimSpace(ps), 10, 32)
		off, oerr := strconv.ParseInt(strings.TrimSpace(os), 10, 64)
		if !ok || perr != nil || oerr != nil || part < 0 || off < 0 {
			return nil, fmt.Errorf("%q is not partition=offset (both 0 or more)", item)
		}
		if _, dup := out[""][int32(part)]; dup {
			return nil, fmt.Errorf("partition %d is given twice", part)
		}
		out.Set("", int32(part), off)
	}
	return out, nil
}

// ParseDuration parses a Go duration (36h, 90m) or an ISO-8601 duration
// of days and time (P1DT2H, PT30M, P2W, PT1.5S; a day is 24 hours). Years
// and months, whose length varies, are refused.
func ParseDuration(s string) (time.Duration, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return d, nil
	}
	u := strings.ToUpper(strings.TrimSpace(s))
	neg := strings.HasPrefix(u, "-")
	u = strings.TrimPrefix(strings.TrimPrefix(u, "-"), "+")
	if !strings.HasPrefix(u, "P") || len(u) < 3 {
		return 0, fmt.Errorf("%q is neither a Go duration (24h, 90m) nor an ISO-8601 duration (P1DT2H, PT30M)", s)
	}
	date, clock, hasT := strings.Cut(u[1:], "T")
	if hasT && clock == "" {
		return 0, fmt.Errorf("%q: nothing after T", s)
	}
	var total float64
	parse := func(part string, units map[byte]float64, order string) error {
		last := -1
		for part != "" {
			i := strings.IndexAny(part, order)
			if i <= 0 {
				return fmt.Errorf("%q is not an ISO-8601 duration (P1DT2H, PT30M)", s)
			}
			unit := part[i]
			if pos := strings.IndexByte(order, unit); pos <= last {
				return fmt.Errorf("%q: the units are out of order or repeated", s)
			} else {
				last = pos
			}
			n, err := strconv.ParseFloat(strings.Replace(part[:i], ",", ".", 1), 64)
			if err != nil || n < 0 {
				return fmt.Errorf("%q: %q is not a number", s, part[:i])
			}
			total += n * units[unit]
			part = part[i+1:]
		}
		return nil
	}
	if strings.ContainsAny(date, "YM") {
		return 0, fmt.Errorf("%q: years and months have no fixed length; give days (P30D)", s)
	}
	if err := parse(date, map[byte]float64{'W': 7 * 24 * float64(time.Hour), 'D': 24 * float64(time.Hour)}, "WD"); err != nil {
		return 0, err
	}
	if err := parse(clock, map[byte]float64{'H': float64(time.Hour), 'M': float64(time.Minute), 'S': float64(time.Second)}, "HMS"); err != nil {
		return 0, err
	}
	if total > math.MaxInt64 {
		return 0, fmt.Errorf("%q is too long", s)
	}
	if neg {
		total = -total
	}
	return time.Duration(total), nil
}
