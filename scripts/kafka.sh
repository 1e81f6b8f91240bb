#!/usr/bin/env bash
# A real, single-node Apache Kafka 4.x broker (KRaft, no ZooKeeper) on
# loopback, for the integration tests and benchmarks.
#
# Why a real broker: the promise "OK means it is in Kafka" is only proven
# against the thing itself. Why Maven: Maven Central is the one place the
# broker's jars can come from here; they are resolved once into a cache
# (~/.cache/popbill-bridge by default) and reused by later runs.
#
#   scripts/kafka.sh start      start (or reuse) the broker; prints its bootstrap address
#   scripts/kafka.sh stop       stop it and delete its data; nothing keeps running
#   scripts/kafka.sh status     exit 0 when it runs and answers
#   scripts/kafka.sh bootstrap  print the bootstrap address
#   scripts/kafka.sh fetch      only resolve the jars into the cache
#   scripts/kafka.sh pause|resume   SIGSTOP/SIGCONT the broker (fault tests)
#   scripts/kafka.sh kill       SIGKILL it, keeping its data (start restarts on it)
#
# Environment: KAFKA_PORT (39092), KAFKA_CONTROLLER_PORT (39093),
# KAFKA_HEAP (-Xms128m -Xmx384m), POPBILL_KAFKA_CACHE, POPBILL_KAFKA_STATE,
# JAVA (java).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
pom="$here/kafka/pom.xml"
version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$pom")
cache="${POPBILL_KAFKA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/popbill-bridge}/kafka-$version"
lib="$cache/lib"
state="${POPBILL_KAFKA_STATE:-${TMPDIR:-/tmp}/popbill-bridge-kafka}"
port="${KAFKA_PORT:-39092}"
cport="${KAFKA_CONTROLLER_PORT:-39093}"
heap="${KAFKA_HEAP:--Xms128m -Xmx384m}"
java="${JAVA:-java}"
pidfile="$state/kafka.pid"
logfile="$state/kafka.log"
bootstrap="127.0.0.1:$port"

say() { printf 'kafka.sh: %s\n' "$*" >&2; }

fetch() {
  if [ -f "$cache/complete" ]; then
    return 0
  fi
  say "fetching Apache Kafka $version from Maven Central into $lib (first run only)"
  rm -rf "$lib"
  mkdir -p "$lib"
  mvn -B -q -Dstyle.color=never -f "$pom" dependency:copy-dependencies \
    -DoutputDirectory="$lib" -DincludeScope=runtime >&2
  touch "$cache/complete"
}

pid() {
  [ -f "$pidfile" ] || return 1
  local p
  p=$(cat "$pidfile")
  [ -n "$p" ] && kill -0 "$p" 2>/dev/null || return 1
  echo "$p"
}

# The port accepts connections (bash's /dev/tcp: no extra tools needed).
answers() {
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
}

started() {
  grep -q "Kafka Server started" "$logfile" 2>/dev/null
}

write_config() {
  mkdir -p "$state/data"
  cat >"$state/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$state/data
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
# The bridge creates its own topics; so must every test.
auto.create.topics.enable=false
num.network.threads=2
num.io.threads=2
num.recovery.threads.per.data.dir=1
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=8388608
log.segment.bytes=67108864
PROPS
  cat >"$state/log4j2.properties" <<'PROPS'
status = error
appender.file.type = File
appender.file.name = file
appender.file.fileName = ${sys:kafka.logs.dir}/kafka.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = info
logger.apache.name = org.apache.kafka
logger.apache.level = warn
PROPS
}

run_java() {
  # shellcheck disable=SC2086 # the heap setting is several words on purpose
  "$java" $heap -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xss512k \
    -Djava.awt.headless=true -Dkafka.logs.dir="$state" \
    -Dlog4j2.configurationFile="$state/log4j2.properties" \
    -cp "$lib/*" "$@"
}

start() {
  fetch
  if pid >/dev/null && answers; then
    say "reusing the broker already running (pid $(pid))"
    echo "$bootstrap"
    return 0
  fi
  if p=$(pid); then
    say "a broker process ($p) exists but does not answer; stopping it"
    stop_process
  fi
  mkdir -p "$state"
  if [ ! -f "$state/data/meta.properties" ]; then
    rm -rf "$state/data"
    write_config
    local id
    id=$(run_java kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)
    run_java kafka.tools.StorageTool format --standalone -t "$id" \
      -c "$state/server.properties" >"$state/format.log" 2>&1 || {
      say "formatting the storage failed:"; cat "$state/format.log" >&2; return 1; }
  fi
  : >"$logfile"
  nohup "$0" __run >>"$state/stdout.log" 2>&1 &
  echo $! >"$pidfile"
  local deadline=$((SECONDS + 90))
  until answers && started; do
    if ! pid >/dev/null; then
      say "the broker exited while starting:"; tail -n 40 "$logfile" "$state/stdout.log" >&2; return 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      say "the broker did not start within 90 s:"; tail -n 40 "$logfile" >&2; return 1
    fi
    sleep 0.5
  done
  say "Apache Kafka $version up at $bootstrap (pid $(pid), logs in $logfile)"
  echo "$bootstrap"
}

stop_process() {
  local p
  p=$(pid) || return 0
  kill -CONT "$p" 2>/dev/null || true
  kill -TERM "$p" 2>/dev/null || true
  for _ in $(seq 1 40); do
    kill -0 "$p" 2>/dev/null || break
    sleep 0.5
  done
  kill -KILL "$p" 2>/dev/null || true
  rm -f "$pidfile"
}

cmd="${1:-}"
case "$cmd" in
  fetch) fetch ;;
  start) start ;;
  stop)
    stop_process
    rm -rf "$state"
    say "stopped"
    ;;
  status)
    if pid >/dev/null && answers; then echo "running at $bootstrap"; else echo "not running"; exit 1; fi
    ;;
  bootstrap) echo "$bootstrap" ;;
  pause) kill -STOP "$(pid)" ;;
  resume) kill -CONT "$(pid)" ;;
  kill)
    if p=$(pid); then kill -KILL "$p"; fi
    rm -f "$pidfile"
    ;;
  __run)
    # The broker replaces this process, so the pid file names the JVM.
    exec "$java" $heap -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xss512k \
      -Djava.awt.headless=true -Dkafka.logs.dir="$state" \
      -Dlog4j2.configurationFile="$state/log4j2.properties" \
      -cp "$lib/*" kafka.Kafka "$state/server.properties"
    ;;
  *)
    sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
