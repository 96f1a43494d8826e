// Package topology is weft's topology model: a Kafka-Streams-style builder
// DSL for Go, compiled to goka group graphs that run on weft's traced
// runtime (package processors) and Pebble state stores.
//
// A topology starts from streams (Builder.Stream) and tables (Builder.Table)
// read from topics. Stream operations (Filter, MapValues, Map, SelectKey,
// FlatMap, Branch, Join with a table, To) are stateless; grouping (GroupByKey,
// GroupBy) followed by an aggregation (Count, Reduce, Aggregate) or Latest
// makes a table, materialized in Pebble and in its table topic. Operations
// that change the key before a grouping repartition the stream through an
// internal topic, as Kafka Streams does, so that all records of a key meet
// in one partition.
//
// Windows (WindowedBy: tumbling or hopping, with a grace period) use event
// time: the record timestamp, or what a stream's WithTimestampExtractor
// takes from the record; it travels with the records through repartitions
// and tables (processors.HeaderEventTime). A table's updates can be read as
// a stream (ToStream), coalesced (Suppress: the latest value per key every
// interval) or, for a windowed table, emitted once per window with its
// final value when the window closes (SuppressUntilWindowClose). A table
// joins a co-partitioned table into a new table (Table.Join); deleting
// either side deletes the joined value.
//
// Compile turns the topology into one goka group per stateful operation
// (goka keeps one table per group) plus one group per source whose
// stateless branches end in sinks. The package describes and compiles; it
// runs nothing: a group's callback is a chain of the per-record steps of
// package processors (ops*.go). Topology files (YAML with CEL) are loaded
// into this model by package topofile. docs/architecture.md ties the
// packages together.
package topology
