package statestore

import (
	"bytes"
	"encoding/hex"
	"reflect"
	"strings"
	"testing"
	"time"
)

func sampleEnvelope() Envelope {
	return Envelope{
		Writer:    SpanRef{TraceID: [16]byte{1, 2, 3}, SpanID: [8]byte{4, 5}, Flags: 1},
		Version:   7,
		EventTime: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC),
		Sources: []SourceOffset{
			{Topic: "bank-events", Partition: 3, Offset: 1234},
			{Topic: "bank-balances-loop", Partition: 0, Offset: 0},
		},
		Contributors: []SpanRef{{TraceID: [16]byte{9}, SpanID: [8]byte{9}, Flags: 1}},
		Dropped:      2,
		Value:        []byte(`{"balance":300}`),
	}
}

func TestEnvelopeRoundTrip(t *testing.T) {
	withJob := sampleEnvelope()
	withJob.ReplayJob = "into:bank-v2@20261202T023100Z"
	for _, e := range []Envelope{sampleEnvelope(), {Value: []byte("x")}, {Version: 1}, withJob, {ReplayJob: "j", Value: []byte("y")}} {
		data := AppendEnvelope(nil, &e)
		got, err := DecodeEnvelope(data)
		if err != nil {
			t.Fatal(err)
		}
		if len(e.Value) == 0 {
			e.Value = []byte{}
		}
		if !reflect.DeepEqual(got, e) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, e)
		}
	}
}

// The layout is documented byte by byte; this hand-assembled envelope
// pins it.
func TestEnvelopeLayout(t *testing.T) {
	e := Envelope{
		Writer:  SpanRef{TraceID: [16]byte{0xaa}, SpanID: [8]byte{0xbb}, Flags: 1},
		Version: 300, // uvarint 0xac 0x02
		Sources: []SourceOffset{{Topic: "t", Partition: 1, Offset: -1}},
		Value:   []byte("v"),
	}
	want := []byte{'w', 'f', 1, 1}
	want = append(want, 0xaa)
	want = append(want, make([]byte, 15)...)
	want = append(want, 0xbb)
	want = append(want, make([]byte, 7)...)
	want = append(want, 1)          // trace flags
	want = append(want, 0xac, 0x02) // version 300
	want = append(want, 0)          // no event time
	want = append(want, 1, 1, 't')  // one source, topic "t"
	want = append(want, 2, 1)       // partition 1 (zigzag 2), offset -1 (zigzag 1)
	want = append(want, 0, 0)       // no contributors, none dropped
	want = append(want, 'v')
	if got := AppendEnvelope(nil, &e); !bytes.Equal(got, want) {
		t.Fatalf("encoding\n got %v\nwant %v", got, want)
	}
}

// Sources with an index or from upstream set flag bit 1, and every source
// then carries uvarint(index<<1 | upstream).
func TestEnvelopeLayoutIndexedSources(t *testing.T) {
	e := Envelope{
		Version: 1,
		Sources: []SourceOffset{
			{Topic: "o", Partition: 0, Offset: 5, Index: 3, Upstream: true},
			{Topic: "r", Partition: 2, Offset: 9},
		},
	}
	want := []byte{'w', 'f', 1, 2} // flags: indexed sources, no writer
	want = append(want, 1, 0)      // version 1, no event time
	want = append(want, 2)         // two sources
	want = append(want, 1, 'o', 0, 10, 7)
	want = append(want, 1, 'r', 4, 18, 0)
	want = append(want, 0, 0) // no contributors, none dropped
	got := AppendEnvelope(nil, &e)
	if !bytes.Equal(got, want) {
		t.Fatalf("encoding\n got %v\nwant %v", got, want)
	}
	back, err := DecodeEnvelope(got)
	if err != nil {
		t.Fatal(err)
	}
	e.Value = []byte{}
	if !reflect.DeepEqual(back, e) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", back, e)
	}
}

func TestEnvelopeBoundsContributors(t *testing.T) {
	e := Envelope{Contributors: make([]SpanRef, MaxContributors+5), Dropped: 1}
	got, err := DecodeEnvelope(AppendEnvelope(nil, &e))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Contributors) != MaxContributors || got.Dropped != 6 {
		t.Fatalf("%d contributors, %d dropped; want %d and 6", len(got.Contributors), got.Dropped, MaxContributors)
	}
}

func TestEnvelopeRejectsGarbage(t *testing.T) {
	full := AppendEnvelope(nil, &Envelope{Writer: SpanRef{TraceID: [16]byte{1}, SpanID: [8]byte{1}}, Sources: []SourceOffset{{Topic: "abc"}}})
	for name, data := range map[string][]byte{
		"empty":          nil,
		"json":           []byte(`{"a":1}`),
		"future format":  {'w', 'f', 9, 0},
		"unknown flags":  {'w', 'f', 1, 0x80},
		"huge count":     {'w', 'f', 1, 0, 1, 0, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"truncated span": full[:10],
		"truncated":      full[:len(full)-3],
		"truncated job":  {'w', 'f', 1, 4, 1, 0, 0, 0, 0, 5, 'a', 'b'},
		"huge job":       append([]byte{'w', 'f', 1, 4, 1, 0, 0, 0, 0, 0x80, 0x02}, make([]byte, 300)...),
	} {
		if _, err := DecodeEnvelope(data); err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
}

func FuzzDecodeEnvelope(f *testing.F) {
	e := sampleEnvelope()
	f.Add(AppendEnvelope(nil, &e))
	e.ReplayJob = "into:bank-v2@20261202T023100Z"
	f.Add(AppendEnvelope(nil, &e))
	f.Add([]byte{'w', 'f', 1, 0, 0, 0, 0, 0, 0})
	f.Add([]byte("plain"))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := DecodeEnvelope(data)
		if err != nil {
			return
		}
		// What decodes re-encodes to the same bytes, unless the input used
		// a non-minimal varint or a bounded field.
		again, err := DecodeEnvelope(AppendEnvelope(nil, &e))
		if err != nil {
			t.Fatalf("re-encoded envelope does not decode: %v", err)
		}
		if !reflect.DeepEqual(normalize(again), normalize(e)) {
			t.Fatalf("re-decoded %+v, want %+v", again, e)
		}
	})
}

func normalize(e Envelope) Envelope {
	if len(e.Value) == 0 {
		e.Value = nil
	}
	return e
}

// oldSampleEnvelope is sampleEnvelope as the code before the replay job
// field (commit 24c98f9) encoded it, byte for byte.
const oldSampleEnvelope = "7766010101020300000000000000000000000000040500000000000001078cc8b1c9c3bce58631020b62616e6b2d6576656e747306a4131262616e6b2d62616c616e6365732d6c6f6f7000000109000000000000000000000000000000090000000000000001027b2262616c616e6365223a3330307d"

// Records stored before envelopes could name a replay job decode as they
// did, and a version without one is encoded as it was: the field costs no
// byte when absent.
func TestEnvelopeWithoutReplayJobIsUnchanged(t *testing.T) {
	old, err := hex.DecodeString(oldSampleEnvelope)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeEnvelope(old)
	if err != nil {
		t.Fatalf("an envelope of the old code does not decode: %v", err)
	}
	want := sampleEnvelope()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("old envelope decoded to\n %+v\nwant %+v", got, want)
	}
	if got.ReplayJob != "" {
		t.Fatalf("old envelope names replay job %q", got.ReplayJob)
	}
	if enc := AppendEnvelope(nil, &want); !bytes.Equal(enc, old) {
		t.Fatalf("an envelope without a replay job encodes to\n %x\nnot as before\n %x", enc, old)
	}
}

// The replay job sets flag bit 2 and follows the dropped count:
// uvarint(len), name.
func TestEnvelopeLayoutReplayJob(t *testing.T) {
	e := Envelope{Version: 2, ReplayJob: "r1", Value: []byte("v")}
	want := []byte{'w', 'f', 1, 4} // flags: replay job only
	want = append(want, 2, 0)      // version 2, no event time
	want = append(want, 0)         // no sources
	want = append(want, 0, 0)      // no contributors, none dropped
	want = append(want, 2, 'r', '1')
	want = append(want, 'v')
	got := AppendEnvelope(nil, &e)
	if !bytes.Equal(got, want) {
		t.Fatalf("encoding\n got %v\nwant %v", got, want)
	}
	back, err := DecodeEnvelope(got)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, e) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", back, e)
	}
	if v, ok := envelopeVersion(got); !ok || v != 2 {
		t.Fatalf("envelopeVersion = %d, %v; want 2", v, ok)
	}
	long := Envelope{ReplayJob: strings.Repeat("j", MaxReplayJobLen+10)}
	back, err = DecodeEnvelope(AppendEnvelope(nil, &long))
	if err != nil || len(back.ReplayJob) != MaxReplayJobLen {
		t.Fatalf("a long job name: %d bytes back (%v), want it cut to %d", len(back.ReplayJob), err, MaxReplayJobLen)
	}
}

// Live processing writes and reads envelopes without a replay job on
// every record: neither allocates for it.
func TestEnvelopeWithoutReplayJobAllocatesNothing(t *testing.T) {
	e := Envelope{Writer: SpanRef{TraceID: [16]byte{1}, SpanID: [8]byte{2}, Flags: 1}, Version: 9,
		EventTime: time.Unix(1700000000, 0), Dropped: 3, Value: []byte(`{"n":1}`)}
	buf := make([]byte, 0, 256)
	if n := testing.AllocsPerRun(100, func() { buf = AppendEnvelope(buf[:0], &e) }); n != 0 {
		t.Errorf("AppendEnvelope: %v allocations, want 0", n)
	}
	data := AppendEnvelope(nil, &e)
	if n := testing.AllocsPerRun(100, func() {
		if _, err := DecodeEnvelope(data); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("DecodeEnvelope: %v allocations, want 0", n)
	}
}

// DecodeEnvelopeInto decodes as DecodeEnvelope does, whatever the
// envelope it decodes into held before (whose lists it reuses when they
// are large enough), and zeroes it on an error.
func TestDecodeEnvelopeIntoReusesAndOverwrites(t *testing.T) {
	indexed := sampleEnvelope()
	indexed.Sources = []SourceOffset{{Topic: "bank-events", Partition: 1, Offset: 5, Index: 3, Upstream: true}}
	job := sampleEnvelope()
	job.ReplayJob = "job"
	envelopes := []Envelope{sampleEnvelope(), indexed, {Value: []byte("x")}, {Version: 1}, job,
		{Sources: []SourceOffset{{Topic: "a", Offset: 1}, {Topic: "b"}, {Topic: "c", Partition: 2}}}}
	garbage := [][]byte{nil, []byte("wf"), {'w', 'f', 9, 0}, {'w', 'f', 1, 0x80}, {'w', 'f', 1, 0, 0xff}}
	for _, before := range envelopes {
		for _, e := range envelopes {
			want, err := DecodeEnvelope(AppendEnvelope(nil, &e))
			if err != nil {
				t.Fatal(err)
			}
			got := before
			got.Sources = append(make([]SourceOffset, 0, 4), before.Sources...)
			got.Contributors = append(make([]SpanRef, 0, 2), before.Contributors...)
			reused := got.Sources[:1]
			if err := DecodeEnvelopeInto(&got, AppendEnvelope(nil, &e)); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("into %+v:\n got %+v\nwant %+v", before, got, want)
			}
			if len(want.Sources) > 0 && &got.Sources[0] != &reused[0] {
				t.Fatalf("into %+v: the sources were not decoded into the array given", before)
			}
		}
		for _, data := range garbage {
			got := before
			if err := DecodeEnvelopeInto(&got, data); err == nil {
				t.Fatalf("%q decoded", data)
			}
			if !reflect.DeepEqual(got, Envelope{}) {
				t.Fatalf("%q into %+v: left %+v, want the zero Envelope", data, before, got)
			}
		}
	}
}
