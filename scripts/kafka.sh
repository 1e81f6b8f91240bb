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
#   scripts/kafka.sh acls ARGS  Kafka's ACL tool (AclCommand) against the broker
#   scripts/kafka.sh CMD [N] --brokers 3   the three-broker cluster instead:
#                               scripts/kafka-cluster.sh CMD [N] (see there)
#   scripts/kafka.sh secured start|stop|status|dir|acls ARGS   the secured
#                               broker instead (TLS, SCRAM-SHA-512, mutual
#                               TLS, ACLs enforced): scripts/kafka-secured.sh
#
# Environment: KAFKA_PORT (19092), KAFKA_CONTROLLER_PORT (19093) — below
# Linux's ephemeral range (32768-60999), so a client socket left in
# TIME_WAIT on that port after a load run can never block the broker's bind —
# KAFKA_HEAP (-Xms128m -Xmx384m), POPBILL_KAFKA_CACHE, POPBILL_KAFKA_STATE,
# JAVA (java).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# The secured broker is another broker, with its own script.
if [ "${1:-}" = secured ]; then
  shift
  exec "$here/kafka-secured.sh" "$@"
fi
# shellcheck source=lib/process.sh
. "$here/lib/process.sh"
# shellcheck source=lib/kafka.sh
. "$here/lib/kafka.sh"

# --brokers N (N > 1): the cluster script, with the other arguments.
args=() brokers=1
while [ $# -gt 0 ]; do
  case "$1" in
    --brokers) brokers="${2:?--brokers needs a number}"; shift 2 ;;
    --brokers=*) brokers="${1#--brokers=}"; shift ;;
    *) args+=("$1"); shift ;;
  esac
done
set -- "${args[@]+"${args[@]}"}"
case "$brokers" in
  1) ;;
  3) exec "$here/kafka-cluster.sh" "$@" ;;
  *) printf 'kafka.sh: --brokers is 1 or 3\n' >&2; exit 2 ;;
esac
pom=$kafka_pom
version=$kafka_version
cache=$kafka_cache
lib=$kafka_lib
state="${POPBILL_KAFKA_STATE:-${TMPDIR:-/tmp}/popbill-bridge-kafka}"
port="${KAFKA_PORT:-19092}"
cport="${KAFKA_CONTROLLER_PORT:-19093}"
heap="${KAFKA_HEAP:--Xms128m -Xmx384m}"
java="${JAVA:-java}"
pidfile="$state/kafka.pid"
logfile="$state/kafka.log"
bootstrap="127.0.0.1:$port"

say() { printf 'kafka.sh: %s\n' "$*" >&2; }

# The cache is complete when its marker holds the pom's checksum: a changed
# pom (another version, another dependency) fetches again.
fetch() {
  local sum out
  sum=$(cksum <"$pom")
  if [ "$(cat "$cache/complete" 2>/dev/null)" = "$sum" ]; then
    return 0
  fi
  say "fetching Apache Kafka $version from Maven Central into $lib (first run only)"
  # Never completed: start clean. Completed for another pom: add to it, since
  # a running broker may still be loading classes from these jars.
  [ -f "$cache/complete" ] || rm -rf "$lib"
  mkdir -p "$lib"
  # Debian's Maven prints bare colour resets even with -q: keep only real text.
  if ! out=$(mvn -B -q -Dstyle.color=never -f "$pom" dependency:copy-dependencies \
    -DoutputDirectory="$lib" -DincludeScope=runtime 2>&1); then
    printf '%s\n' "$out" | sed 's/\x1b\[[0-9;]*m//g' | grep -v '^[[:space:]]*$' >&2 || true
    say "fetching the jars with Maven failed"
    return 1
  fi
  printf '%s\n' "$sum" >"$cache/complete"
}

pid() { pidfile_pid "$pidfile"; }

answers() { kafka_answers "$port"; }

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
transaction.state.log.num.partitions=3
# The bridge writes in transactions; a writer that dies mid-transaction has
# it aborted at its timeout, looked for every second (default 10 s).
transaction.abort.timed.out.transaction.cleanup.interval.ms=1000
# ACLs are enforced, and everything without one is allowed: a test denies
# one prefix of transactional ids and checks that readiness names the ACL.
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=true
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
# After a SIGKILL (scripts/kafka.sh kill) the restarted broker may register
# only once the dead one's session expired: 4 s instead of the default 9 s.
broker.session.timeout.ms=4000
broker.heartbeat.interval.ms=1000
PROPS
  write_log4j "$state"
}

start() {
  fetch
  if pid >/dev/null && answers; then
    say "reusing the broker already running (pid $(pid))"
    echo "$bootstrap"
    return 0
  fi
  if p=$(pid); then
    # Frozen (pause) or still starting: give it a moment before replacing it.
    kill -CONT "$p" 2>/dev/null || true
    local i
    for ((i = 0; i < 20; i++)); do
      if answers && started; then
        say "reusing the broker already running (pid $p; resumed if it was paused)"
        echo "$bootstrap"
        return 0
      fi
      alive "$p" || break
      sleep 0.5
    done
    say "the broker process ($p) does not answer; restarting it on its data"
    stop_process
  fi
  mkdir -p "$state"
  # Written every time, so a restart on old data runs with today's settings.
  write_config
  if [ ! -f "$state/data/meta.properties" ]; then
    rm -rf "$state/data"
    mkdir -p "$state/data"
    local id
    id=$(run_java "$state" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)
    run_java "$state" kafka.tools.StorageTool format --standalone -t "$id" \
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
  if p=$(pid); then stop_pid "$p" 40 "the broker"; fi
  rm -f "$pidfile"
}

# pause/resume need a broker: say so instead of signalling nothing.
signal() {
  local p
  p=$(pid) || { say "no broker is running"; return 1; }
  kill "$1" "$p"
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
  pause) signal -STOP ;;
  resume) signal -CONT ;;
  acls)
    # Kafka's own ACL tool against this broker, e.g.
    #   scripts/kafka.sh acls --add --deny-principal User:ANONYMOUS --operation All \
    #     --transactional-id denied- --resource-pattern-type prefixed
    shift
    "$java" -Xmx128m -cp "$lib/*" org.apache.kafka.tools.AclCommand --bootstrap-server "$bootstrap" "$@"
    ;;
  kill)
    # SIGKILL, data kept; returns once the process is gone (ports released).
    if p=$(pid); then kill_pid "$p"; fi
    rm -f "$pidfile"
    ;;
  __run)
    # The broker replaces this process, so the pid file names the JVM.
    run_java "$state" exec kafka.Kafka "$state/server.properties"
    ;;
  *)
    sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
