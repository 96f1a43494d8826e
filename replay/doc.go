// Package replay runs replay jobs over a topology's event log: rebuilds of
// its tables into new consumer groups and tables beside the live ones
// (blue/green), back-fills from an offset or a time, the point-in-time
// state of one key folded from the log, and resets of an application's
// groups (offsets, internal topics and local state), each planned first
// and applied only when asked to.
//
// A job's progress is the committed offsets of its groups: a job stopped
// half-way and started again resumes from them, and weft's effectively-once
// state updates (the applied source offsets in every stored envelope) make
// the records it processes twice count once.
package replay
