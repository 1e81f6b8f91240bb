#!/usr/bin/env bash
# Fault tolerance, proven: a POPBiLL-like sender against two bridge replicas
# on one real Kafka broker, faults injected in turn, then every topic read
# back by an independent consumer. Prints a table per fault and exits 1 if
# any delivery answered OK is missing from Kafka.
#
#   scripts/chaos.sh              all faults (about 5 minutes after the build)
#   CHAOS_SHORT=1 scripts/chaos.sh  faults 1 and 3 with short phases (CI)
#
# It runs its own broker (ports 39192/39193, state in
# ${TMPDIR:-/tmp}/popbill-chaos-kafka), so it never disturbs the test broker,
# and stops everything it started, whatever happens.
# Environment: CHAOS_FAULTS ("1 2 3 4 5"), CHAOS_RATE (100 deliveries/s).
set -euo pipefail
cd "$(dirname "$0")/.."

export KAFKA_PORT=39192 KAFKA_CONTROLLER_PORT=39193
export POPBILL_KAFKA_STATE="${TMPDIR:-/tmp}/popbill-chaos-kafka"
cleanup() { scripts/kafka.sh stop >/dev/null 2>&1 || true; }
trap cleanup EXIT

if [ "${CHAOS_SHORT:-0}" = 1 ]; then
  faults="${CHAOS_FAULTS:-1 3}"
  extra=(--steady 5 --stop-seconds 10)
else
  faults="${CHAOS_FAULTS:-1 2 3 4 5}"
  extra=()
fi

echo "chaos.sh: building (release)" >&2
cargo build --release --locked --quiet -p popbill-bridge -p popbill-bridge-tools --bins
brokers=$(scripts/kafka.sh start)
echo "chaos.sh: faults: $faults; Kafka at $brokers" >&2
target/release/chaos \
  --bridge target/release/popbill-bridge \
  --kafka-script scripts/kafka.sh \
  --brokers "$brokers" \
  --faults "$faults" \
  --rate "${CHAOS_RATE:-100}" \
  "${extra[@]}"
