#!/usr/bin/env bash
# Checks deploy/ offline, installing its tools on first use (cached in
# ~/.cache/popbill-bridge): yamllint; kustomize builds of the base and the
# example overlay; the rendered manifests against the Kubernetes schemas
# (kubernetes-validate, which ships them; the Prometheus Operator's CRDs
# are not in them and are skipped); promtool check + test of the alert
# rules; the PrometheusRule equal to the rules it copies; the ConfigMap's
# config file equal to config/popbill-bridge.toml; and every metric name
# the dashboard and the alerts use present in the bridge's real /metrics.
#
# Usage: scripts/check-deploy.sh [metrics-file]   (or METRICS_FILE=...)
# Without a metrics file it starts the bridge with --dev and scrapes it.
set -euo pipefail
cd "$(dirname "$0")/.."
cache="${POPBILL_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/popbill-bridge}"
venv="$cache/venv"
bin="$cache/bin"
work=$(mktemp -d)
bridge_pid=""
cleanup() {
  [ -n "$bridge_pid" ] && kill "$bridge_pid" 2>/dev/null && wait "$bridge_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
ok() { printf 'check-deploy: ok   %s\n' "$*"; }
fail() { printf 'check-deploy: FAIL %s\n' "$*" >&2; exit 1; }

# --- tools ------------------------------------------------------------------
if [ ! -x "$venv/bin/yamllint" ] || [ ! -x "$venv/bin/kubernetes-validate" ]; then
  echo "check-deploy: installing yamllint, kubernetes-validate, PyYAML (PyPI) into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q yamllint==1.38.0 kubernetes-validate==1.37.0 pyyaml >&2
fi
if [ ! -x "$bin/kustomize" ]; then
  echo "check-deploy: installing kustomize (Go module proxy) into $bin" >&2
  (cd "$work" && GOBIN="$bin" GOFLAGS=-mod=mod go install sigs.k8s.io/kustomize/kustomize/v5@v5.7.1 >&2)
fi
if ! command -v promtool >/dev/null 2>&1; then
  echo "check-deploy: installing Debian's prometheus package (promtool)" >&2
  { apt-get install -y -qq prometheus || { apt-get update -qq && apt-get install -y -qq prometheus; }; } >/dev/null
fi

# --- YAML style ---------------------------------------------------------------
"$venv/bin/yamllint" -s -d '{extends: default, rules: {line-length: {max: 140}, document-start: {present: true}}}' deploy >&2 ||
  fail "yamllint deploy/"
ok "yamllint ($("$venv/bin/yamllint" --version))"

# --- kustomize + Kubernetes schemas -------------------------------------------
for dir in deploy/base deploy/overlays/example; do
  out="$work/$(echo "$dir" | tr / _).yaml"
  "$bin/kustomize" build "$dir" >"$out" || fail "kustomize build $dir"
  # Split into one file per object and validate the core kinds.
  "$venv/bin/python" - "$out" "$work/split" <<'PY'
import os, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
os.makedirs(sys.argv[2], exist_ok=True)
for i, d in enumerate(docs):
    kind = d["kind"]
    sub = "crd" if d["apiVersion"].startswith("monitoring.coreos.com/") else "core"
    os.makedirs(os.path.join(sys.argv[2], sub), exist_ok=True)
    with open(os.path.join(sys.argv[2], sub, f"{i:02d}-{kind}.yaml"), "w") as f:
        yaml.safe_dump(d, f)
PY
  "$venv/bin/kubernetes-validate" --strict -k 1.30.0 "$work/split/core/"*.yaml >"$work/kv.log" 2>&1 ||
    { cat "$work/kv.log" >&2; fail "kubernetes-validate ($dir)"; }
  n=$(ls "$work/split/core" | wc -l)
  skipped=$({ ls "$work/split/crd" 2>/dev/null || true; } | sed 's/^[0-9]*-//; s/\.yaml$//' | tr '\n' ' ')
  ok "kustomize build $dir: $n objects valid against Kubernetes 1.30 schemas (strict); not in them: ${skipped:-none}"
  rm -rf "$work/split"
done

# --- config copy -----------------------------------------------------------------
cmp -s config/popbill-bridge.toml deploy/base/popbill-bridge.toml ||
  fail "deploy/base/popbill-bridge.toml differs from config/popbill-bridge.toml: cp config/popbill-bridge.toml deploy/base/"
ok "ConfigMap config equals config/popbill-bridge.toml"

# --- alert rules -------------------------------------------------------------------
promtool check rules deploy/prometheus/alerts.yaml >"$work/promtool.log" 2>&1 ||
  { cat "$work/promtool.log" >&2; fail "promtool check rules"; }
(cd deploy/prometheus && promtool test rules alerts.test.yaml) >"$work/promtool-test.log" 2>&1 ||
  { cat "$work/promtool-test.log" >&2; fail "promtool test rules"; }
"$venv/bin/python" - <<'PY' || fail "deploy/components/monitoring/prometheusrule.yaml differs from deploy/prometheus/alerts.yaml"
import yaml, sys
rules = yaml.safe_load(open("deploy/prometheus/alerts.yaml"))
pr = yaml.safe_load(open("deploy/components/monitoring/prometheusrule.yaml"))
sys.exit(0 if pr["spec"] == rules else 1)
PY
ok "promtool check + test rules ($(promtool --version 2>&1 | head -n1 | awk '{print $3}')); PrometheusRule = alerts.yaml"

# --- metric names: dashboard and alerts vs the real /metrics -----------------------
metrics="${1:-${METRICS_FILE:-}}"
if [ -z "$metrics" ]; then
  exe=target/release/popbill-bridge
  [ -x "$exe" ] || exe=target/debug/popbill-bridge
  [ -x "$exe" ] || cargo build --quiet --bin popbill-bridge
  ports=$(python3 -c 'import socket
s=[socket.socket() for _ in range(2)]
[x.bind(("127.0.0.1",0)) for x in s]
print(*[x.getsockname()[1] for x in s])')
  read -r p1 p2 <<<"$ports"
  # Per-broker gauges appear with librdkafka's first statistics report.
  POPBILL_BRIDGE_KAFKA__STATISTICS_INTERVAL=500ms \
    "$exe" --dev --listen "127.0.0.1:$p1" --admin-listen "127.0.0.1:$p2" >"$work/bridge.log" 2>&1 &
  bridge_pid=$!
  for _ in $(seq 1 150); do
    curl -sf "http://127.0.0.1:$p2/metrics" >"$work/metrics.txt" 2>/dev/null &&
      grep -q '^popbill_bridge_kafka_broker_rtt_avg_seconds' "$work/metrics.txt" && break
    sleep 0.1
  done
  metrics="$work/metrics.txt"
fi
[ -s "$metrics" ] || fail "no /metrics output to check against"
"$venv/bin/python" - "$metrics" <<'PY' || fail "metric names used in deploy/ are missing from /metrics"
import json, re, sys, yaml
exposed = set()
for line in open(sys.argv[1]):
    if line.startswith("# TYPE "):
        _, _, name, kind = line.split()[:4]
        exposed.add(name)
        if kind == "histogram":
            exposed |= {name + "_bucket", name + "_sum", name + "_count"}
    elif line and not line.startswith("#"):
        exposed.add(re.split(r"[{ ]", line, 1)[0])
used = {}
dash = json.load(open("deploy/grafana/popbill-bridge.json"))
for p in dash["panels"]:
    for t in p.get("targets", []):
        for m in re.findall(r"popbill_bridge_[a-z0-9_]+", t["expr"]):
            used.setdefault(m, set()).add("dashboard: " + p["title"])
for g in yaml.safe_load(open("deploy/prometheus/alerts.yaml"))["groups"]:
    for r in g["rules"]:
        for m in re.findall(r"popbill_bridge_[a-z0-9_]+", r["expr"]):
            used.setdefault(m, set()).add("alert: " + r["alert"])
missing = {m: w for m, w in used.items() if m not in exposed}
for m, w in sorted(missing.items()):
    print(f"  {m} (used by {', '.join(sorted(w))})", file=sys.stderr)
if not missing:
    print(f"check-deploy: ok   {len(used)} metric names used by the dashboard and alerts all exist in /metrics")
sys.exit(1 if missing else 0)
PY
