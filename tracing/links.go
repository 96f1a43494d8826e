package tracing

import (
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// LinkKind says why a span links to another one. It is recorded in the
// link attribute weft.link.kind.
type LinkKind string

// Link kinds (see docs/architecture.md, tracing semantics).
const (
	// LinkPreviousValue: a state write links to the writer of the value
	// it replaces.
	LinkPreviousValue LinkKind = "previous_value"
	// LinkLookup: a lookup of another table links to the writer of the
	// value read.
	LinkLookup LinkKind = "lookup"
	// LinkJoin: a join links to the writer of the joined value.
	LinkJoin LinkKind = "join"
	// LinkCoalesced: a flush links to every contributing span.
	LinkCoalesced LinkKind = "coalesced"
	// LinkReplayedFrom: a replayed record links to its original context.
	LinkReplayedFrom LinkKind = "replayed_from"
	// LinkReadValue: a query links to the writer of the value it returns.
	LinkReadValue LinkKind = "read_value"
)

// Attribute keys weft adds to spans and links.
const (
	AttrLinkKind     = attribute.Key("weft.link.kind")
	AttrStateVersion = attribute.Key("weft.state.version")
	AttrStateTable   = attribute.Key("weft.state.table")
	AttrStateKey     = attribute.Key("weft.state.key")
	AttrReplay       = attribute.Key("weft.replay")
	AttrLinksDropped = attribute.Key("weft.links.dropped")
)

// Link returns a link of kind to sc, with extra attributes.
func Link(sc trace.SpanContext, kind LinkKind, attrs ...attribute.KeyValue) trace.Link {
	all := make([]attribute.KeyValue, 0, len(attrs)+1)
	all = append(all, AttrLinkKind.String(string(kind)))
	all = append(all, attrs...)
	return trace.Link{SpanContext: sc, Attributes: all}
}
