package statestore

import (
	"fmt"
	"slices"
	"testing"
)

// The commit hook sees each write once, in order, when (and only when) the
// changelog acknowledges it; deletes come as nil; removed hooks see nothing.
func TestCommitHookSeesAcknowledgedWrites(t *testing.T) {
	b := NewBuilder(t.TempDir())
	defer b.Close()
	var got []string
	remove := b.AddCommitHook(func(topic string, partition int32, key string, value []byte) {
		v := fmt.Sprintf("%q", value)
		if value == nil {
			v = "deleted"
		}
		got = append(got, fmt.Sprintf("%s/%d %s=%s", topic, partition, key, v))
	})
	s, err := b.Build("t-table", 3)
	mustOK(t, err)
	st := s.(*Store)
	mustOK(t, st.Open())
	mustOK(t, st.Set("x", []byte("recovered"))) // recovery: not a change
	mustOK(t, st.SetOffset(9))
	mustOK(t, st.MarkRecovered())
	mustOK(t, st.Set("a", []byte("a10"))) // offset 10
	mustOK(t, st.Delete("b"))             // offset 11
	mustOK(t, st.Set("c", []byte("c12"))) // offset 12
	if len(got) != 0 {
		t.Fatalf("hook saw %v before any acknowledgement", got)
	}
	mustOK(t, st.SetOffset(11))
	mustOK(t, st.SetOffset(11)) // repeated: nothing new
	want := []string{`t-table/3 a="a10"`, `t-table/3 b=deleted`}
	if !slices.Equal(got, want) {
		t.Fatalf("after ack 11: %v, want %v", got, want)
	}
	mustOK(t, st.SetOffset(12))
	want = append(want, `t-table/3 c="c12"`)
	if !slices.Equal(got, want) {
		t.Fatalf("after ack 12: %v, want %v", got, want)
	}
	remove()
	mustOK(t, st.Set("d", []byte("d13")))
	mustOK(t, st.SetOffset(13))
	if !slices.Equal(got, want) {
		t.Fatalf("removed hook still called: %v", got)
	}
	mustOK(t, st.Close())
}

// Without a hook, acknowledging writes allocates nothing beyond what it did.
func BenchmarkSetOffsetNoHook(b *testing.B) {
	st := New(b.TempDir())
	if err := st.Open(); err != nil {
		b.Fatal(err)
	}
	_ = st.MarkRecovered()
	_ = st.SetOffset(0)
	v := []byte("v")
	b.ReportAllocs()
	for i := range b.N {
		_ = st.Set("k", v)
		_ = st.SetOffset(int64(i + 1))
	}
}

// Notifying costs no allocation, with no hook or with an allocation-free one.
func TestCommitHookAllocatesNothing(t *testing.T) {
	st := running(t, t.TempDir())
	defer st.Close()
	mustOK(t, st.Set("k", []byte("v")))
	if n := testing.AllocsPerRun(100, func() { st.notifyAcked(1) }); n != 0 {
		t.Fatalf("without hooks: %v allocations", n)
	}
	var calls int
	st.opts.commitHooks.add(func(string, int32, string, []byte) { calls++ })
	if n := testing.AllocsPerRun(100, func() { st.notifyAcked(1) }); n != 0 || calls == 0 {
		t.Fatalf("with a hook: %v allocations, %d calls", n, calls)
	}
}
