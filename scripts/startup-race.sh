#!/usr/bin/env bash
# Issue #19's reproduction: does the bridge ever answer OK for a record
# that is not in Kafka when it starts on a fresh broker under load?
#
# Each round starts a fresh single broker (its own: ports 29392/29393,
# state in ${TMPDIR:-/tmp}/popbill-startup-kafka, deleted between rounds),
# starts two bridge replicas on it, and has 16 senders post flat out from
# the moment the replicas listen, before their topics exist; then every
# topic is read back. Prints a row per round and the totals; exits 1 if any
# delivery answered OK is missing. Everything started is stopped.
#
#   scripts/startup-race.sh            30 rounds (about 8 minutes after the build)
#   STARTUP_ROUNDS=5 scripts/startup-race.sh
#   BRIDGE=/path/to/popbill-bridge scripts/startup-race.sh   another build (e.g. an older commit)
#
# Environment: STARTUP_ROUNDS (30), STARTUP_SENDERS (16), STARTUP_SECONDS (4),
# STARTUP_PARTITIONS (6, the bridge's default), BRIDGE (target/release/popbill-bridge).
set -euo pipefail
cd "$(dirname "$0")/.."

export KAFKA_PORT=29392 KAFKA_CONTROLLER_PORT=29393
export POPBILL_KAFKA_STATE="${TMPDIR:-/tmp}/popbill-startup-kafka"
logs=$(mktemp -d "${TMPDIR:-/tmp}/popbill-startup.XXXXXX")
driver_pid=""
# shellcheck disable=SC2317 # run by the traps
cleanup() {
  if [ -n "$driver_pid" ] && kill -0 "$driver_pid" 2>/dev/null; then
    pkill -KILL -P "$driver_pid" 2>/dev/null || true
    kill -KILL "$driver_pid" 2>/dev/null || true
  fi
  scripts/kafka.sh stop >/dev/null 2>&1 || true
  rm -rf "$logs"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "startup-race.sh: building (release)" >&2
cargo build --release --locked --quiet -p popbill-bridge -p popbill-bridge-tools --bins
brokers=$(scripts/kafka.sh start)
target/release/chaos \
  --bridge "${BRIDGE:-target/release/popbill-bridge}" \
  --kafka-script scripts/kafka.sh \
  --brokers "$brokers" \
  --base-port 28181 \
  --log-dir "$logs" \
  --startup-rounds "${STARTUP_ROUNDS:-30}" \
  --startup-senders "${STARTUP_SENDERS:-16}" \
  --startup-seconds "${STARTUP_SECONDS:-4}" \
  --partitions "${STARTUP_PARTITIONS:-6}" &
driver_pid=$!
status=0
wait "$driver_pid" || status=$?
driver_pid=""
exit $status
