// Package serve is weft's read side: an HTTP API over the tables of the
// processors running in this process (interactive queries, in Kafka
// Streams' words), with the lineage weft keeps beside every value.
//
//	GET /tables                                 the tables served, with their partitions
//	GET /tables/{table}/{key}                   a value, its version, event time and writer
//	GET /tables/{table}/{key}?as_of=<v|time>    the value at a version or an RFC 3339 event time
//	GET /tables/{table}/{key}/lineage           the recorded versions, newest first (?events=true: with their input records, WithKafka;
//	                                            replay_job: the weft replay job that wrote a version, absent for live ones)
//	GET /tables/{table}?prefix=&from=&limit=    keys in order, paginated with a cursor
//	GET /tables/{table}/watch?key=|prefix=      changes as server-sent events, resumable (Last-Event-ID)
//	GET /topology                               the running topology (topology.DescribeJSON)
//	GET /                                       the web page: topology graph, tables, key lookup, lineage
//	GET /healthz, GET /readyz                   liveness, and readiness (groups joined, tables restored, brokers answering)
//	GET /metrics                                Prometheus text (WithMetrics; see Metrics)
//
// Watch streams carry one event per change the changelog has
// acknowledged (data: a Value; a delete has "deleted": true and value
// null), each with an id "<epoch>-<seq>". A client that reconnects with
// Last-Event-ID gets the changes it missed from a bounded per-table
// buffer (WithChangeBuffer), or an event "missed" when the buffer no
// longer holds them (or the server restarted): it should read the value
// again. Streams are capped (WithMaxWatchers, 429 beyond), a client that
// does not read is dropped, idle streams get a heartbeat comment every
// 15 s, and a key watch ends with an event "unavailable" when the key's
// partition leaves this instance. The subscription runs in a span
// "watch <table>" (kind SERVER, child of an incoming traceparent). The path /tables/{table}/watch is the
// watch endpoint: the value of a key named "watch" is read with a scan
// (?prefix=watch&limit=1) and watched with ?key=watch.
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
// instance that cannot be reached (never a stale or empty value presented
// as current). With WithForwarding, a key held by another instance is
// forwarded to it (see forward.go; Weft-Served-By names it), or
// redirected with ?redirect=true; a scan reads the other instances'
// partitions from them and merges the pages in key order, a key watch is
// proxied to the key's owner, and a prefix watch names the owners of the
// partitions it does not see in a first event "partial" (see fanout.go).
// WithLineageRetention bounds how far back as_of answers (422 beyond it,
// with the oldest time available and the 'weft replay' command that can
// answer).
package serve
