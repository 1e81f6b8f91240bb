#!/usr/bin/env bash
# Fault tolerance, proven: a POPBiLL-like sender against two bridge replicas
# on real Kafka, faults injected in turn, then every topic read back by two
# independent consumers, read_committed (what consumers see) and
# read_uncommitted (everything in the log, aborted transactions included).
# Prints a table per fault and exits 1 if any delivery answered OK is not
# visible read_committed, any answer came after the deadline, or (with the
# bridge's transactions on, its default) any event has more than one record
# visible read_committed.
#
#   scripts/chaos.sh                  one broker, all faults (about 5 minutes after the build)
#   CHAOS_SHORT=1 scripts/chaos.sh    one broker, start-up and faults 1 and 3 with short phases (CI)
#   CHAOS_CLUSTER=1 scripts/chaos.sh  three brokers (scripts/kafka-cluster.sh), the cluster
#                                     faults (about 10 minutes); as root for the network ones
#   CHAOS_CLUSTER=1 CHAOS_SHORT=1 scripts/chaos.sh   start-up, leader kill, partition (CI)
#
# Every suite begins with the start-up phase: the sender posts from the
# moment both replicas listen on a broker (or cluster) just started afresh,
# while they create their topics (issue #19). scripts/startup-race.sh
# repeats that flat out, one fresh broker per round.
#
# One broker: its own (ports 29292/29293, state in
# ${TMPDIR:-/tmp}/popbill-chaos-kafka), so it never disturbs the test broker.
# Cluster: scripts/kafka-cluster.sh's (ports 2909x-2919x; a cluster already
# running there is stopped and started afresh), with a Prometheus server
# (127.0.0.1:29099) scraping both replicas every second with
# deploy/prometheus/alerts.yaml loaded, to tell which alerts went pending or
# fired. Everything started is stopped, whatever happens.
# Environment: CHAOS_FAULTS (the fault list), CHAOS_RATE (100 deliveries/s),
# CHAOS_ARGS (more flags for target/release/chaos, e.g. "--net-seconds 10"),
# CHAOS_LOGS (a directory that keeps the replicas' logs; by default they go
# with the run's temporary directory), POPBILL_BRIDGE_KAFKA__TRANSACTIONS__ENABLED
# (false: the replicas run without transactions, and duplicates visible
# read_committed are counted but do not fail the run).
set -euo pipefail
cd "$(dirname "$0")/.."

run=$(mktemp -d "${TMPDIR:-/tmp}/popbill-chaos.XXXXXX")
prom_pid="" driver_pid=""
cluster="${CHAOS_CLUSTER:-0}"
# shellcheck disable=SC2317 # run by the traps
cleanup() {
  # Interrupted: the driver's bridge replicas (its children), then the driver.
  if [ -n "$driver_pid" ] && kill -0 "$driver_pid" 2>/dev/null; then
    pkill -KILL -P "$driver_pid" 2>/dev/null || true
    kill -KILL "$driver_pid" 2>/dev/null || true
  fi
  if [ -n "$prom_pid" ]; then kill "$prom_pid" 2>/dev/null || true; wait "$prom_pid" 2>/dev/null || true; fi
  if [ "$cluster" = 1 ]; then
    scripts/netfault.sh clear >/dev/null 2>&1 || true
    scripts/kafka-cluster.sh stop >/dev/null 2>&1 || true
  else
    scripts/kafka.sh stop >/dev/null 2>&1 || true
  fi
  rm -rf "$run"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$cluster" = 1 ]; then
  script=scripts/kafka-cluster.sh
  if [ "${CHAOS_SHORT:-0}" = 1 ]; then
    faults="${CHAOS_FAULTS:-startup leader-kill partition}"
    extra=(--steady 5 --kill-seconds 15 --partition-seconds 20)
  else
    faults="${CHAOS_FAULTS:-startup leader-kill broker-pause two-down controller-kill latency stall reset bandwidth loss partition rolling}"
    extra=()
  fi
  # Network faults need iproute2 (ip netns, tc); kafka-cluster.sh installs
  # it, and Toxiproxy, when missing.
else
  script=scripts/kafka.sh
  export KAFKA_PORT=29292 KAFKA_CONTROLLER_PORT=29293
  export POPBILL_KAFKA_STATE="${TMPDIR:-/tmp}/popbill-chaos-kafka"
  if [ "${CHAOS_SHORT:-0}" = 1 ]; then
    faults="${CHAOS_FAULTS:-startup 1 3}"
    extra=(--steady 5 --stop-seconds 10)
  else
    faults="${CHAOS_FAULTS:-startup 1 2 3 4 5}"
    extra=()
  fi
fi

echo "chaos.sh: building (release)" >&2
cargo build --release --locked --quiet -p popbill-bridge -p popbill-bridge-tools --bins

if [ "$cluster" = 1 ]; then
  # A fresh cluster: faults of an earlier run must not linger.
  scripts/netfault.sh clear >/dev/null 2>&1 || true
  scripts/kafka-cluster.sh stop >/dev/null 2>&1 || true
  brokers=$(scripts/kafka-cluster.sh start)
  if ! command -v prometheus >/dev/null 2>&1; then
    echo "chaos.sh: installing Debian's prometheus package (alert rules under the faults)" >&2
    { apt-get install -y -qq prometheus || { apt-get update -qq && apt-get install -y -qq prometheus; }; } >/dev/null
  fi
  cat >"$run/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $PWD/deploy/prometheus/alerts.yaml
scrape_configs:
  - job_name: popbill-bridge
    static_configs:
      - targets: ["127.0.0.1:28082"]
        labels: {pod: replica-a}
      - targets: ["127.0.0.1:28084"]
        labels: {pod: replica-b}
YAML
  prometheus --config.file="$run/prometheus.yml" --storage.tsdb.path="$run/tsdb" \
    --web.listen-address=127.0.0.1:29099 --log.level=warn >"$run/prometheus.log" 2>&1 &
  prom_pid=$!
  extra+=(--cluster --netfault-script scripts/netfault.sh --prometheus 127.0.0.1:29099
    --broker-logs "$(scripts/kafka-cluster.sh env | sed -n 's/^KAFKA_CLUSTER_STATE=//p')")
else
  # A fresh broker (stop deletes what an interrupted run left): the
  # start-up phase starts the bridges on it under load.
  scripts/kafka.sh stop >/dev/null 2>&1 || true
  brokers=$(scripts/kafka.sh start)
fi
echo "chaos.sh: faults: $faults; Kafka at $brokers" >&2
# In the background, so that a signal to this script runs the cleanup at
# once rather than after the driver.
# shellcheck disable=SC2086 # CHAOS_ARGS is several flags on purpose
target/release/chaos \
  --bridge target/release/popbill-bridge \
  --kafka-script "$script" \
  --brokers "$brokers" \
  --faults "$faults" \
  --rate "${CHAOS_RATE:-100}" \
  --log-dir "${CHAOS_LOGS:-$run/logs}" \
  "${extra[@]}" ${CHAOS_ARGS:-} &
driver_pid=$!
status=0
wait "$driver_pid" || status=$?
driver_pid=""
exit $status
