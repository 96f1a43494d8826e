package serve_test

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/weftstream/weft/broker"
	"github.com/weftstream/weft/internal/kafkatest"
	"github.com/weftstream/weft/kafkaclient"
	"github.com/weftstream/weft/serve"
)

// readyzOf answers GET /readyz of a server checking the cluster at
// brokers (WithBrokerCheck): the status code and the problem's detail.
func readyzOf(t *testing.T, srv *serve.Server) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	var p struct {
		Detail string `json:"detail"`
	}
	_ = json.Unmarshal(rec.Body.Bytes(), &p)
	return rec.Code, p.Detail
}

func brokerChecked(t *testing.T, brokers ...string) *serve.Server {
	t.Helper()
	srv, err := serve.New(nil, serve.WithBrokerCheck(kafkaclient.Config{Brokers: brokers}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

// /readyz with WithBrokerCheck is ready while the cluster answers, and
// not ready, naming the brokers, when none of them does: an address that
// nothing listens on, and a broker that went away while the server ran.
func TestIntegrationReadyzBrokerCheck(t *testing.T) {
	if code, detail := readyzOf(t, brokerChecked(t, kafkatest.Brokers(t)...)); code != http.StatusOK {
		t.Fatalf("/readyz with the test cluster answering: %d %s, want 200", code, detail)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	nobody := ln.Addr().String()
	ln.Close()
	code, detail := readyzOf(t, brokerChecked(t, nobody))
	if code != http.StatusServiceUnavailable || !strings.Contains(detail, "the Kafka cluster at "+nobody+" does not answer") {
		t.Fatalf("/readyz with no broker at %s: %d %q, want 503 saying the cluster does not answer", nobody, code, detail)
	}

	// A broker of its own, closed while the server runs: the answer is
	// reused for at most a second, then the check asks again.
	b, err := broker.Start(t.Context(), broker.WithAddr("127.0.0.1:0"), broker.WithDataDir(t.TempDir()), broker.WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	srv := brokerChecked(t, b.Addrs()...)
	if code, detail := readyzOf(t, srv); code != http.StatusOK {
		t.Fatalf("/readyz with its broker running: %d %s, want 200", code, detail)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	closed := time.Now()
	kafkatest.WaitFor(t, 10*time.Second, "/readyz to say the closed broker does not answer", func() bool {
		code, detail = readyzOf(t, srv)
		return code == http.StatusServiceUnavailable
	})
	if !strings.Contains(detail, "does not answer") {
		t.Fatalf("/readyz after the broker closed: %q, want it to say the cluster does not answer", detail)
	}
	t.Logf("/readyz said the broker is gone %s after it closed", time.Since(closed).Round(time.Millisecond))
}
