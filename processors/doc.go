// Package processors is weft's runtime around goka processors: it runs a
// goka group graph with weft's Kafka client configuration and Pebble state
// store, decodes input inside the callback so that a bad record is handled
// instead of stopping the processor, and accounts for every record that is
// rejected (inputs = processed + rejected).
//
// Its operators are the traced Context (state links, effectively-once
// updates, event time), the record cache of group tables (WithRecordCache:
// updates coalesced in memory, flushed with their contributors), the
// Coalescer (emit the latest value per key every
// interval), the WindowSuppressor (emit each window's final value when it
// closes) and the Emitter.
package processors
