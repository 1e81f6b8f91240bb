#!/usr/bin/env bash
# The image's smoke test (run by scripts/image.sh smoke, which builds the
# image and sets CONTAINERS_CONF): every check prints one line, and the
# script exits 1 at the first that fails. Everything it starts is removed.
#
# Environment: IMAGE (the image to test), SMOKE_PORT (38180: webhook; +10 admin).
set -euo pipefail
cd "$(dirname "$0")/../.."

image="${IMAGE:?IMAGE names the image}"
port="${SMOKE_PORT:-38180}"
admin=$((port + 10))
name="popbill-bridge-smoke-$$"

# shellcheck disable=SC2317 # run by the trap
cleanup() { podman rm -f "$name" >/dev/null 2>&1 || true; }
trap cleanup EXIT

suite="image smoke"
# shellcheck source=checks.sh
. "$(dirname "${BASH_SOURCE[0]}")/checks.sh"

run() { podman run --rm --read-only "$@"; }

runs_as_nonroot() {
  [ "$(podman image inspect --format '{{.Config.User}}' "$image")" = "65532:65532" ]
}
has_no_shell() {
  ! run --entrypoint /bin/sh "$image" -c true >/dev/null 2>&1 &&
    ! run --entrypoint /bin/bash "$image" -c true >/dev/null 2>&1
}
# Output is taken whole before it is searched: `cmd | grep -q` fails under
# pipefail whenever grep stops reading before cmd has written everything.
help_works() { grep -q "Settings come from" <<<"$(run "$image" --help)"; }
check_config_works() {
  grep -q "configuration is valid" <<<"$(run "$image" --brokers kafka-0.kafka:9092 --check-config)"
}

check "the image runs as uid 65532" runs_as_nonroot
check "the image has no shell" has_no_shell
check "--help works (read-only root filesystem)" help_works
check "--check-config accepts the image's own configuration" check_config_works

# --dev in the container, its ports published on the host; the image's
# configuration listens on 0.0.0.0, and --dev keeps that.
podman run -d --name "$name" --read-only \
  -p "127.0.0.1:$port:8080" -p "127.0.0.1:$admin:9090" "$image" --dev >/dev/null
ready() {
  for _ in $(seq 1 150); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$admin/readyz")" = 200 ] && return 0
    sleep 0.2
  done
  return 1
}
check "/readyz answers 200 on the published admin port" ready
process_uid() {
  local pid
  pid=$(podman inspect --format '{{.State.Pid}}' "$name")
  [ "$(ps -o uid= -p "$pid" | tr -d ' ')" = 65532 ]
}
check "the bridge process runs as uid 65532" process_uid
delivered() {
  local answer
  answer=$(curl -s -w ' %{http_code}' "http://127.0.0.1:$port/popbill/webhook" \
    -H 'Content-Type: application/json' -H 'Pb-Webhook-Type: TAXINVOICE.STATE' \
    -H 'Pb-Webhook-MID: image-smoke-1' -H 'Pb-Webhook-EventType: Issue' \
    -d '{"corpNum":"1234567890","itemKey":"025111409301000001","stateCode":300,"eventType":"Issue"}')
  [ "$answer" = "OK 200" ]
}
check "a sample delivery posted to the published port gets OK" delivered
counted() {
  grep -q '^popbill_bridge_deliveries_total{event_type="TAXINVOICE.STATE:Issue",outcome="acknowledged"} 1$' \
    <<<"$(curl -s "http://127.0.0.1:$admin/metrics")"
}
check "/metrics counts it" counted
drains() {
  local started code
  started=$(date +%s)
  podman stop -t 30 "$name" >/dev/null
  code=$(podman inspect --format '{{.State.ExitCode}}' "$name")
  [ "$code" = 0 ] && [ $(($(date +%s) - started)) -lt 30 ]
}
check "SIGTERM (podman stop) drains and exits 0 within the grace period" drains
checks_done
