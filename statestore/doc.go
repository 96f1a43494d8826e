// Package statestore is weft's Pebble-backed implementation of goka's
// storage.Storage and storage.Builder.
//
// A Store keeps a goka table partition in one Pebble database. It differs
// from goka's LevelDB store in one important way: a processor's writes are
// not made durable until the changelog (table topic) has acknowledged them.
// Set and Delete go to an in-memory pending queue that reads see at once
// (read-your-writes); goka calls SetOffset with the changelog offset when the
// produce of a table write is acknowledged, and only then are the pending
// writes up to that offset committed, together with the offset, in one atomic
// Pebble batch. After a crash the local store is therefore never ahead of the
// changelog: at worst it is behind, and goka's recovery catches it up from
// the changelog. Writes still pending at Close are dropped for the same
// reason; the next recovery reads them back from the changelog.
//
// The mapping from an acknowledged offset to pending writes relies on weft
// (goka) being the only producer of a table topic, so that the writes of a
// partition occupy consecutive changelog offsets in the order they were
// made; every table write, a delete too, is one changelog record.
//
// Before goka calls MarkRecovered the store is in recovery mode: the records
// goka reads back from the changelog are bulk-loaded in large unsynced
// batches, each of which carries the offset of its last record, so that a
// crash during recovery leaves a consistent prefix.
//
// User keys live under a one-byte prefix so that internal keys (the stored
// offset) never show up in iterators.
package statestore
