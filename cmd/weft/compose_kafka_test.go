package main

import (
	"encoding/base64"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The Kafka service of docker-compose.yml and how the other services
// reach it.

// TestComposeKafka checks the single-node KRaft broker (listeners, quorum,
// replication factors, healthcheck) and that weft and the seed reach it on
// its internal listener.
func TestComposeKafka(t *testing.T) {
	s := loadComposeSetup(t)
	kafka := s.service("kafka")
	kenv := kafka.env()
	for _, k := range []string{"KAFKA_NODE_ID", "KAFKA_PROCESS_ROLES", "KAFKA_LISTENERS", "KAFKA_ADVERTISED_LISTENERS",
		"KAFKA_CONTROLLER_QUORUM_VOTERS", "KAFKA_CONTROLLER_LISTENER_NAMES", "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
		"KAFKA_INTER_BROKER_LISTENER_NAME"} {
		if kenv[k] == "" {
			t.Errorf("service kafka: %s is not set", k)
		}
	}
	roles := strings.Split(strings.ReplaceAll(kenv["KAFKA_PROCESS_ROLES"], " ", ""), ",")
	if !slices.Contains(roles, "broker") || !slices.Contains(roles, "controller") {
		t.Errorf("service kafka: KAFKA_PROCESS_ROLES=%q; a single KRaft node needs broker,controller", kenv["KAFKA_PROCESS_ROLES"])
	}
	listeners, err := parseListeners(kenv["KAFKA_LISTENERS"])
	if err != nil {
		t.Fatalf("service kafka: KAFKA_LISTENERS: %v", err)
	}
	advertised, err := parseListeners(kenv["KAFKA_ADVERTISED_LISTENERS"])
	if err != nil {
		t.Fatalf("service kafka: KAFKA_ADVERTISED_LISTENERS: %v", err)
	}
	protocols := parseProtocolMap(kenv["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"])
	bind := map[string]string{} // listener name -> port
	for _, l := range listeners {
		bind[l.name] = l.port
		if protocols[l.name] == "" {
			t.Errorf("service kafka: listener %s has no entry in KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", l.name)
		}
	}
	controller := kenv["KAFKA_CONTROLLER_LISTENER_NAMES"]
	for _, name := range []string{controller, kenv["KAFKA_INTER_BROKER_LISTENER_NAME"]} {
		if _, ok := bind[name]; !ok && name != "" {
			t.Errorf("service kafka: listener %s is not in KAFKA_LISTENERS=%s", name, kenv["KAFKA_LISTENERS"])
		}
	}
	published := map[string]string{} // host port -> container port
	for _, p := range kafka.ports() {
		if p.published != "" {
			published[p.published] = p.target
		}
	}
	var internal, external []string
	for _, a := range advertised {
		port, ok := bind[a.name]
		switch {
		case !ok:
			t.Errorf("service kafka: advertised listener %s is not in KAFKA_LISTENERS", a.name)
		case a.name == controller:
			t.Errorf("service kafka: the controller listener %s must not be advertised", a.name)
		case slices.Contains(kafka.names("kafka"), a.host):
			internal = append(internal, net.JoinHostPort(a.host, a.port))
			if a.port != port {
				t.Errorf("service kafka: %s advertises %s:%s but listens on port %s", a.name, a.host, a.port, port)
			}
		case a.host == "localhost" || a.host == "127.0.0.1":
			external = append(external, net.JoinHostPort(a.host, a.port))
			if published[a.port] != port {
				t.Errorf("service kafka: %s advertises %s:%s for the host, but host port %s is not published to the listener's port %s (ports: %v)",
					a.name, a.host, a.port, a.port, port, kafka.Ports)
			}
		default:
			t.Errorf("service kafka: advertised listener %s://%s:%s is neither the service (%s) nor localhost",
				a.name, a.host, a.port, strings.Join(kafka.names("kafka"), ", "))
		}
	}
	if len(internal) == 0 {
		t.Errorf("service kafka: no advertised listener for other containers (host %s)", strings.Join(kafka.names("kafka"), " or "))
		internal = []string{"none"}
	}
	if len(external) == 0 {
		t.Errorf("service kafka: no advertised listener for the host (localhost), so `weft get --brokers localhost:...` cannot work")
	}

	// KRaft quorum: this node, on the controller listener.
	for _, v := range strings.Split(kenv["KAFKA_CONTROLLER_QUORUM_VOTERS"], ",") {
		id, addr, _ := strings.Cut(v, "@")
		host, port, err := net.SplitHostPort(addr)
		if err != nil || id != kenv["KAFKA_NODE_ID"] || !slices.Contains(kafka.names("kafka"), host) || port != bind[controller] {
			t.Errorf("service kafka: KAFKA_CONTROLLER_QUORUM_VOTERS=%q; want %s@kafka:%s (KAFKA_NODE_ID, the service, the %s listener's port)",
				kenv["KAFKA_CONTROLLER_QUORUM_VOTERS"], kenv["KAFKA_NODE_ID"], bind[controller], controller)
		}
	}
	if id := kenv["CLUSTER_ID"]; id != "" {
		if b, err := base64.RawURLEncoding.Strict().DecodeString(id); err != nil || len(b) != 16 {
			t.Errorf("service kafka: CLUSTER_ID %q is not a base64url UUID (16 bytes); generate one with kafka-storage.sh random-uuid", id)
		}
	}
	// One broker: no internal topic can have more replicas.
	for _, k := range sortedKeys(kenv) {
		if strings.HasPrefix(k, "KAFKA_") && (strings.HasSuffix(k, "_REPLICATION_FACTOR") || strings.HasSuffix(k, "_MIN_ISR") || strings.HasSuffix(k, "_INSYNC_REPLICAS")) {
			if n, err := strconv.Atoi(kenv[k]); err != nil || n > 1 {
				t.Errorf("service kafka: %s=%s on a single broker; want 1", k, kenv[k])
			}
		}
	}
	for _, k := range []string{"KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"} {
		if kenv[k] == "" {
			t.Errorf("service kafka: %s is not set; its default (3) cannot be met by one broker", k)
		}
	}

	// The healthcheck weft waits for asks the broker itself.
	test := words(kafka.Healthcheck["test"])
	joined := strings.Join(test, " ")
	if !strings.Contains(joined, "/opt/kafka/bin/kafka-broker-api-versions.sh") {
		t.Errorf("service kafka: the healthcheck %q does not run /opt/kafka/bin/kafka-broker-api-versions.sh", test)
	}
	if i := slices.Index(test, "--bootstrap-server"); i < 0 || i+1 >= len(test) {
		t.Errorf("service kafka: the healthcheck %q has no --bootstrap-server", test)
	} else if _, port, err := net.SplitHostPort(test[i+1]); err != nil || !slices.Contains(slices.Collect(maps.Values(bind)), port) {
		t.Errorf("service kafka: the healthcheck asks %s, which is no listener of the broker (%s)", test[i+1], kenv["KAFKA_LISTENERS"])
	}

	// weft (and the seed) reach the broker on its internal listener, in
	// plain text unless they are told to use TLS or SASL.
	for _, name := range []string{"weft", "seed"} {
		if s.service(name) == nil {
			continue
		}
		env := s.containerEnv(name)
		brokers := env["WEFT_BROKERS"]
		if brokers == "" {
			t.Errorf("service %s: WEFT_BROKERS is not set, so weft would start its embedded broker instead of using kafka", name)
			continue
		}
		for _, b := range strings.Split(brokers, ",") {
			if !slices.Contains(internal, strings.TrimSpace(b)) {
				t.Errorf("service %s: WEFT_BROKERS=%s: %s is not the kafka service's internal advertised listener (%s)",
					name, brokers, b, strings.Join(internal, ", "))
			}
		}
		if env["WEFT_TLS"] == "" && env["WEFT_SASL_MECHANISM"] == "" {
			for _, a := range advertised {
				if slices.Contains(strings.Split(brokers, ","), net.JoinHostPort(a.host, a.port)) && protocols[a.name] != "PLAINTEXT" {
					t.Errorf("service %s: listener %s speaks %s, but neither WEFT_TLS nor WEFT_SASL_MECHANISM is set", name, a.name, protocols[a.name])
				}
			}
		}
		if p, ok := env["WEFT_PARTITIONS"]; ok && kenv["KAFKA_NUM_PARTITIONS"] != "" && kenv["KAFKA_NUM_PARTITIONS"] != p {
			t.Errorf("service %s: WEFT_PARTITIONS=%s but kafka's KAFKA_NUM_PARTITIONS=%s: topics created either way would not be co-partitioned",
				name, p, kenv["KAFKA_NUM_PARTITIONS"])
		}
		if rf, err := strconv.Atoi(env["WEFT_REPLICATION_FACTOR"]); err == nil && rf > 1 {
			t.Errorf("service %s: WEFT_REPLICATION_FACTOR=%d with a single broker", name, rf)
		}
	}
}

type listener struct{ name, host, port string }

// parseListeners parses a Kafka listener list: NAME://host:port,...
func parseListeners(s string) ([]listener, error) {
	var out []listener
	for _, item := range strings.Split(s, ",") {
		name, addr, ok := strings.Cut(strings.TrimSpace(item), "://")
		if !ok {
			return nil, fmt.Errorf("%q is not NAME://host:port", item)
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("%q: %v", item, err)
		}
		out = append(out, listener{name, host, port})
	}
	return out, nil
}

func parseProtocolMap(s string) map[string]string {
	out := map[string]string{}
	for _, item := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(item), ":")
		out[k] = v
	}
	return out
}

func checkDependsOnKafka(t *testing.T, name string, svc, kafka *composeService) {
	t.Helper()
	if cond := svc.dependsOn()["kafka"]; cond != "service_healthy" {
		t.Errorf("service %s: depends_on kafka with condition %q; want service_healthy so that weft starts once the broker answers", name, cond)
	}
	if len(words(kafka.Healthcheck["test"])) == 0 {
		t.Errorf("service %s waits for kafka to be healthy, but kafka has no healthcheck", name)
	}
}
