#!/usr/bin/env bash
# Real Apache Kafka (KRaft, one combined broker+controller) on loopback, for
# test tier 3 (see docs/architecture.md, "Test tiers").
#
#   bash .ci/kafka.sh start WORKDIR   fetch jars (Maven Central, reusing ~/.m2),
#                                     format storage, start broker, wait for it;
#                                     prints WEFT_KAFKA_BROKERS=127.0.0.1:19092
#   bash .ci/kafka.sh stop  WORKDIR   TERM, then KILL after a deadline
#   bash .ci/kafka.sh kill  WORKDIR   KILL (no shutdown), wait until it is gone
#   bash .ci/kafka.sh restart WORKDIR start again on the same data and config
#                                     (after stop or kill; no fetch, no format)
#   bash .ci/kafka.sh control WORKDIR stop|kill|start
#                                     the same three, for tests: the command
#                                     WEFT_KAFKA_CONTROL names (the tests append
#                                     the action; see internal/kafkatest)
#   bash .ci/kafka.sh logtail WORKDIR [N]   last N (100) lines of the broker log
# start and stop leave everything (libs/, data/, broker.log, ...) in WORKDIR.
#
# Environment: KAFKA_VERSION (default: the pom's), KAFKA_PORT (19092),
# KAFKA_CONTROLLER_PORT (19093), KAFKA_HEAP (-Xmx512m -Xms256m),
# KAFKA_START_TIMEOUT seconds (120).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
POM="$HERE/kafka/pom.xml"
PORT="${KAFKA_PORT:-19092}"
CPORT="${KAFKA_CONTROLLER_PORT:-19093}"
HEAP="${KAFKA_HEAP:--Xmx512m -Xms256m}"
START_TIMEOUT="${KAFKA_START_TIMEOUT:-120}"
STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"

log() { echo "[kafka.sh] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

usage() { echo "usage: $0 start|stop|kill|restart|logtail WORKDIR, or control WORKDIR stop|kill|start" >&2; exit 2; }

logtail() { # logtail WORKDIR [N]: the broker log, or the formatter's if none
  local wd="$1" n="${2:-100}" f="$1/broker.log"
  [[ -s "$f" ]] || f="$wd/format.log"
  [[ -s "$f" ]] || { echo "(no broker or format log in $wd)" >&2; return 0; }
  echo "----- last $n lines of $f -----" >&2
  tail -n "$n" "$f" >&2 || true
  echo "----- end of $f -----" >&2
}

# Is process $1 alive (a zombie waiting to be reaped counts as dead)?
alive() {
  kill -0 "$1" 2>/dev/null || return 1
  local st
  st="$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null || true)" # state follows "(comm) "
  [[ "$st" != Z* ]]
}

# Is something accepting TCP connections on 127.0.0.1:$1?
port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

fail_start() {
  log "ERROR: $*"
  logtail "$WD" 100
  stop_broker "$WD" || true
  exit 1
}

fetch_jars() {
  local libs="$WD/libs"
  command -v java >/dev/null || die "java not found (Java 17+ is needed)"
  command -v mvn >/dev/null || die "mvn not found (Maven is needed)"
  local args=(-B -q -Dstyle.color=never -f "$POM" dependency:copy-dependencies
    "-DoutputDirectory=$libs" -DincludeScope=runtime)
  [[ -n "${KAFKA_VERSION:-}" ]] && args+=("-Dkafka.version=$KAFKA_VERSION")
  rm -rf "$libs" # never mix jars of two versions on one classpath
  local t0=$SECONDS
  log "fetching Kafka jars with Maven into $libs (version ${KAFKA_VERSION:-from pom})"
  local ok=0
  for attempt in 1 2 3; do
    if mvn "${args[@]}" >"$WD/mvn.log" 2>&1; then ok=1; break; fi
    log "maven attempt $attempt of 3 failed"
    if ((attempt < 3)); then sleep $((attempt * 5)); fi
  done
  if [[ $ok != 1 ]]; then
    # (Debian's Maven 3.8 prints stray colour codes even in batch mode)
    tail -n 100 "$WD/mvn.log" | sed 's/\x1b\[[0-9;]*m//g' >&2 || true
    die "maven could not fetch the Kafka jars"
  fi
  local jar=("$libs"/kafka_2.13-*.jar)
  [[ -f "${jar[0]}" ]] || die "no kafka_2.13 jar in $libs"
  log "jars ready in $((SECONDS - t0))s: ${jar[0]##*/}"
}

write_config() {
  mkdir -p "$WD/data"
  cat >"$WD/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CPORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CPORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$WD/data
num.partitions=8
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=true
delete.topic.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
log.retention.hours=1
log.segment.bytes=67108864
EOF
  # log4j2: everything at INFO to stdout, which start redirects to broker.log.
  cat >"$WD/log4j2.properties" <<'EOF'
status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = OUT
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.kafkareq.name = kafka.request.logger
logger.kafkareq.level = WARN
logger.state.name = state.change.logger
logger.state.level = WARN
logger.org.name = org.apache.kafka
logger.org.level = INFO
# The full config dumps (hundreds of lines) would fill every log tail.
logger.config.name = org.apache.kafka.common.config.AbstractConfig
logger.config.level = WARN
EOF
}

java_opts() {
  # shellcheck disable=SC2206
  JOPTS=($HEAP -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true
    "-Dlog4j2.configurationFile=$WD/log4j2.properties"
    -Dlog4j2.shutdownHookEnabled=false
    "-Dkafka.logs.dir=$WD/logs")
}

format_storage() {
  # kafka-storage.sh in 4.x runs kafka.tools.StorageTool; random-uuid prints a
  # fresh base64 cluster id.
  local cp="$WD/libs/*" cid
  java_opts
  cid="$(java "${JOPTS[@]}" -cp "$cp" kafka.tools.StorageTool random-uuid 2>"$WD/format.log" | tail -n 1)" ||
    fail_start "StorageTool random-uuid failed"
  [[ "$cid" =~ ^[A-Za-z0-9_-]{22}$ ]] || fail_start "bad cluster id from StorageTool: '$cid'"
  echo "$cid" >"$WD/cluster.id"
  log "formatting storage, cluster id $cid"
  java "${JOPTS[@]}" -cp "$cp" kafka.tools.StorageTool format --ignore-formatted \
    -t "$cid" -c "$WD/server.properties" >>"$WD/format.log" 2>&1 ||
    fail_start "StorageTool format failed"
}

start_broker() {
  [[ -n "${1:-}" ]] || usage
  mkdir -p "$1"
  WD="$(cd "$1" && pwd)"
  if [[ -s "$WD/kafka.pid" ]] && alive "$(cat "$WD/kafka.pid")"; then
    die "a broker is already running from $WD (pid $(cat "$WD/kafka.pid"))"
  fi
  if port_open "$PORT" || port_open "$CPORT"; then
    die "port $PORT or $CPORT on 127.0.0.1 is already in use"
  fi
  local t0=$SECONDS
  fetch_jars
  write_config
  format_storage
  mkdir -p "$WD/logs"
  launch_broker
  log "total start $((SECONDS - t0))s"
  echo "WEFT_KAFKA_BROKERS=127.0.0.1:$PORT"
}

# launch_broker: start the broker of $WD (configured and formatted) and wait
# until it serves; its output is appended to broker.log.
launch_broker() {
  java_opts
  log "starting broker on 127.0.0.1:$PORT (controller $CPORT)"
  # setsid: own process group, so stop (and a CI trap) can signal it cleanly;
  # </dev/null: CI has no stdin.
  local from=0
  [[ -f "$WD/broker.log" ]] && from=$(wc -l <"$WD/broker.log")
  setsid java "${JOPTS[@]}" -cp "$WD/libs/*" kafka.Kafka "$WD/server.properties" \
    </dev/null >>"$WD/broker.log" 2>&1 &
  local pid=$!
  echo "$pid" >"$WD/kafka.pid"
  local t1=$SECONDS deadline=$((SECONDS + START_TIMEOUT))
  while :; do
    if ! alive "$pid"; then
      fail_start "broker process $pid exited during start-up"
    fi
    # "Kafka Server started" is logged by KafkaRaftServer once the broker has
    # caught up with the metadata log and opened its listeners (only lines
    # of this start count).
    if tail -n "+$((from + 1))" "$WD/broker.log" 2>/dev/null | grep -q "Kafka Server started" && port_open "$PORT"; then
      break
    fi
    if ((SECONDS >= deadline)); then
      fail_start "broker not ready after ${START_TIMEOUT}s"
    fi
    sleep 0.5
  done
  log "broker ready (pid $pid) in $((SECONDS - t1))s"
}

# restart_broker WORKDIR: start the broker again on the data and config that
# start left in WORKDIR, after stop or kill.
restart_broker() {
  [[ -n "${1:-}" ]] || usage
  WD="$(cd "$1" && pwd)"
  [[ -s "$WD/server.properties" && -d "$WD/libs" ]] || die "no broker was started from $WD (run start first)"
  if [[ -s "$WD/kafka.pid" ]] && alive "$(cat "$WD/kafka.pid")"; then
    die "a broker is already running from $WD (pid $(cat "$WD/kafka.pid"))"
  fi
  # The ports are the ones start wrote into the config.
  PORT="$(sed -n 's/^advertised.listeners=PLAINTEXT:\/\/127.0.0.1://p' "$WD/server.properties")"
  CPORT="$(sed -n 's/^controller.quorum.voters=1@127.0.0.1://p' "$WD/server.properties")"
  local deadline=$((SECONDS + STOP_TIMEOUT))
  while port_open "$PORT" || port_open "$CPORT"; do
    ((SECONDS < deadline)) || die "port $PORT or $CPORT on 127.0.0.1 is still in use"
    sleep 0.2
  done
  launch_broker
  echo "WEFT_KAFKA_BROKERS=127.0.0.1:$PORT"
}

# kill_broker WORKDIR: SIGKILL (no shutdown, no flush), as a crash would.
kill_broker() {
  [[ -n "${1:-}" ]] || usage
  local wd="$1" pid
  [[ -s "$wd/kafka.pid" ]] || { log "no pid file in $wd; nothing to kill"; return 0; }
  pid="$(cat "$wd/kafka.pid")"
  log "killing broker $pid"
  kill -KILL "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + STOP_TIMEOUT))
  while alive "$pid"; do
    ((SECONDS < deadline)) || die "broker $pid still alive ${STOP_TIMEOUT}s after KILL"
    sleep 0.1
  done
  rm -f "$wd/kafka.pid"
  log "broker killed"
}

stop_broker() {
  [[ -n "${1:-}" ]] || usage
  local wd="$1" pid
  [[ -s "$wd/kafka.pid" ]] || { log "no pid file in $wd; nothing to stop"; return 0; }
  pid="$(cat "$wd/kafka.pid")"
  if ! alive "$pid"; then
    log "broker $pid is not running"
    rm -f "$wd/kafka.pid"
    return 0
  fi
  log "stopping broker $pid"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + STOP_TIMEOUT))
  while alive "$pid"; do
    if ((SECONDS >= deadline)); then
      log "broker $pid still alive after ${STOP_TIMEOUT}s; KILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 1
      break
    fi
    sleep 0.5
  done
  rm -f "$wd/kafka.pid"
  log "broker stopped"
}

cmd="${1:-}"
case "$cmd" in
  start) start_broker "${2:-}" ;;
  stop) stop_broker "${2:-}" ;;
  kill) kill_broker "${2:-}" ;;
  restart) restart_broker "${2:-}" ;;
  control)
    case "${3:-}" in
      stop) stop_broker "${2:-}" ;;
      kill) kill_broker "${2:-}" ;;
      start) restart_broker "${2:-}" ;;
      *) usage ;;
    esac
    ;;
  logtail) [[ -n "${2:-}" ]] || usage; logtail "$2" "${3:-100}" ;;
  *) usage ;;
esac
