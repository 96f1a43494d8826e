package kafkaclient

import (
	"context"
	"errors"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/weftstream/weft/internal/kafkatest"
)

func TestIntegrationDetectVersion(t *testing.T) {
	cfg := Config{Brokers: kafkatest.Brokers(t)}
	sc, err := cfg.Sarama(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// Both the embedded broker and Apache Kafka 4 support Fetch v16+.
	if !sc.Version.IsAtLeast(sarama.V3_7_0_0) {
		t.Fatalf("detected %s, want 3.7.0 or newer", sc.Version)
	}
	if sc.Producer.RequiredAcks != sarama.WaitForAll || !sc.Producer.Idempotent {
		t.Fatalf("producer acks=%d idempotent=%v, want acks=all with idempotence", sc.Producer.RequiredAcks, sc.Producer.Idempotent)
	}
	if sc.Consumer.Offsets.Initial != sarama.OffsetOldest {
		t.Fatalf("new groups start at %d, want the oldest offset", sc.Consumer.Offsets.Initial)
	}
}

func TestStartOffsetLatest(t *testing.T) {
	cfg := Config{Brokers: []string{"127.0.0.1:1"}, StartOffset: StartLatest}.WithDefaults()
	if cfg.base().Consumer.Offsets.Initial != sarama.OffsetNewest {
		t.Fatal("start offset latest not applied")
	}
}

// An unset field takes its default, a set one is kept, and an unset
// MaxMessageBytes keeps sarama's 1 MiB.
func TestWithDefaults(t *testing.T) {
	got := Config{Brokers: []string{"h:1"}}.WithDefaults()
	if got.ClientID != "weft" || got.StartOffset != StartEarliest || got.ReplicationFactor != -1 ||
		got.Partitions != 8 || got.MaxMessageBytes != 0 || got.DialTimeout != 10*time.Second {
		t.Errorf("defaults: %+v", got)
	}
	set := Config{Brokers: []string{"h:1"}, ClientID: "c", StartOffset: StartLatest, ReplicationFactor: 3,
		Partitions: 2, MaxMessageBytes: 5000, DialTimeout: time.Second}
	if got := set.WithDefaults(); !reflect.DeepEqual(got, set) {
		t.Errorf("set fields changed: %+v, want %+v", got, set)
	}
	if sc := got.base(); sc.Producer.MaxMessageBytes != 1<<20 || sc.ClientID != "weft" || sc.Net.DialTimeout != 10*time.Second {
		t.Errorf("sarama config: max message bytes %d, client id %q, dial timeout %s", sc.Producer.MaxMessageBytes, sc.ClientID, sc.Net.DialTimeout)
	}
}

func TestExplicitVersion(t *testing.T) {
	// With an explicit version nothing is dialled.
	sc, err := Config{Brokers: []string{"127.0.0.1:1"}, Version: "3.9.0"}.Sarama(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if sc.Version != sarama.V3_9_0_0 {
		t.Fatalf("version %s, want 3.9.0", sc.Version)
	}
}

func TestUnreachableBrokerIsASentence(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	_, err = Config{Brokers: []string{addr}, UnreachableHint: "Start one."}.Sarama(t.Context())
	var ue *UserError
	if !errors.As(err, &ue) {
		t.Fatalf("error %v is not a UserError", err)
	}
	if !strings.HasPrefix(err.Error(), "cannot reach Kafka at "+addr+": ") || !strings.Contains(err.Error(), "Start one.") {
		t.Fatalf("error = %q", err)
	}
}

func TestRejectedCredentialsAreASentence(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(), kfake.Superuser("PLAIN", "weft", "right"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	good := Config{Brokers: c.ListenAddrs(), SASL: SASL{Mechanism: "PLAIN", User: "weft", Password: "right"}}
	if _, err := good.Sarama(ctx); err != nil {
		t.Fatalf("right password: %v", err)
	}
	bad := good
	bad.SASL.Password = "wrong-secret"
	_, err = bad.Sarama(ctx)
	// Apache Kafka answers with SASL_AUTHENTICATION_FAILED, the embedded
	// broker closes the connection; both become a sentence about the
	// credentials.
	if err == nil || !strings.HasPrefix(err.Error(), "Kafka at ") || !strings.Contains(err.Error(), `user "weft"`) ||
		!strings.Contains(err.Error(), "check --sasl-user and --sasl-password") {
		t.Fatalf("wrong password: error %v", err)
	}
	if strings.Contains(err.Error(), "wrong-secret") {
		t.Fatal("the password appears in the error")
	}
}

func TestValidate(t *testing.T) {
	cases := map[string]Config{
		"no Kafka brokers":    {},
		"is not host:port":    {Brokers: []string{"localhost"}},
		"start offset":        {Brokers: []string{"h:1"}, StartOffset: "middle"},
		"SASL mechanism":      {Brokers: []string{"h:1"}, SASL: SASL{Mechanism: "GSSAPI"}},
		"Kafka version \"x\"": {Brokers: []string{"h:1"}, Version: "x"},
	}
	for want, cfg := range cases {
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate(%+v) = %v, want an error about %q", cfg, err, want)
		}
	}
	if s := (SASL{Mechanism: "PLAIN", User: "u", Password: "p4ss"}).String(); strings.Contains(s, "p4ss") {
		t.Errorf("SASL.String() shows the password: %s", s)
	}
}
