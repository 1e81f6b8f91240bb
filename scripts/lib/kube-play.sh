#!/usr/bin/env bash
# The manifests started by a real engine (run by scripts/image.sh play):
# the kustomize example overlay and the Helm chart with its defaults,
# rendered with the tools scripts/check-deploy.sh installs, turned by
# scripts/lib/kube-play.py into what `podman kube play` runs here (it says
# each change), and played with host networking against the broker
# KAFKA_BOOTSTRAP_SERVERS names. For each: the container runs with the
# rendered args, env, ConfigMap and Secret mounts and securityContext,
# /readyz answers 200, and a delivery posted to the pod gets OK and lands in
# Kafka. Everything played is torn down.
#
# Environment: IMAGE, KAFKA_BOOTSTRAP_SERVERS, POPBILL_TOOLS_CACHE.
set -euo pipefail
cd "$(dirname "$0")/../.."
here=$(pwd)

image="${IMAGE:?IMAGE names the image}"
brokers="${KAFKA_BOOTSTRAP_SERVERS:?KAFKA_BOOTSTRAP_SERVERS names the broker the pods use}"
cache="${POPBILL_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/popbill-bridge}"
kustomize="$cache/bin/kustomize"
helm=$(ls -d "$cache"/helm-v*/helm 2>/dev/null | head -n1)
py="$cache/venv/bin/python"
if [ ! -x "$kustomize" ] || [ -z "$helm" ] || [ ! -x "$py" ]; then
  echo "kube-play: kustomize, helm and the Python venv come from scripts/check-deploy.sh: run it first" >&2
  exit 1
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/popbill-kube-play.XXXXXX")
played=""
# shellcheck disable=SC2317 # run by the trap
cleanup() {
  [ -n "$played" ] && podman kube down "$played" >/dev/null 2>&1 || true
  podman secret rm popbill-bridge-secrets >/dev/null 2>&1 || true
  podman volume rm -f popbill-bridge-secrets >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# shellcheck source=kafka.sh
. "$here/scripts/lib/kafka.sh"
java="${JAVA:-java}" heap="-Xms32m -Xmx128m"
write_log4j "$work"
# Records in a topic, summed over its partitions (0 when it does not exist).
records_in() {
  run_java "$work" org.apache.kafka.tools.GetOffsetShell --bootstrap-server "$brokers" --topic "$1" 2>/dev/null |
    awk -F: '{n += $3} END {print n + 0}'
}

suite="kube play"
# shellcheck source=checks.sh
. "$(dirname "${BASH_SOURCE[0]}")/checks.sh"

play() {
  local name=$1 rendered=$2
  local yaml="$work/$name.yaml"
  "$py" scripts/lib/kube-play.py "$rendered" "$image" "$brokers" >"$yaml"
  podman secret rm popbill-bridge-secrets >/dev/null 2>&1 || true
  # The systemd health-check timers it cannot set up here are said, not fatal.
  podman kube play --network host "$yaml" 2>"$work/$name.play.log" >/dev/null ||
    { cat "$work/$name.play.log" >&2; return 1; }
  played="$yaml"
  local c
  c=$(podman ps -a --format '{{.Names}}' | grep -- '-popbill-bridge$' | head -n1 || true)
  ready() {
    for _ in $(seq 1 150); do
      [ "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:9090/readyz)" = 200 ] && return 0
      sleep 0.2
    done
    podman logs "$c" 2>&1 | tail -5 >&2
    return 1
  }
  check "$name: /readyz, the readiness probe's endpoint, answers 200" ready
  rendered_args() {
    [ "$(podman inspect --format '{{join .Args " "}}' "$c")" = "$("$py" -c '
import sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    if d and d.get("kind") == "Deployment":
        print(" ".join(d["spec"]["template"]["spec"]["containers"][0].get("args", [])))' "$yaml")" ]
  }
  check "$name: the container runs with the rendered args" rendered_args
  env_set() {
    local have
    have=$(podman inspect --format '{{range .Config.Env}}{{println .}}{{end}}' "$c")
    "$py" -c '
import sys, yaml
have = set(sys.argv[2].splitlines())
for d in yaml.safe_load_all(open(sys.argv[1])):
    if d and d.get("kind") == "Deployment":
        for e in d["spec"]["template"]["spec"]["containers"][0].get("env", []):
            if "value" in e and e["name"] + "=" + e["value"] not in have:
                sys.exit(e["name"] + " is not set as rendered")' "$yaml" "$have"
  }
  check "$name: ... and the rendered env" env_set
  mounts() {
    local m
    m=$(podman inspect --format '{{range .Mounts}}{{.Destination}} {{end}}' "$c")
    case "$m" in *"/etc/popbill-bridge "*) ;; *) return 1 ;; esac
    if grep -q 'popbill-bridge-secrets' "$yaml" && grep -q 'mountPath: /etc/popbill-bridge-secrets' "$yaml"; then
      case "$m" in *"/etc/popbill-bridge-secrets "*) ;; *) return 1 ;; esac
    fi
  }
  check "$name: ... the ConfigMap (and Secret) mounted where rendered" mounts
  security() {
    [ "$(podman inspect --format '{{.HostConfig.ReadonlyRootfs}}' "$c")" = true ] &&
      [ "$(podman inspect --format '{{.Config.User}}' "$c")" = 65532:65532 ] &&
      [ -z "$(podman inspect --format '{{join .EffectiveCaps ","}}' "$c")" ] &&
      grep -q no-new-privileges <<<"$(podman inspect --format '{{.HostConfig.SecurityOpt}}' "$c")"
  }
  check "$name: ... read-only root filesystem, uid 65532, no capabilities, no privilege escalation" security
  local topic=popbill.taxinvoice.state.issue before
  before=$(records_in "$topic")
  delivered() {
    local auth=()
    if grep -q 'popbill-bridge-secrets' "$yaml"; then
      auth=(-u popbill:s3cret -H 'X-Api-Key: k-play')
    fi
    [ "$(curl -s "${auth[@]}" http://127.0.0.1:8080/popbill/webhook \
      -H 'Content-Type: application/json' -H 'Pb-Webhook-Type: TAXINVOICE.STATE' \
      -H "Pb-Webhook-MID: kube-play-$name-$$" -H 'Pb-Webhook-EventType: Issue' \
      -d '{"corpNum":"1234567890","itemKey":"025111409301000001","stateCode":300,"eventType":"Issue"}')" = OK ]
  }
  check "$name: a delivery posted to the pod gets OK" delivered
  landed() { [ "$(records_in "$topic")" -gt "$before" ]; }
  check "$name: ... and is in Kafka ($topic)" landed
  podman kube down "$yaml" >/dev/null 2>&1
  podman volume rm -f popbill-bridge-secrets >/dev/null 2>&1 || true
  played=""
}

"$kustomize" build deploy/overlays/example >"$work/kustomize-example.rendered.yaml"
play kustomize-example "$work/kustomize-example.rendered.yaml"
# The Kubernetes version the chart is validated against (check-deploy.sh).
k8s=$(sed -n 's/^k8s=//p' scripts/check-deploy.sh)
"$helm" template popbill-bridge deploy/helm/popbill-bridge --namespace popbill --kube-version "$k8s" \
  >"$work/helm-default.rendered.yaml"
play helm-default "$work/helm-default.rendered.yaml"
checks_done
