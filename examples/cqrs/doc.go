// Package cqrs holds the integration tests of the CQRS read models written
// as topology files in testdata/cqrs (bank accounts, customers and orders,
// user profiles, a ratings saga). Each test runs a file the way `weft run`
// does, on the embedded broker (or on the Kafka cluster in
// WEFT_KAFKA_BROKERS), with topic and application names made unique to the
// test, and compares the read models with the expected outputs that
// testdata/cqrs/gen.py computes independently.
package cqrs
