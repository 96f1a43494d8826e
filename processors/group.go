package processors

// Defining a group the way weft runs it: its dead-letter topic and its
// tables, whose values carry envelopes.

import "github.com/lovoo/goka"

// DeadLetterTopic is the dead-letter topic of a group.
func DeadLetterTopic(group goka.Group) goka.Stream { return goka.Stream(string(group) + "-dlq") }

// DefineGroup defines a goka group the way weft runs it, for the callbacks
// made by Handle with rt: the dead-letter topic of the group is added as an
// output. Use Persist, Lookup and Join (not goka's) for tables, so that
// values carry their envelopes.
//
// It binds rt to group (see Runtime): rt must serve this group only.
// Defining the same group again with rt is allowed; defining another group
// with it makes the callbacks of rt stop their processors at the first
// record, and NewProcessor refuse rt, with an error that says so.
func DefineGroup(rt *Runtime, group goka.Group, edges ...goka.Edge) *goka.GroupGraph {
	edges = append(edges, goka.Output(DeadLetterTopic(group), new(rawCodec)))
	g := goka.DefineGroup(group, edges...)
	rt.defineGroup(group, g.GroupTable() != nil)
	return g
}

// Persist declares the group table with values encoded by user inside
// envelopes. A stored value that does not decode (the table was written by
// a different topology under the same group name) stops the processor with
// one sentence that says so, instead of goka's panic.
func Persist(user goka.Codec) goka.Edge {
	return goka.Persist(envelopeCodec{user: user, keepErrors: true, topics: new(sourceTopics)})
}

// Lookup declares a lookup table written by weft.
func Lookup(table goka.Table, user goka.Codec) goka.Edge {
	return goka.Lookup(table, EnvelopeCodec(user))
}

// Join declares a co-partitioned join table written by weft.
func Join(table goka.Table, user goka.Codec) goka.Edge { return goka.Join(table, EnvelopeCodec(user)) }
