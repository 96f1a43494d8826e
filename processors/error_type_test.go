package processors_test

import (
	"errors"
	"testing"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/weftstream/weft/kafkaclient"
	"github.com/weftstream/weft/processors"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// A rejected record's process span carries error.type = the rejection's
// reason, and every process span the broker's server.address/server.port.
func TestRejectedSpanHasErrorType(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	rt := processors.NewRuntime(processors.WithTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))),
		processors.WithKafka(kafkaclient.Config{Brokers: []string{"broker.example:9092"}}))
	decode := func(b []byte) (string, error) {
		if string(b) == "garbage" {
			return "", errors.New("not a command")
		}
		return string(b), nil
	}
	cb := processors.Handle(rt, decode, func(ctx goka.Context, msg string) error {
		if msg == "overdraw" {
			return processors.Reject("insufficient-funds", "balance %d", 0)
		}
		ctx.SetValue(int64(1))
		return nil
	})
	g := processors.DefineGroup(rt, "errtype", goka.Input("errtype-in", new(codec.Bytes), cb), processors.Persist(new(codec.Int64)))
	tt := runOnTester(t, g)

	for _, c := range []struct{ value, errorType string }{
		{"garbage", "decode"},
		{"overdraw", "insufficient-funds"},
		{"deposit", ""},
	} {
		exp.Reset()
		tt.Consume("errtype-in", "k", []byte(c.value))
		spans := exp.GetSpans()
		if len(spans) != 1 {
			t.Fatalf("%s: %d spans", c.value, len(spans))
		}
		s := spans[0]
		attrs := map[attribute.Key]attribute.Value{}
		for _, kv := range s.Attributes {
			attrs[kv.Key] = kv.Value
		}
		got, has := attrs["error.type"]
		switch {
		case c.errorType == "" && (has || s.Status.Code == codes.Error):
			t.Errorf("%s: error.type %q, status %v on a processed record", c.value, got.Emit(), s.Status)
		case c.errorType != "" && (got.AsString() != c.errorType || s.Status.Code != codes.Error):
			t.Errorf("%s: error.type %q, status %v, want %q and Error", c.value, got.Emit(), s.Status, c.errorType)
		}
		if attrs["server.address"].AsString() != "broker.example" || attrs["server.port"].AsInt64() != 9092 {
			t.Errorf("%s: server.address %q, server.port %d", c.value, attrs["server.address"].Emit(), attrs["server.port"].AsInt64())
		}
	}
}
