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
//	<step kind>  made a topology step's expression fail (filter, map_values, map, select_key,
//	             flat_map, branch, join, count, reduce, aggregate, latest, tableJoin)
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
