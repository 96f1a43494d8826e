// Package serve is weft's read side: an HTTP API over the tables of the
// processors running in this process (interactive queries, in Kafka
// Streams' words), with the lineage weft keeps beside every value.
//
//	GET /tables                                 the tables served, with their partitions
//	GET /tables/{table}/{key}                   a value, its version, event time and writer
//	GET /tables/{table}/{key}?as_of=<v|time>    the value at a version or an RFC 3339 event time
//	GET /tables/{table}/{key}/lineage           the recorded versions, newest first
//	GET /tables/{table}?prefix=&from=&limit=    keys in order, paginated with a cursor
//	GET /healthz, GET /readyz                   liveness, and readiness (every table restored)
//
// {table} is a processor group (bank-balances) or its table topic
// (bank-balances-table). Every table request runs in a span "query
// <table>" (kind SERVER, OTel HTTP conventions, child of an incoming
// traceparent) that links (weft.link.kind=read_value) to the span that
// wrote each value it returns; the writer's traceparent is also in the
// response header Weft-Writer-Traceparent. Errors are RFC 9457 problem
// details (application/problem+json): 404 for an unknown table or key,
// 400 for bad parameters, 401/403 without the right bearer token, 503 with
// Retry-After while the key's partition is restoring or held by another
// instance (never a stale or empty value presented as current).
package serve
