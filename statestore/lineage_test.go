package statestore

import (
	"fmt"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func versionEnvelope(v uint64) []byte {
	return AppendEnvelope(nil, &Envelope{
		Writer:    SpanRef{TraceID: [16]byte{1}, SpanID: [8]byte{byte(v)}, Flags: 1},
		Version:   v,
		EventTime: t0.Add(time.Duration(v) * time.Minute),
		Sources:   []SourceOffset{{Topic: "in", Partition: 0, Offset: int64(100 + v)}},
		Value:     []byte(fmt.Sprintf("value-%d", v)),
	})
}

func TestLineageKeepsRecentVersions(t *testing.T) {
	st := running(t, t.TempDir(), WithCommitEvery(1), WithLineage(4, true))
	defer st.Close()
	mustOK(t, st.Set("other", versionEnvelope(1)))
	mustOK(t, st.SetOffset(0))
	for v := uint64(1); v <= 10; v++ {
		mustOK(t, st.Set("k", versionEnvelope(v)))
		mustOK(t, st.SetOffset(int64(v)))
	}
	mustOK(t, st.Set("k", versionEnvelope(11))) // not acknowledged yet, but readable

	got, err := st.Lineage("k")
	mustOK(t, err)
	// Trimmed at version 8 (versions < 5 dropped): 11 (pending), 10, ..., 5.
	if len(got) != 7 {
		t.Fatalf("%d versions, want 7 (11 down to 5)", len(got))
	}
	for i, e := range got {
		want := uint64(11 - i)
		if e.Version != want || string(e.Value) != fmt.Sprintf("value-%d", want) || e.Writer.SpanID[0] != byte(want) ||
			e.Sources[0].Offset != int64(100+want) {
			t.Fatalf("entry %d = version %d value %q, want version %d", i, e.Version, e.Value, want)
		}
	}

	e, ok, err := st.GetAsOf("k", 7)
	mustOK(t, err)
	if !ok || string(e.Value) != "value-7" {
		t.Fatalf("GetAsOf(7) = %v %q", ok, e.Value)
	}
	if _, ok, _ := st.GetAsOf("k", 2); ok {
		t.Fatal("version 2 should have been trimmed")
	}
	e, ok, err = st.GetAsOfTime("k", t0.Add(8*time.Minute+30*time.Second))
	mustOK(t, err)
	if !ok || e.Version != 8 {
		t.Fatalf("GetAsOfTime(8m30s) = version %d (%v), want 8", e.Version, ok)
	}

	mustOK(t, st.SetOffset(11))
	mustOK(t, st.Delete("k"))
	mustOK(t, st.SetOffset(12))
	if got, _ := st.Lineage("k"); len(got) != 0 {
		t.Fatalf("lineage after delete: %d versions", len(got))
	}
	if got, _ := st.Lineage("other"); len(got) != 1 {
		t.Fatalf("lineage of another key: %d versions, want 1", len(got))
	}
}

func TestLineageRebuiltDuringRecovery(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir, WithLineage(8, false))
	for v := uint64(1); v <= 3; v++ {
		mustOK(t, st.Set("k", versionEnvelope(v)))
		mustOK(t, st.SetOffset(int64(v)))
	}
	mustOK(t, st.Set("plain", []byte("not an envelope")))
	mustOK(t, st.SetOffset(4))
	mustOK(t, st.MarkRecovered())
	mustOK(t, st.Close())

	st = running(t, dir)
	defer st.Close()
	got, err := st.Lineage("k")
	mustOK(t, err)
	if len(got) != 3 || got[0].Version != 3 || got[2].Version != 1 {
		t.Fatalf("lineage after recovery: %+v", got)
	}
	if got[0].Value != nil && len(got[0].Value) != 0 {
		t.Fatalf("values kept although WithLineage(8, false): %q", got[0].Value)
	}
	if got, _ := st.Lineage("plain"); len(got) != 0 {
		t.Fatalf("a non-envelope value got lineage: %v", got)
	}
	// Lineage keys never show up as data.
	it, err := st.Iterator()
	mustOK(t, err)
	if n := len(collect(t, it)); n != 2 {
		t.Fatalf("iterator sees %d keys, want 2", n)
	}
}
