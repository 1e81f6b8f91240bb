#!/usr/bin/env bash
# Throughput and latency of the bridge against its ceiling, on one machine.
#
# For each concurrency (1, 64, 256):
#   1. ceiling: tools/src/bin/ceiling.rs produces the taxinvoice-issue sample to the
#      same topic with the bridge's producer settings (acks=all, idempotence,
#      message.timeout.ms=4000), same key and headers, N closed-loop tasks;
#   2. bridge: wrk posts the same sample to the bridge over N keep-alive
#      connections (closed loop), each request with a unique Pb-Webhook-MID
#      (a Lua request() hook), non-200 answers counted as errors.
# The bridge is restarted for every concurrency, so its VmHWM (peak RSS) is
# the peak of that phase; its CPU time comes from /proc/<pid>/stat around the
# wrk run, divided by the deliveries it acknowledged (its own counter).
#
# Progress goes to stderr, the table to stdout.
#
# Kafka: scripts/kafka.sh start (reused when already running; stopped at the
# end only when this script started it, otherwise the run's bench-<runid>.*
# topics are deleted). wrk comes from Debian (installed here when missing).
#
# Every concurrency runs the bridge with duplicate detection on and off
# (BENCH_DEDUP="on off"), so the cost of detection shows in the same run.
# Then a burst: BENCH_BURST (20000) deliveries fired at once, each on its own
# connection, at a fresh bridge with default limits (tools/src/bin/burst.rs): the
# answers must be 200 or the documented shedding (503, or a connection
# closed at limits.max_connections), and every 200 must be in Kafka.
#
# Environment: BENCH_SECONDS (20) per phase, BENCH_CONCURRENCY ("1 64 256"),
# CARGO_TARGET_DIR (target/), BENCH_REV (unset: build the work
# tree as it is; a git revision such as HEAD: build that revision, exported
# with git archive, so edits in progress do not matter; tools/src/bin/ceiling.rs
# comes from the work tree when the revision lacks it); kafka.sh's own
# variables.
#
#   BENCH_SECONDS=10 scripts/bench.sh >table.txt
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

seconds="${BENCH_SECONDS:-20}"
concurrencies="${BENCH_CONCURRENCY:-1 64 256}"
dedup_modes="${BENCH_DEDUP:-on off}"
burst="${BENCH_BURST:-20000}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
brokers="" # from scripts/kafka.sh start: 127.0.0.1:19092 by default
listen=127.0.0.1:18080
admin=127.0.0.1:19090
runid="$(date +%Y%m%d%H%M%S)-$$"
topic="bench-$runid.taxinvoice.state.issue"
work="${TMPDIR:-/tmp}/popbill-bridge-bench-$runid"
mkdir -p "$work"
src="$root"
bin="$CARGO_TARGET_DIR/release/popbill-bridge"
ceiling="$CARGO_TARGET_DIR/release/ceiling"
burster="$CARGO_TARGET_DIR/release/burst"
tick=$(getconf CLK_TCK)

say() { printf 'bench.sh: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

case "$seconds" in '' | *[!0-9]*) die "BENCH_SECONDS must be a whole number of seconds" ;; esac
[ "$seconds" -ge 1 ] && [ "$seconds" -le 3600 ] || die "BENCH_SECONDS must be 1..3600"

# --- clean-up: whatever happens, nothing keeps running ----------------------
bridge_pid=""
bridge_started=0
kafka_started=0
stop_bridge() {
  [ -n "$bridge_pid" ] || return 0
  if kill -0 "$bridge_pid" 2>/dev/null; then
    kill -TERM "$bridge_pid" 2>/dev/null || true
    for _ in $(seq 1 100); do # 20 s at most, then SIGKILL
      kill -0 "$bridge_pid" 2>/dev/null || break
      sleep 0.2
    done
    kill -KILL "$bridge_pid" 2>/dev/null || true
  fi
  wait "$bridge_pid" 2>/dev/null || true
  bridge_pid=""
}
# On a broker that keeps running, delete this run's topics (best effort),
# with the broker's own TopicCommand from kafka.sh's jar cache.
delete_topics() {
  local version lib
  version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' scripts/kafka/pom.xml)
  lib="${POPBILL_KAFKA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/popbill-bridge}/kafka-$version/lib"
  if [ -d "$lib" ] && command -v "${JAVA:-java}" >/dev/null 2>&1; then
    say "deleting this run's topics (bench-$runid.*) from the broker left running"
    timeout 120 "${JAVA:-java}" -Xmx256m -cp "$lib/*" org.apache.kafka.tools.TopicCommand \
      --bootstrap-server "$brokers" --delete --if-exists --topic "bench-$runid\\..*" \
      >"$work/delete-topics.log" 2>&1 ||
      say "warning: could not delete the topics bench-$runid.* (see $work/delete-topics.log)"
  else
    say "note: topics bench-$runid.* are left on the broker"
  fi
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_bridge
  if [ "$kafka_started" = 1 ]; then
    say "stopping the Kafka broker this script started"
    timeout 120 scripts/kafka.sh stop >/dev/null 2>&1 || say "warning: kafka.sh stop failed"
  elif [ "$bridge_started" = 1 ]; then
    delete_topics
  fi
  say "logs and raw results in $work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- tools -------------------------------------------------------------------
if ! command -v wrk >/dev/null 2>&1; then
  say "installing wrk (Debian package)"
  if [ "$(id -u)" = 0 ]; then apt_get=(apt-get); else apt_get=(sudo apt-get); fi
  timeout 600 "${apt_get[@]}" install -y wrk >"$work/apt.log" 2>&1 ||
    { timeout 600 "${apt_get[@]}" update >>"$work/apt.log" 2>&1 &&
      timeout 600 "${apt_get[@]}" install -y wrk >>"$work/apt.log" 2>&1; } ||
    die "could not install wrk (see $work/apt.log)"
fi
command -v curl >/dev/null 2>&1 || die "curl is needed"

# --- ports free? ---------------------------------------------------------------
for hp in "$listen" "$admin"; do
  if (exec 3<>"/dev/tcp/${hp%:*}/${hp#*:}") 2>/dev/null; then
    die "$hp is already in use: another bridge running?"
  fi
done

# --- Kafka ---------------------------------------------------------------------
if scripts/kafka.sh status >/dev/null 2>&1; then
  say "a Kafka broker is running: reusing it (left running afterwards)"
else
  kafka_started=1
  say "starting the Kafka broker (scripts/kafka.sh start; stopped at the end)"
fi
timeout 1200 scripts/kafka.sh start >"$work/kafka-bootstrap" || die "Kafka did not start"
brokers=$(tail -n 1 "$work/kafka-bootstrap")
[ -n "$brokers" ] || die "scripts/kafka.sh start printed no bootstrap address"
say "Kafka at $brokers"

# --- build -----------------------------------------------------------------------
if [ -n "${BENCH_REV:-}" ]; then
  src="$work/src"
  mkdir -p "$src"
  rev=$(git -C "$root" rev-parse --verify "$BENCH_REV^{commit}") || die "no revision $BENCH_REV"
  say "exporting revision $BENCH_REV ($rev) to $src"
  git -C "$root" archive --format=tar "$rev" | tar -x -C "$src"
  [ -f "$src/tools/Cargo.toml" ] || die "revision $BENCH_REV predates the tools crate (tools/)"
fi
say "building popbill-bridge and its tools from $src (release, CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
(cd "$src" && cargo build --release -p popbill-bridge -p popbill-bridge-tools --bins >&2) ||
  die "build failed (to bench the last commit instead of the work tree: BENCH_REV=HEAD)"
fixture="$src/tests/fixtures/deliveries.jsonl"

# The sample: body and headers (MID excluded), as the ceiling sends them.
"$ceiling" --fixture "$fixture" --sample taxinvoice-issue \
  --dump-sample "$work/sample" || die "cannot read the sample delivery"

# wrk's script: the sample, and a unique Pb-Webhook-MID on every request
# (run id, concurrency, wrk thread, per-thread counter); every answer other
# than 200 counts as an error; one JSON line at the end.
cat >"$work/post.lua" <<'LUA'
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end
local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end
function init(args)
  prefix = args[1]
  body = slurp(args[2] .. "/body")
  hdrs = {}
  for line in slurp(args[2] .. "/headers"):gmatch("[^\n]+") do
    local k, v = line:match("^([^\t]+)\t(.*)$")
    if k then hdrs[k] = v end
  end
  n = 0
  non200 = 0
end
function request()
  n = n + 1
  hdrs["Pb-Webhook-MID"] = string.format("%s-%d-%d", prefix, tid, n)
  return wrk.format("POST", "/popbill/webhook", hdrs, body)
end
function response(status, headers, body)
  if status ~= 200 then non200 = non200 + 1 end
end
function done(summary, latency, requests)
  local bad, sent = 0, 0
  for _, t in ipairs(threads) do
    bad = bad + t:get("non200")
    sent = sent + t:get("n")
  end
  local e = summary.errors
  io.write(string.format(
    '{"wrk":1,"duration_s":%.3f,"responses":%d,"non200":%d,"sent":%d,' ..
    '"connect":%d,"read":%d,"write":%d,"timeout":%d,' ..
    '"p50_ms":%.3f,"p99_ms":%.3f,"p999_ms":%.3f,"max_ms":%.3f}\n',
    summary.duration / 1e6, summary.requests, bad, sent,
    e.connect, e.read, e.write, e.timeout,
    latency:percentile(50) / 1e3, latency:percentile(99) / 1e3,
    latency:percentile(99.9) / 1e3, latency.max / 1e3))
end
LUA

# --- helpers -------------------------------------------------------------------
# A number field of a flat JSON line.
jnum() { sed -n "s/.*\"$1\":\([-0-9.eE+]*\).*/\1/p" <<<"$2"; }

cpu_ticks() { # utime + stime of a pid
  local s
  s=$(cat "/proc/$1/stat")
  s=${s##*) } # fields after the command name
  awk '{print $12 + $13}' <<<"$s"
}

hwm_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }

# Deliveries the bridge acknowledged (its own counter), summed over event types.
acked() {
  curl -sf --max-time 5 "http://$admin/metrics" |
    awk '/^popbill_bridge_deliveries_total\{/ && /outcome="acknowledged"/ {s += $NF} END {printf "%d\n", s}'
}

# Duplicate detection (when the build has it) keeps a ledger topic that every
# start reads back into memory: one of this run's own per concurrency, so a
# phase neither reads the previous phases' events nor other runs'.
ledger_env() { # concurrency
  local v="POPBILL_BRIDGE_DEDUP__LEDGER_TOPIC=bench-$runid.ledger.c$1"
  if env "$v" "$bin" --brokers "$brokers" --check-config >/dev/null 2>&1; then
    echo "$v"
  fi
}

start_bridge() { # concurrency, dedup mode (on|off)
  local log="$work/bridge-$1-$2.log"
  local extra dedup=true
  [ "$2" = off ] && dedup=false
  extra=$(ledger_env "$1-$2")
  [ -n "$extra" ] || say "  (this build has no dedup.ledger_topic setting)"
  env ${extra:+"$extra"} \
    POPBILL_BRIDGE_DEDUP__ENABLED="$dedup" \
    POPBILL_BRIDGE_TOPICS__REPLICATION_FACTOR=1 \
    POPBILL_BRIDGE_TOPICS__SETTINGS__MIN_INSYNC_REPLICAS=1 \
    POPBILL_BRIDGE_LOG__LEVEL=warn \
    POPBILL_BRIDGE_ROUTES__TEMPLATE="bench-$runid.{type}.{event}" \
    POPBILL_BRIDGE_ROUTES__FALLBACK="bench-$runid.unrouted" \
    POPBILL_BRIDGE_SERVER__SHUTDOWN_DELAY=0s \
    "$bin" --brokers "$brokers" --listen "$listen" --admin-listen "$admin" \
    >"$log" 2>&1 &
  bridge_pid=$!
  bridge_started=1
  local deadline=$((SECONDS + 60))
  until [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://$admin/readyz")" = 200 ]; do
    kill -0 "$bridge_pid" 2>/dev/null || { tail -n 30 "$log" >&2; die "the bridge exited while starting"; }
    [ $SECONDS -lt $deadline ] || { tail -n 30 "$log" >&2; die "the bridge was not ready within 60 s"; }
    sleep 0.2
  done
}

# One request through the bridge, so its first produce (topic metadata) is
# not measured; the ceiling gets the same warm-up record.
warm_bridge() {
  local hargs=() k v
  while IFS=$'\t' read -r k v; do hargs+=(-H "$k: $v"); done <"$work/sample/headers"
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "${hargs[@]}" \
    -H "Pb-Webhook-MID: bench-$runid-warmup-$1" --data-binary "@$work/sample/body" \
    "http://$listen/popbill/webhook")
  [ "$code" = 200 ] || die "warm-up delivery answered $code (see $work/bridge-$1-*.log)"
}

# --- phases ----------------------------------------------------------------------
# The topics exist before anything is produced (the broker does not
# auto-create them): a first bridge start creates them for the ceiling too.
say "creating this run's topics (one bridge start)"
start_bridge setup on
warm_bridge setup
stop_bridge

rows=()
for c in $concurrencies; do
  say "concurrency $c: ceiling (producer alone), ${seconds}s"
  ceil=$(timeout --foreground -k 5 $((seconds + 60)) "$ceiling" --brokers "$brokers" --topic "$topic" \
    --concurrency "$c" --seconds "$seconds" --mid-prefix "bench-$runid-ceiling-c$c" \
    --fixture "$fixture" --sample taxinvoice-issue) ||
    die "the ceiling run failed"
  echo "$ceil" >"$work/ceiling-$c.json"
  say "  $ceil"

  for mode in $dedup_modes; do
    say "concurrency $c, dedup $mode: starting the bridge (fresh process: its VmHWM is this phase's peak)"
    start_bridge "$c" "$mode"
    warm_bridge "$c-$mode"
    threads=$((c < 2 ? c : 2))
    a0=$(acked)
    t0=$(cpu_ticks "$bridge_pid")
    say "concurrency $c, dedup $mode: bridge via wrk (-t$threads -c$c), ${seconds}s"
    timeout --foreground -k 5 $((seconds + 60)) wrk -t"$threads" -c"$c" -d"${seconds}s" --timeout 10s \
      -s "$work/post.lua" "http://$listen/popbill/webhook" -- "bench-$runid-c$c-$mode" "$work/sample" \
      >"$work/wrk-$c-$mode.out" 2>&1 || { cat "$work/wrk-$c-$mode.out" >&2; die "wrk failed"; }
    sleep 0.5 # requests wrk abandoned at its deadline finish their publish
    kill -0 "$bridge_pid" 2>/dev/null ||
      { tail -n 30 "$work/bridge-$c-$mode.log" >&2; die "the bridge exited during the run"; }
    t1=$(cpu_ticks "$bridge_pid")
    a1=$(acked)
    hwm=$(hwm_kib "$bridge_pid")
    w=$(grep '^{"wrk"' "$work/wrk-$c-$mode.out" | tail -n 1)
    [ -n "$w" ] || { cat "$work/wrk-$c-$mode.out" >&2; die "no result line from wrk"; }
    say "  $w"
    say "  bridge: $((t1 - t0)) CPU ticks, $((a1 - a0)) acknowledged, VmHWM ${hwm} KiB"
    stop_bridge
    rows+=("$c|$mode|$ceil|$w|$((t1 - t0))|$((a1 - a0))|$hwm")
  done
done

burst_line=""
if [ "$burst" -gt 0 ]; then
  # One socket per delivery on the sending side, up to max_connections on
  # the bridge's: both need the descriptors.
  ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true
  say "burst: $burst deliveries at once against a fresh bridge with default limits (fds: $(ulimit -n))"
  start_bridge burst on
  warm_bridge burst
  t0=$(cpu_ticks "$bridge_pid")
  burst_line=$(timeout --foreground -k 5 600 "$burster" --addr "$listen" --count "$burst" \
    --mid-prefix "bench-$runid-burst" --brokers "$brokers" --topic "$topic") ||
    { say "  $burst_line"; die "the burst lost an acknowledged delivery or got an undocumented answer"; }
  t1=$(cpu_ticks "$bridge_pid")
  bhwm=$(hwm_kib "$bridge_pid")
  say "  $burst_line"
  stop_bridge
fi

# --- the table ---------------------------------------------------------------------
{
  printf '# popbill-bridge bench: run %s, %ss per phase, topic %s, %s cores\n' \
    "$runid" "$seconds" "$topic" "$(nproc)"
  printf '%-5s %-5s | %10s %10s %6s | %-23s | %-23s | %-11s | %8s | %7s\n' \
    conc dedup "ceil dl/s" "bridge dl/s" ratio "ceil p50/p99/p99.9 ms" "bridge p50/p99/p99.9 ms" \
    "err ceil/br" "CPU µs/dl" "RSS MiB"
  for r in "${rows[@]}"; do
    IFS='|' read -r c mode ceil w ticks acks hwm <<<"$r"
    cdps=$(jnum deliveries_per_sec "$ceil")
    cerr=$(jnum errors "$ceil")
    dur=$(jnum duration_s "$w")
    resp=$(jnum responses "$w")
    non200=$(jnum non200 "$w")
    serr=$(($(jnum connect "$w") + $(jnum read "$w") + $(jnum write "$w") + $(jnum timeout "$w")))
    berr=$((non200 + serr))
    awk -v c="$c" -v mode="$mode" -v cdps="$cdps" -v ok="$((resp - non200))" -v dur="$dur" \
      -v cp50="$(jnum p50_ms "$ceil")" -v cp99="$(jnum p99_ms "$ceil")" -v cp999="$(jnum p999_ms "$ceil")" \
      -v bp50="$(jnum p50_ms "$w")" -v bp99="$(jnum p99_ms "$w")" -v bp999="$(jnum p999_ms "$w")" \
      -v cerr="$cerr" -v berr="$berr" -v ticks="$ticks" -v hz="$tick" -v acks="$acks" -v hwm="$hwm" '
      BEGIN {
        bdps = dur > 0 ? ok / dur : 0
        ratio = cdps > 0 ? bdps / cdps : 0
        cpu = acks > 0 ? ticks / hz * 1e6 / acks : 0
        printf "%-5s %-5s | %10.0f %11.0f %6.2f | %7.2f/%7.2f/%7.2f | %7.2f/%7.2f/%7.2f | %5d/%-5d | %8.0f | %7.1f\n",
          c, mode, cdps, bdps, ratio, cp50, cp99, cp999, bp50, bp99, bp999, cerr, berr, cpu, hwm / 1024
      }'
  done
  if [ -n "$burst_line" ]; then
    printf 'burst: %s\n' "$burst_line"
    awk -v t="$((t1 - t0))" -v hz="$tick" -v hwm="$bhwm" \
      'BEGIN { printf "burst: bridge CPU %.2f s, peak RSS %.1f MiB\n", t / hz, hwm / 1024 }'
  fi
  printf '# ceiling: tools/src/bin/ceiling.rs (rdkafka FutureProducer, same settings/record/topic, closed loop)\n'
  printf '# bridge: wrk closed loop over keep-alive connections, unique Pb-Webhook-MID per request;\n'
  printf '#   errors = non-200 answers + socket errors/timeouts; CPU = bridge utime+stime during the wrk run\n'
  printf '#   / deliveries it acknowledged; RSS = VmHWM of a bridge process started fresh for that concurrency\n'
} >"$work/table.txt"
cat "$work/table.txt"
