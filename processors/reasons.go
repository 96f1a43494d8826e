package processors

// Rejection reasons: the weft.error.reason header of a dead letter, the
// reason label of the tally and the error.type of the record's span. They
// are an external contract (alerts and replays select dead letters by
// them), so they do not change once released.
//
//	reason       the record...
//	decode       could not be decoded by the input's codec
//	null         has a null value (a tombstone) where the step gives nulls no meaning
//	partition    is in another partition than goka's partitioner puts its key
//	timestamp    has no usable event time (the stream's timestamp expression failed)
//	late         arrived after its window closed (window end + grace, by the aggregation's stream time)
//	closed       updates a window whose final value the suppressor emitted already
//	window       could not be assigned to a window
//	encode       made a value the output's codec cannot encode
//	loopback     is an unknown command on a suppressor's loopback topic
//	<node kind>  made the expression of a topology node fail; the reason is the node's
//	             topology.Kind, the Go DSL's name also for a step of a topology file:
//	             filter, branch, mapValues (a file's map_values), map, selectKey
//	             (select_key and group_by), flatMap (flat_map), join, count, reduce,
//	             aggregate, latest, tableJoin (join_table)
//
// Handlers written in Go add their own (the bank example: bad-amount,
// unknown-account, insufficient-funds, ...).
const (
	ReasonDecode    = "decode"
	ReasonPartition = "partition"
	ReasonTimestamp = "timestamp"
	ReasonLate      = "late"
	ReasonClosed    = "closed"
	ReasonWindow    = "window"
	ReasonEncode    = "encode"
	ReasonLoopback  = "loopback"
)
