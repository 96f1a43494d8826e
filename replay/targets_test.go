package replay_test

import (
	"strings"
	"testing"
	"time"

	"github.com/weftstream/weft/replay"
)

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"P1DT2H":    26 * time.Hour,
		"PT30M":     30 * time.Minute,
		"pt1.5s":    1500 * time.Millisecond,
		"P2W":       14 * 24 * time.Hour,
		"P1W2D":     9 * 24 * time.Hour,
		"P0DT0H1M":  time.Minute,
		"PT1H30M5S": time.Hour + 30*time.Minute + 5*time.Second,
		"-PT1H":     -time.Hour,
		"36h":       36 * time.Hour,
		"90m":       90 * time.Minute,
		"1h2m3s":    time.Hour + 2*time.Minute + 3*time.Second,
	} {
		got, err := replay.ParseDuration(in)
		if err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "P", "PT", "P1Y", "P2M", "1d", "PT1H2H", "PT2M1H", "P1H", "PTxS", "P1DT", "hello"} {
		if got, err := replay.ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want an error", in, got)
		}
	}
}

func TestReadOffsetsCSV(t *testing.T) {
	got, err := replay.ReadOffsetsCSV(strings.NewReader("# topic,partition,offset\norders,0,120\n\norders, 3, 7\npayments,1,0\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := replay.PartitionOffsets{"orders": {0: 120, 3: 7}, "payments": {1: 0}}
	if len(got) != len(want) || len(got["orders"]) != 2 || got["orders"][0] != 120 || got["orders"][3] != 7 || len(got["payments"]) != 1 || got["payments"][1] != 0 {
		t.Fatalf("ReadOffsetsCSV = %v, want %v", got, want)
	}
	for _, in := range []string{"", "orders,0\n", "orders,x,1\n", "orders,0,-1\n", "orders,-1,3\n", ",0,1\n", "a,0,1\na,0,2\n", "a,0,1,2\n"} {
		if got, err := replay.ReadOffsetsCSV(strings.NewReader(in)); err == nil {
			t.Errorf("ReadOffsetsCSV(%q) = %v, want an error", in, got)
		}
	}
}

func TestParsePartitionOffsets(t *testing.T) {
	got, err := replay.ParsePartitionOffsets("0=120, 2=5")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || len(got[""]) != 2 || got[""][0] != 120 || got[""][2] != 5 {
		t.Fatalf("ParsePartitionOffsets = %v, want partitions 0 and 2 of every topic at 120 and 5", got)
	}
	for _, in := range []string{"", "0", "0=", "=5", "0=1,0=2", "-1=3", "0=-3", "a=1"} {
		if got, err := replay.ParsePartitionOffsets(in); err == nil {
			t.Errorf("ParsePartitionOffsets(%q) = %v, want an error", in, got)
		}
	}
}
