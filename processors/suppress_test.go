package processors_test

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	"github.com/lovoo/goka/codec"
	"github.com/weftstream/weft/processors"
)

func TestWindowStateCodec(t *testing.T) {
	c := processors.WindowStateCodec(new(codec.String))
	close := time.Date(2026, 3, 1, 11, 10, 0, 0, time.UTC)
	seen := time.Date(2026, 3, 1, 10, 59, 30, 123e6, time.UTC)
	for _, ws := range []*processors.WindowState{
		{Value: "3 orders", Close: close, StreamTime: seen},
		{Value: "", Close: close, StreamTime: seen},
		{Close: close, StreamTime: seen, Emitted: true},
		{Value: "before 1970", Close: time.UnixMilli(-5000).UTC(), StreamTime: time.UnixMilli(-7000).UTC()},
	} {
		data, err := c.Encode(ws)
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.Decode(data)
		if err != nil {
			t.Fatalf("decode %x: %v", data, err)
		}
		if !reflect.DeepEqual(got, ws) {
			t.Errorf("round trip of %+v gave %+v", ws, got)
		}
	}
	// The layout: flags, close and stream time as zigzag varints of
	// milliseconds, then the value.
	data, _ := c.Encode(&processors.WindowState{Value: "v", Close: time.UnixMilli(1), StreamTime: time.UnixMilli(-1)})
	if want := []byte{0, 2, 1, 'v'}; !bytes.Equal(data, want) {
		t.Errorf("encoding = %x, want %x", data, want)
	}
	for _, bad := range [][]byte{nil, {0}, {2, 2, 2}, {0, 0x80, 0x80}, {1, 0xff}} {
		if v, err := c.Decode(bad); err == nil {
			t.Errorf("decode %x = %+v, want an error", bad, v)
		}
	}
	if _, err := c.Encode("not a window state"); err == nil {
		t.Error("encoding a string: no error")
	}
}

func FuzzWindowStateCodec(f *testing.F) {
	c := processors.WindowStateCodec(new(codec.String))
	for _, ws := range []*processors.WindowState{
		{Value: "x", Close: time.UnixMilli(1_772_363_400_000), StreamTime: time.UnixMilli(1_772_362_000_000)},
		{Emitted: true, Close: time.UnixMilli(5), StreamTime: time.UnixMilli(9)},
	} {
		data, _ := c.Encode(ws)
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := c.Decode(data)
		if err != nil {
			return
		}
		again, err := c.Encode(v)
		if err != nil {
			t.Fatalf("re-encode %+v: %v", v, err)
		}
		v2, err := c.Decode(again)
		if err != nil || !reflect.DeepEqual(v, v2) {
			t.Fatalf("decode(encode(%+v)) = %+v, %v", v, v2, err)
		}
	})
}
