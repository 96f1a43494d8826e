// Package topofile is weft's topology file format: YAML files with CEL
// expressions (docs/topology-format.md) that declare an application's
// settings, its streams and tables, and pipelines of steps. Load parses a
// file into a topology.Topology built with the topology DSL (and compiles
// it once, so a file that loads also runs), keeping the settings (brokers,
// SASL, on_error, sampling, record cache) beside it in a File.
//
// Every mistake is reported with its position (file:line:col), and all of
// them at once: Load returns ConfigErrors. The YAML rules (no merge keys,
// bounded alias expansion, no repeated keys) are internal/yamlpos's.
//
// The steps a pipeline may hold are one table (steps.go): each kind's keys,
// parser, builder and flags. File.CheckPartitions checks a compiled file's
// co-partitioning against a cluster's partition counts.
//
// The package parses and builds; the topology package compiles and
// describes, and the processors package runs the records.
package topofile
