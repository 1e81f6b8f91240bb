#!/usr/bin/env bash
# The bridge against the real limit, on one machine, in one run (issues #12
# and #20). docs/performance.md says what each row means and how the goals
# are judged.
#
# Systems, all producing the taxinvoice-issue sample to the same topic with
# the bridge's producer settings (acks=all, idempotence, message.timeout.ms):
#   ceiling     tools/src/bin/ceiling.rs: the producer alone, no HTTP;
#   minimal     tools/src/bin/minimal-bridge.rs: hyper + rdkafka, body
#               produced as-is, OK after the delivery report — the reference
#               every goal is a ratio to;
#   floor       the minimal bridge with --record: the record popbill-bridge
#               writes (body parsed by its Delivery::parse, keyed, with its
#               record headers), and nothing else — what any bridge writing
#               that record format pays (issue #25). Its rows say which goals
#               the format alone already misses, and the bridges' cost is
#               also given as a ratio to it;
#   bridge-off  popbill-bridge with duplicate detection off, Kafka
#               transactions off;
#   bridge-on   popbill-bridge with duplicate detection on, transactions off
#               (both as issue #12 set its goals: the idempotent producer);
#   bridge-txn  popbill-bridge as shipped: transactions on (each record and
#               its ledger line in one transaction, committed in groups),
#               detection on — judged by issue #20's goals, and its group
#               commit read from its /metrics (commits/s, deliveries a
#               transaction, how long a transaction takes).
#
# Phases, each against a server process started fresh (so its VmHWM is the
# phase's peak RSS), its CPU (utime+stime from /proc/<pid>/stat) taken around
# the load and divided by the deliveries answered 200:
#   closed  wrk, N keep-alive connections each waiting for its answer, a
#           unique Pb-Webhook-MID per request, for each BENCH_CONCURRENCY;
#           the ceiling with N tasks;
#   open    tools/src/bin/loadgen.rs at a fixed arrival rate, BENCH_OPEN
#           percent of the minimal bridge's best closed-loop throughput,
#           latency from each request's intended send time;
#   burst   tools/src/bin/burst.rs: BENCH_BURST deliveries at once, one
#           connection each, default limits; every OK looked up in Kafka;
#   callgrind (BENCH_CALLGRIND=1, slow) each HTTP system under valgrind
#           --tool=callgrind: instructions (Ir) per delivery over
#           BENCH_CALLGRIND_COUNT deliveries at BENCH_CALLGRIND_CONCURRENCY,
#           counters zeroed after a warm-up — stable on a busy machine.
# The order of the systems rotates between concurrencies, rates and rounds.
# Every figure of a row is the median over BENCH_ROUNDS (peak RSS: the max).
#
# Progress goes to stderr, the table to stdout (and $work/table.txt).
#
# Kafka: scripts/kafka.sh start (reused when already running; stopped at the
# end only when this script started it, otherwise the run's bench-<runid>.*
# topics are deleted). wrk (and valgrind for BENCH_CALLGRIND) come from
# Debian, installed here when missing.
#
# Environment:
#   BENCH_SECONDS (20)          per closed/open phase
#   BENCH_CONCURRENCY ("64 256") closed-loop concurrencies (the goals are at 64, 256; add 1 if wanted)
#   BENCH_DEDUP ("off on")      bridge modes with transactions off ("": none)
#   BENCH_TXN (1)               0: no bridge-txn
#   BENCH_FLOOR (1)             0: no floor (a revision without minimal-bridge --record has none)
#   BENCH_TXN_ENV               NAME=value words for bridge-txn only, e.g.
#                               POPBILL_BRIDGE_KAFKA__TRANSACTIONS__PRODUCERS=4
#   BENCH_ROUNDS (1)            rounds, order rotated
#   BENCH_OPEN ("50 90")        open-loop rates, percent of BENCH_OPEN_BASE
#   BENCH_OPEN_BASE             deliveries/s (default: the minimal bridge's best closed-loop median)
#   BENCH_BURST (20000)         0: no burst
#   BENCH_LOG_LEVEL (info)      the bridges' log.level: info, as shipped, writes
#                               one line per delivery (to a file in the run's
#                               directory); warn leaves it out
#   BENCH_CALLGRIND (0)         1: the callgrind phase
#   BENCH_CALLGRIND_COUNT (2000), BENCH_CALLGRIND_CONCURRENCY (16)
#   BENCH_REV                   unset: build the work tree as it is; a git
#                               revision such as HEAD: build that revision (git archive)
#   CARGO_TARGET_DIR (target/); kafka.sh's own variables.
#
#   BENCH_SECONDS=10 scripts/bench.sh >table.txt
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

seconds="${BENCH_SECONDS:-20}"
concurrencies="${BENCH_CONCURRENCY:-64 256}"
dedup_modes="${BENCH_DEDUP-off on}" # set but empty: no bridge without transactions
txn="${BENCH_TXN:-1}"
floor="${BENCH_FLOOR:-1}"
read -r -a txn_env <<<"${BENCH_TXN_ENV:-}"
rounds="${BENCH_ROUNDS:-1}"
open_pcts="${BENCH_OPEN:-50 90}"
open_base="${BENCH_OPEN_BASE:-}"
burst="${BENCH_BURST:-20000}"
callgrind="${BENCH_CALLGRIND:-0}"
log_level="${BENCH_LOG_LEVEL:-info}"
cg_count="${BENCH_CALLGRIND_COUNT:-2000}"
cg_conc="${BENCH_CALLGRIND_CONCURRENCY:-16}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
brokers="" # from scripts/kafka.sh start: 127.0.0.1:19092 by default
listen=127.0.0.1:18080
admin=127.0.0.1:19090
runid="$(date +%Y%m%d%H%M%S)-$$"
topic="bench-$runid.taxinvoice.state.issue"
work="${TMPDIR:-/tmp}/popbill-bridge-bench-$runid"
mkdir -p "$work"
results="$work/results.psv"
: >"$results"
src="$root"
bin="$CARGO_TARGET_DIR/release/popbill-bridge"
tools="$CARGO_TARGET_DIR/release"
tick=$(getconf CLK_TCK)
started_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)
load_at_start=$(cut -d' ' -f1-3 /proc/loadavg)

say() { printf 'bench.sh: %s\n' "$*" >&2; }
die() {
  say "error: $*"
  exit 1
}

whole() { # name value min max
  case "$2" in '' | *[!0-9]*) die "$1 must be a whole number" ;; esac
  [ "$2" -ge "$3" ] && [ "$2" -le "$4" ] || die "$1 must be $3..$4"
}
whole BENCH_SECONDS "$seconds" 1 3600
whole BENCH_ROUNDS "$rounds" 1 20
case "$log_level" in
  trace | debug | info | warn | error) ;;
  *) die "BENCH_LOG_LEVEL must be trace, debug, info, warn or error, not '$log_level'" ;;
esac
whole BENCH_BURST "$burst" 0 100000
whole BENCH_CALLGRIND_COUNT "$cg_count" 1 1000000
whole BENCH_CALLGRIND_CONCURRENCY "$cg_conc" 1 1024
whole BENCH_TXN "$txn" 0 1
whole BENCH_FLOOR "$floor" 0 1
for v in "${txn_env[@]}"; do
  case "$v" in POPBILL_BRIDGE_*=*) ;; *) die "BENCH_TXN_ENV: POPBILL_BRIDGE_...=value words, not $v" ;; esac
done
for c in $concurrencies; do whole "BENCH_CONCURRENCY ($c)" "$c" 1 4096; done
for p in $open_pcts; do whole "BENCH_OPEN ($p)" "$p" 1 200; done
for m in $dedup_modes; do case "$m" in on | off) ;; *) die "BENCH_DEDUP: on or off, not $m" ;; esac; done
[ -z "$open_base" ] || whole BENCH_OPEN_BASE "$open_base" 1 10000000
bridges=()
for m in $dedup_modes; do bridges+=("bridge-$m"); done
[ "$txn" = 0 ] || bridges+=(bridge-txn)

# --- clean-up: whatever happens, nothing keeps running ----------------------
server_pid=""
server_started=0
kafka_started=0
stop_wait=100 # × 0.2 s before SIGKILL
stop_server() {
  [ -n "$server_pid" ] || return 0
  if kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 "$stop_wait"); do
      kill -0 "$server_pid" 2>/dev/null || break
      sleep 0.2
    done
    kill -KILL "$server_pid" 2>/dev/null || true
  fi
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}
# On a broker that keeps running, delete this run's topics (best effort),
# with the broker's own TopicCommand from kafka.sh's jar cache.
# shellcheck source=lib/kafka.sh
. scripts/lib/kafka.sh
delete_topics() {
  local lib=$kafka_lib
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
  stop_server
  if [ "$kafka_started" = 1 ]; then
    say "stopping the Kafka broker this script started"
    timeout 120 scripts/kafka.sh stop >/dev/null 2>&1 || say "warning: kafka.sh stop failed"
  elif [ "$server_started" = 1 ]; then
    delete_topics
  fi
  say "logs and raw results in $work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- tools -------------------------------------------------------------------
if [ "$(id -u)" = 0 ]; then apt_get=(apt-get); else apt_get=(sudo apt-get); fi
apt_install() { # package
  say "installing $1 (Debian package)"
  timeout 600 "${apt_get[@]}" install -y "$1" >>"$work/apt.log" 2>&1 ||
    { timeout 600 "${apt_get[@]}" update >>"$work/apt.log" 2>&1 &&
      timeout 600 "${apt_get[@]}" install -y "$1" >>"$work/apt.log" 2>&1; } ||
    die "could not install $1 (see $work/apt.log)"
}
command -v wrk >/dev/null 2>&1 || apt_install wrk
if [ "$callgrind" = 1 ]; then
  command -v valgrind >/dev/null 2>&1 && command -v callgrind_control >/dev/null 2>&1 ||
    apt_install valgrind
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
  broker_note="reused"
else
  kafka_started=1
  broker_note="started by this run"
  say "starting the Kafka broker (scripts/kafka.sh start; stopped at the end)"
fi
timeout 1200 scripts/kafka.sh start >"$work/kafka-bootstrap" || die "Kafka did not start"
brokers=$(tail -n 1 "$work/kafka-bootstrap")
[ -n "$brokers" ] || die "scripts/kafka.sh start printed no bootstrap address"
say "Kafka at $brokers"
# The running broker's version, from the jar directory on its command line
# (it may have been started from another checkout); else kafka.sh's.
broker_version=$kafka_version
kpid=$(cat "${POPBILL_KAFKA_STATE:-${TMPDIR:-/tmp}/popbill-bridge-kafka}/kafka.pid" 2>/dev/null || true)
if [ -n "$kpid" ] && [ -r "/proc/$kpid/cmdline" ]; then
  v=$(tr '\0' '\n' <"/proc/$kpid/cmdline" | grep -o 'kafka-[0-9][0-9.]*[0-9]' | head -n 1 || true)
  [ -z "$v" ] || broker_version=${v#kafka-}
fi
# A full collection of the broker's heap stalls every write, the
# transactional ones most (seen: 0.5 s each, 121 of them, on a test broker
# reused after an hour of tests: the bench measured those pauses). Counted
# around the run with the JDK's jstat, and named in the table's header.
broker_full_gcs() { # "<count> <seconds>" so far, or nothing
  [ -n "$kpid" ] && command -v jstat >/dev/null 2>&1 || return 0
  timeout 10 jstat -gcutil "$kpid" 2>/dev/null | awk 'NR == 2 {print $9, $10}' || true
}
gcs_at_start=$(broker_full_gcs)

# --- build -----------------------------------------------------------------------
commit="$(git -C "$root" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
if [ -n "${BENCH_REV:-}" ]; then
  src="$work/src"
  mkdir -p "$src"
  rev=$(git -C "$root" rev-parse --verify "$BENCH_REV^{commit}") || die "no revision $BENCH_REV"
  commit="${rev:0:12} (BENCH_REV=$BENCH_REV)"
  say "exporting revision $BENCH_REV ($rev) to $src"
  # -m: the files get the time of extraction. With the commit's times cargo
  # took a target/ built from newer sources for up to date, and benched that.
  git -C "$root" archive --format=tar "$rev" | tar -x -m -C "$src"
  [ -f "$src/tools/Cargo.toml" ] || die "revision $BENCH_REV predates the tools crate (tools/)"
  for t in minimal-bridge loadgen; do
    [ -f "$src/tools/src/bin/$t.rs" ] || die "revision $BENCH_REV has no tools/src/bin/$t.rs"
  done
elif [ -n "$(git -C "$root" status --porcelain 2>/dev/null)" ]; then
  commit="$commit + uncommitted changes"
fi
say "building popbill-bridge and its tools from $src (release, CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
(cd "$src" && cargo build --release -p popbill-bridge -p popbill-bridge-tools --bins >&2) ||
  die "build failed (to bench the last commit instead of the work tree: BENCH_REV=HEAD)"
fixture="$src/src/commands/samples/deliveries.jsonl"
if [ "$floor" = 1 ] && ! "$tools/minimal-bridge" --help 2>/dev/null | grep -q -- --record; then
  say "this revision's minimal-bridge has no --record: no floor"
  floor=0
fi
rdkafka_sys=$(awk '/^name = "rdkafka-sys"$/ {getline; gsub(/"/, "", $3); print $3; exit}' "$src/Cargo.lock")

# Whether this build knows kafka.transactions: a revision before them (a
# BENCH_REV) refuses the unknown setting, and its bridge-off and bridge-on
# are the idempotent producer anyway; it has no bridge-txn. BENCH_TXN_ENV is
# checked here too, so that a misspelt setting stops the run at once.
txn_known=1
if ! env POPBILL_BRIDGE_KAFKA__TRANSACTIONS__ENABLED=false "$bin" --brokers "$brokers" \
  --check-config >/dev/null 2>&1; then
  txn_known=0
  if [ "$txn" = 1 ]; then
    say "note: this build has no kafka.transactions setting: no bridge-txn"
    txn=0
    bridges=()
    for m in $dedup_modes; do bridges+=("bridge-$m"); done
  fi
elif [ "$txn" = 1 ]; then
  env POPBILL_BRIDGE_KAFKA__TRANSACTIONS__ENABLED=true "${txn_env[@]}" "$bin" --brokers "$brokers" \
    --check-config >"$work/txn-check.log" 2>&1 ||
    { cat "$work/txn-check.log" >&2; die "the bridge refuses BENCH_TXN_ENV (above)"; }
fi

# The sample: body, headers (MID excluded) and record key, as the ceiling sends them.
"$tools/ceiling" --fixture "$fixture" --sample taxinvoice-issue \
  --dump-sample "$work/sample" || die "cannot read the sample delivery"
key=$(cat "$work/sample/key")

# wrk's script: the sample, and a unique Pb-Webhook-MID on every request
# (run id and phase, wrk thread, per-thread counter); every answer other
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
# Floating-point arithmetic: calc 'expression' (awk syntax).
calc() { awk "BEGIN { printf \"%.10g\", ($1) }"; }

cpu_ticks() { # utime + stime of a pid
  local s
  s=$(cat "/proc/$1/stat")
  s=${s##*) } # fields after the command name
  awk '{print $12 + $13}' <<<"$s"
}

hwm_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }

# µs of CPU per delivery from a tick count and the deliveries answered 200.
cpu_us() { calc "$2 > 0 ? $1 / $tick * 1e6 / $2 : 0"; }

# What the errors of a loadgen line were, when there were any.
errors_note() {
  local by
  [ "$(jnum errors "$1")" != 0 ] || return 0
  by=$(sed -n 's/.*"non200_by_status":{\([^}]*\)}.*/\1/p' <<<"$1" | tr -d '"')
  printf '; errors: %s io %s, timeout %s, unsent %s' "${by:+status $by,}" \
    "$(jnum io_errors "$1")" "$(jnum timeouts "$1")" "$(jnum unfinished "$1")"
}

# One result: kind|system|load|round|dl/s|p99 ms|errors|CPU µs/dl|VmHWM KiB|Ir/dl|note|
# RSS goal KiB|then, bridge-txn only, txn_stats' six fields (13-18)
record() {
  local IFS='|'
  printf '%s\n' "$*" >>"$results"
}

# --- the group commit, from bridge-txn's own /metrics ---------------------------
# Issue #20 asks for the commit rate and the deliveries per transaction. The
# bridge counts both (popbill_bridge_transactions_total{outcome}, the
# histogram popbill_bridge_transaction_deliveries); two scrapes around the
# load give the phase's share (the warm-up delivery is before the first).
# Beside them, for where the latency goes: transaction_duration_seconds
# (sealing a group to its commit) and publish_duration_seconds (a delivery
# handed over to its transaction's verdict: the wait for its group to be
# sealed, then the transaction).
scrape() { # file: the server's /metrics now
  curl -s --max-time 5 "http://$admin/metrics" >"$1" || die "could not read http://$admin/metrics"
}
now_s() { echo "$EPOCHREALTIME"; }
# commits/s | deliveries per transaction | mean transaction ms | transactions
# over 10 ms (%) | mean publish ms | aborted + unsettled transactions;
# fields empty when the bridge has no such metrics (an older BENCH_REV).
txn_stats() { # before-file after-file seconds-of-load
  awk -v secs="$3" '
    FNR == 1 { f++ }
    /^#/ { next }
    { if (f == 1) b[$1] = $2; else a[$1] = $2 }
    function d(name) { return a[name] - b[name] }
    END {
      p = "popbill_bridge_"
      if (!((p "transactions_total{outcome=\"committed\"}") in a)) { print "|||||"; exit }
      committed = d(p "transactions_total{outcome=\"committed\"}")
      failed = d(p "transactions_total{outcome=\"aborted\"}") + d(p "transactions_total{outcome=\"unsettled\"}")
      n = d(p "transaction_deliveries_count")
      tn = d(p "transaction_duration_seconds_count")
      over = tn - d(p "transaction_duration_seconds_bucket{le=\"0.01\"}")
      pn = d(p "publish_duration_seconds_count")
      printf "%.1f|%.2f|%.3f|%.1f|%.3f|%d\n",
        (secs > 0 ? committed / secs : 0),
        (n > 0 ? d(p "transaction_deliveries_sum") / n : 0),
        (tn > 0 ? d(p "transaction_duration_seconds_sum") / tn * 1000 : 0),
        (tn > 0 ? over / tn * 100 : 0),
        (pn > 0 ? d(p "publish_duration_seconds_sum") / pn * 1000 : 0),
        failed
    }' "$1" "$2"
}
# Around a phase's load: txn_begin before it, txn_end after the 0.5 s its
# abandoned requests get; txn_end prints txn_stats' line (nothing for the
# other systems). Commits per second are per second of load.
txn_t0=0
txn_t1=0
txn_begin() { # system phase-name
  [ "$1" = bridge-txn ] || return 0
  scrape "$work/metrics-$2.before"
  txn_t0=$(now_s)
}
txn_load_ended() { txn_t1=$(now_s); }
txn_end() { # system phase-name
  [ "$1" = bridge-txn ] || return 0
  scrape "$work/metrics-$2.after"
  txn_stats "$work/metrics-$2.before" "$work/metrics-$2.after" "$(calc "$txn_t1 - $txn_t0")"
}
# The txn_stats line in words, for the progress output.
txn_words() {
  [ -n "$1" ] || return 0
  awk -F'|' '$1 != "" { printf "; group commit: %s commits/s, %s deliveries/txn, txn mean %s ms (%s%% over 10 ms), publish mean %s ms, %s aborted/unsettled", $1, $2, $3, $4, $5, $6 }' <<<"$1"
}

# --- where a delivery's time goes (issue #25, item 4), from a bridge's /metrics ----
# Two scrapes around an open-loop phase give, from the bridge's own
# histograms: the request (headers read to answer), the handover (to the
# record handed to the producer: body, slot, parsing, duplicates, topic
# check) and the report (handed over to Kafka's verdict, the request's task
# resumed); what is left of the mean is the answer and the log line. Means
# are exact (sum / count); a p99 is the histogram bucket it falls in
# ("<= x"). From the last statistics window, per the producer's brokers
# (averaged): librdkafka's queue wait (int_latency) and round-trip (rtt).
# Fields, in ms: request mean|request p99|handover mean|handover p99|report
# mean|report p99|after-report mean|queue avg|rtt avg; empty when the
# bridge has no such metrics (an older BENCH_REV).
stage_stats() { # before-file after-file
  awk '
    FNR == 1 { f++ }
    /^#/ { next }
    { if (f == 1) b[$1] = $2; else a[$1] = $2 }
    function d(name) { return a[name] - b[name] }
    function mean(h) { n = d(h "_count"); return n > 0 ? d(h "_sum") / n * 1000 : 0 }
    function p99(h,   n, k, le, best) {
      n = d(h "_count"); best = ""
      if (n <= 0) return "-"
      for (k in a) if (index(k, h "_bucket{le=\"") == 1) {
        le = substr(k, length(h "_bucket{le=\"") + 1); sub(/".*/, "", le)
        if (le != "+Inf" && d(k) >= 0.99 * n && (best == "" || le + 0 < best + 0)) best = le
      }
      return best == "" ? "> 10000" : sprintf("<= %g", best * 1000)
    }
    function gauge_avg(prefix,   k, s, m) {
      for (k in a) if (index(k, prefix "{") == 1 && a[k] > 0) { s += a[k]; m++ }
      return m ? sprintf("%.3f", s / m * 1000) : "-"
    }
    END {
      p = "popbill_bridge_"
      if (!((p "handover_duration_seconds_count") in a)) { print "||||||||"; exit }
      rq = mean(p "request_duration_seconds"); ho = mean(p "handover_duration_seconds")
      rp = mean(p "publish_duration_seconds")
      printf "%.3f|%s|%.3f|%s|%.3f|%s|%.3f|%s|%s\n", rq, p99(p "request_duration_seconds"),
        ho, p99(p "handover_duration_seconds"), rp, p99(p "publish_duration_seconds"),
        rq - ho - rp, gauge_avg(p "kafka_broker_queue_latency_avg_seconds"),
        gauge_avg(p "kafka_broker_rtt_avg_seconds")
    }' "$1" "$2"
}
stage_words() {
  [ -n "${1//|/}" ] || return 0
  awk -F'|' '{ printf "; stages: request mean %s ms (p99 %s), handover %s (%s), report %s (%s; queue %s, rtt %s), after report %s", $1, $2, $3, $4, $5, $6, $8, $9, $7 }' <<<"$1"
}
# One line per open-loop phase: system|load|round|loadgen p50 ms|loadgen
# errors|stage_stats. With errors, "after report" is not shown: the request
# histogram counts every answer, the other two only records handed over.
stages="$work/stages.psv"

# The memory goal of a bridge's steady (closed-loop) phase, in KiB, read
# while it still runs: 32 MiB with detection off; with it on, plus the
# documented 64 bytes a remembered event (docs/duplicates.md) for the events
# its memory holds at the end of the phase (its own gauge).
steady_rss_mib=32
burst_rss_mib=48
remembered_bytes=64
rss_goal_kib() { # system
  local n=0
  case "$1" in
    bridge-off) ;;
    bridge-on)
      n=$(curl -s --max-time 5 "http://$admin/metrics" |
        awk '$1 == "popbill_bridge_dedup_remembered_events" {print int($2); exit}')
      [ -n "$n" ] || die "could not read popbill_bridge_dedup_remembered_events from $admin"
      ;;
    *) return 0 ;;
  esac
  echo $((steady_rss_mib * 1024 + (n * remembered_bytes + 1023) / 1024))
}

# Duplicate detection keeps a ledger topic that every start reads back into
# memory: one of this run's own per phase, so a phase neither reads the
# previous phases' events nor other runs'.
ledger_env() { # phase name
  local v="POPBILL_BRIDGE_DEDUP__LEDGER_TOPIC=bench-$runid.ledger.$1"
  if env "$v" "$bin" --brokers "$brokers" --check-config >/dev/null 2>&1; then
    echo "$v"
  fi
}

# In the callgrind phase: the command that runs a server, and longer timeouts
# (valgrind runs it tens of times slower).
wrap=()
minimal_extra=()
bridge_extra=()
ready_s=60

start_server() { # system (minimal|floor|bridge-on|bridge-off|bridge-txn), phase name
  local sys=$1 name=$2 log="$work/server-$2.log"
  case "$sys" in
    minimal)
      "${wrap[@]}" "$tools/minimal-bridge" --brokers "$brokers" --listen "$listen" \
        --topic "$topic" ${key:+--key "$key"} "${minimal_extra[@]}" >"$log" 2>&1 &
      ;;
    floor)
      "${wrap[@]}" "$tools/minimal-bridge" --brokers "$brokers" --listen "$listen" \
        --topic "$topic" --record "${minimal_extra[@]}" >"$log" 2>&1 &
      ;;
    bridge-on | bridge-off | bridge-txn)
      local extra dedup=true transactions=()
      [ "$sys" = bridge-off ] && dedup=false
      # bridge-off and bridge-on keep the idempotent producer issue #12's
      # goals were set for; bridge-txn runs as shipped, its writers under
      # this run's own transactional.id (a later phase's start fences the
      # previous one's, as a restarted replica does), plus BENCH_TXN_ENV.
      if [ "$sys" = bridge-txn ]; then
        transactions=(POPBILL_BRIDGE_KAFKA__TRANSACTIONS__ENABLED=true
          POPBILL_BRIDGE_KAFKA__TRANSACTIONS__ID="bench-$runid" "${txn_env[@]}")
      elif [ "$txn_known" = 1 ]; then
        transactions=(POPBILL_BRIDGE_KAFKA__TRANSACTIONS__ENABLED=false)
      fi
      extra=$(ledger_env "$name")
      env ${extra:+"$extra"} "${bridge_extra[@]}" "${transactions[@]}" \
        POPBILL_BRIDGE_DEDUP__ENABLED="$dedup" \
        POPBILL_BRIDGE_TOPICS__REPLICATION_FACTOR=1 \
        POPBILL_BRIDGE_TOPICS__SETTINGS__MIN_INSYNC_REPLICAS=1 \
        POPBILL_BRIDGE_LOG__LEVEL="$log_level" \
        POPBILL_BRIDGE_ROUTES__TEMPLATE="bench-$runid.{type}.{event}" \
        POPBILL_BRIDGE_ROUTES__FALLBACK="bench-$runid.unrouted" \
        POPBILL_BRIDGE_SERVER__SHUTDOWN_DELAY=0s \
        "${wrap[@]}" "$bin" --brokers "$brokers" --listen "$listen" --admin-listen "$admin" \
        >"$log" 2>&1 &
      ;;
    *) die "unknown system $sys" ;;
  esac
  server_pid=$!
  server_started=1
  local deadline=$((SECONDS + ready_s))
  until ready "$sys"; do
    kill -0 "$server_pid" 2>/dev/null || {
      tail -n 30 "$log" >&2
      die "$sys exited while starting"
    }
    [ $SECONDS -lt $deadline ] || {
      tail -n 30 "$log" >&2
      die "$sys was not ready within ${ready_s}s"
    }
    sleep 0.2
  done
  warm "$name"
}
ready() {
  if [ "$1" = minimal ] || [ "$1" = floor ]; then
    (exec 3<>"/dev/tcp/${listen%:*}/${listen#*:}") 2>/dev/null
  else
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://$admin/readyz")" = 200 ]
  fi
}

# One request before the measurement, so the first produce (topic metadata,
# producer id) is not measured; the ceiling does the same.
warm() { # phase name
  local hargs=() k v code
  while IFS=$'\t' read -r k v; do hargs+=(-H "$k: $v"); done <"$work/sample/headers"
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time $((ready_s / 2)) "${hargs[@]}" \
    -H "Pb-Webhook-MID: bench-$runid-warmup-$1" --data-binary "@$work/sample/body" \
    "http://$listen/popbill/webhook")
  [ "$code" = 200 ] || die "warm-up delivery answered $code (see $work/server-$1.log)"
}

alive_or_die() { # phase name
  kill -0 "$server_pid" 2>/dev/null ||
    { tail -n 30 "$work/server-$1.log" >&2; die "the server exited during $1"; }
}

# Rotate a list by n: rotate n a b c...
rotate() {
  local n=$1
  shift
  local a=("$@") i
  for ((i = 0; i < ${#a[@]}; i++)); do echo "${a[$(((i + n) % ${#a[@]}))]}"; done
}

# --- phases ----------------------------------------------------------------------
closed_ceiling() { # concurrency round
  local c=$1 r=$2 out
  say "round $r, concurrency $c: ceiling (producer alone), ${seconds}s"
  out=$(timeout --foreground -k 5 $((seconds + 60)) "$tools/ceiling" --brokers "$brokers" \
    --topic "$topic" --concurrency "$c" --seconds "$seconds" \
    --mid-prefix "bench-$runid-ceiling-c$c-r$r" --fixture "$fixture" --sample taxinvoice-issue) ||
    die "the ceiling run failed"
  echo "$out" >"$work/ceiling-c$c-r$r.json"
  say "  $out"
  record closed ceiling "c$c" "$r" "$(jnum deliveries_per_sec "$out")" "$(jnum p99_ms "$out")" \
    "$(jnum errors "$out")" "" "" "" "p50 $(jnum p50_ms "$out") p99.9 $(jnum p999_ms "$out")"
}

closed_http() { # system concurrency round
  local sys=$1 c=$2 r=$3 name="c$2-$1-r$3" t0 t1 hwm w ok errs dur threads rss_goal txs
  say "round $r, concurrency $c: $sys via wrk, ${seconds}s"
  start_server "$sys" "$name"
  threads=$((c < 2 ? c : 2))
  txn_begin "$sys" "$name"
  t0=$(cpu_ticks "$server_pid")
  timeout --foreground -k 5 $((seconds + 60)) wrk -t"$threads" -c"$c" -d"${seconds}s" --timeout 10s \
    -s "$work/post.lua" "http://$listen/popbill/webhook" -- "bench-$runid-$name" "$work/sample" \
    >"$work/wrk-$name.out" 2>&1 || { cat "$work/wrk-$name.out" >&2; die "wrk failed"; }
  txn_load_ended
  sleep 0.5 # requests wrk abandoned at its deadline finish their publish
  alive_or_die "$name"
  t1=$(cpu_ticks "$server_pid")
  hwm=$(hwm_kib "$server_pid")
  rss_goal=$(rss_goal_kib "$sys")
  txs=$(txn_end "$sys" "$name")
  stop_server
  w=$(grep '^{"wrk"' "$work/wrk-$name.out" | tail -n 1)
  [ -n "$w" ] || { cat "$work/wrk-$name.out" >&2; die "no result line from wrk"; }
  say "  $w; CPU $((t1 - t0)) ticks, VmHWM $hwm KiB$(txn_words "$txs")"
  ok=$(($(jnum responses "$w") - $(jnum non200 "$w")))
  errs=$(($(jnum non200 "$w") + $(jnum connect "$w") + $(jnum read "$w") + $(jnum write "$w") + $(jnum timeout "$w")))
  dur=$(jnum duration_s "$w")
  record closed "$sys" "c$c" "$r" "$(calc "$dur > 0 ? $ok / $dur : 0")" "$(jnum p99_ms "$w")" \
    "$errs" "$(cpu_us $((t1 - t0)) "$ok")" "$hwm" "" \
    "p50 $(jnum p50_ms "$w") p99.9 $(jnum p999_ms "$w")" "$rss_goal" ${txs:+"$txs"}
}

open_http() { # system percent rate round
  local sys=$1 pct=$2 rate=$3 r=$4 name="open$2-$1-r$4" t0 t1 hwm out txs st
  say "round $r, open loop $pct% ($rate/s): $sys via loadgen, ${seconds}s"
  start_server "$sys" "$name"
  txn_begin "$sys" "$name"
  # Every bridge's stages (bridge-txn's scrape above serves both).
  case $sys in bridge-on | bridge-off) scrape "$work/metrics-$name.before" ;; esac
  t0=$(cpu_ticks "$server_pid")
  out=$(timeout --foreground -k 5 $((seconds + 60)) "$tools/loadgen" --addr "$listen" \
    --sample "$work/sample" --mid-prefix "bench-$runid-$name" --rate "$rate" --seconds "$seconds") ||
    die "loadgen failed"
  txn_load_ended
  sleep 0.5
  alive_or_die "$name"
  t1=$(cpu_ticks "$server_pid")
  hwm=$(hwm_kib "$server_pid")
  txs=$(txn_end "$sys" "$name")
  st=""
  case $sys in
    bridge-on | bridge-off) scrape "$work/metrics-$name.after" ;;
  esac
  if [ -f "$work/metrics-$name.before" ]; then
    st=$(stage_stats "$work/metrics-$name.before" "$work/metrics-$name.after")
  fi
  stop_server
  echo "$out" >"$work/loadgen-$name.json"
  printf '%s|%s|%s|%s|%s|%s\n' "$sys" "$pct%" "$r" "$(jnum p50_ms "$out")" "$(jnum errors "$out")" \
    "${st:-||||||||}" >>"$stages"
  say "  $out; CPU $((t1 - t0)) ticks, VmHWM $hwm KiB$(txn_words "$txs")$(stage_words "$st")"
  record open "$sys" "$pct%" "$r" "$(jnum achieved_rate "$out")" "$(jnum p99_ms "$out")" \
    "$(jnum errors "$out")" "$(cpu_us $((t1 - t0)) "$(jnum ok "$out")")" "$hwm" "" \
    "offered $rate/s, p50/p90/p99.9/max $(jnum p50_ms "$out")/$(jnum p90_ms "$out")/$(jnum p999_ms "$out")/$(jnum max_ms "$out") ms, $(jnum connections "$out") conns, schedule lag p99 $(jnum schedule_lag_p99_ms "$out") ms$(errors_note "$out")" "" ${txs:+"$txs"}
}

burst_http() { # system round
  local sys=$1 r=$2 name="burst-$1-r$2" t0 t1 hwm out rc=0 ok
  # One socket per delivery on the sending side, up to max_connections on
  # the bridge's: both need the descriptors.
  say "round $r, burst: $burst deliveries at once against $sys, default limits (fds: $(ulimit -n))"
  start_server "$sys" "$name"
  t0=$(cpu_ticks "$server_pid")
  out=$(timeout --foreground -k 5 600 "$tools/burst" --addr "$listen" --count "$burst" \
    --mid-prefix "bench-$runid-$name" --brokers "$brokers" --topic "$topic") || rc=$?
  t1=$(cpu_ticks "$server_pid")
  hwm=$(hwm_kib "$server_pid")
  stop_server
  echo "$out" >"$work/$name.json"
  say "  $out; CPU $((t1 - t0)) ticks, VmHWM $hwm KiB"
  [ -n "$out" ] || die "the burst printed nothing (exit $rc)"
  ok=$(jnum ok "$out")
  # Errors: undocumented answers and acknowledged deliveries missing from
  # Kafka; the shedding (503, connection closed at max_connections) is not.
  record burst "$sys" "$burst" "$r" "$(calc "$(jnum seconds "$out") > 0 ? $ok / $(jnum seconds "$out") : 0")" \
    "$(jnum p99_ms "$out")" "$(($(jnum other_status "$out") + $(jnum ok_missing "$out")))" \
    "$(cpu_us $((t1 - t0)) "$ok")" "$hwm" "" \
    "ok $ok, shed 503 $(jnum shed_503 "$out"), no answer $(jnum no_answer "$out"), OK missing in Kafka $(jnum ok_missing "$out")" \
    $((burst_rss_mib * 1024))
}

callgrind_http() { # system
  local sys=$1 name="callgrind-$1" out dump ir ok
  say "callgrind: $sys, $cg_count deliveries at concurrency $cg_conc (slow)"
  wrap=(valgrind --tool=callgrind --callgrind-out-file="$work/$name.out")
  start_server "$sys" "$name"
  # Warm-up past the first connections and allocations, then count from zero.
  timeout -k 5 600 "$tools/loadgen" --addr "$listen" --sample "$work/sample" \
    --mid-prefix "bench-$runid-$name-warm" --concurrency "$cg_conc" --count 200 --timeout-ms 60000 \
    >"$work/$name-warm.json" || die "callgrind warm-up failed"
  timeout 120 callgrind_control -z "$server_pid" >>"$work/$name.control" 2>&1 || die "callgrind_control -z failed"
  out=$(timeout -k 5 1800 "$tools/loadgen" --addr "$listen" --sample "$work/sample" \
    --mid-prefix "bench-$runid-$name" --concurrency "$cg_conc" --count "$cg_count" --timeout-ms 60000) ||
    die "loadgen failed under callgrind"
  timeout 120 callgrind_control -d "$server_pid" >>"$work/$name.control" 2>&1 || die "callgrind_control -d failed"
  dump=$(ls -t "$work/$name.out".* 2>/dev/null | head -n 1 || true)
  [ -n "$dump" ] || die "no callgrind dump for $sys (see $work/$name.control)"
  ir=$(awk '/^(summary|totals):/ {print $2; exit}' "$dump")
  stop_server
  wrap=()
  ok=$(jnum ok "$out")
  say "  $out; $ir Ir"
  record callgrind "$sys" "c${cg_conc}x$cg_count" 1 "$(jnum achieved_rate "$out")" "$(jnum p99_ms "$out")" \
    "$(jnum errors "$out")" "" "" "$(calc "$ok > 0 ? $ir / $ok : 0")" "$ir Ir over $ok deliveries"
}

# The topics exist before anything is produced (the broker does not
# auto-create them): a first bridge start creates them for the ceiling and
# the minimal bridge too.
say "creating this run's topics (one bridge start)"
start_server bridge-on setup
stop_server

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true
references=(minimal)
[ "$floor" = 0 ] || references+=(floor)
closed_systems=(ceiling "${references[@]}" "${bridges[@]}")
open_systems=("${references[@]}" "${bridges[@]}")
for ((r = 1; r <= rounds; r++)); do
  k=0
  for c in $concurrencies; do
    for sys in $(rotate $((r - 1 + k)) "${closed_systems[@]}"); do
      if [ "$sys" = ceiling ]; then closed_ceiling "$c" "$r"; else closed_http "$sys" "$c" "$r"; fi
    done
    k=$((k + 1))
  done
done

# median of the numbers given (empty when none)
median() {
  printf '%s\n' "$@" | { grep -E '^-?[0-9.eE+-]+$' || true; } | sort -g |
    awk '{a[NR] = $1} END { if (NR) printf "%.6g", NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
field() { # kind system load column(5..12): that column of every round
  awk -F'|' -v k="$1" -v s="$2" -v l="$3" -v f="$4" '$1 == k && $2 == s && $3 == l {print $f}' "$results"
}

if [ -z "$open_base" ]; then
  for c in $concurrencies; do
    m=$(median $(field closed minimal "c$c" 5))
    [ -z "$m" ] || open_base=$(calc "${open_base:-0} > $m ? ${open_base:-0} : $m")
  done
  open_base=$(calc "int(${open_base:-0})")
  open_base_note="the minimal bridge's best closed-loop median"
else
  open_base_note="BENCH_OPEN_BASE"
fi
if [ "${open_base:-0}" -gt 0 ]; then
  for ((r = 1; r <= rounds; r++)); do
    k=0
    for p in $open_pcts; do
      rate=$(calc "int($open_base * $p / 100 + 0.5)")
      for sys in $(rotate $((r - 1 + k)) "${open_systems[@]}"); do
        open_http "$sys" "$p" "$rate" "$r"
      done
      k=$((k + 1))
    done
  done
else
  say "no open-loop phase: no base rate (the minimal bridge was not measured; BENCH_OPEN_BASE sets one)"
fi

if [ "$burst" -gt 0 ]; then
  for ((r = 1; r <= rounds; r++)); do
    for sys in $(rotate $((r - 1)) "${bridges[@]}"); do burst_http "$sys" "$r"; done
  done
fi

if [ "$callgrind" = 1 ]; then
  ready_s=600
  stop_wait=600
  # Statistics every 2 s in both, the bridge's default: librdkafka's
  # statistics cost by the second, not by the delivery, and valgrind makes
  # each delivery take ~50 times as long, so a bridge reporting five times
  # as often as the minimal bridge (10 s) was charged ~4k Ir a delivery for
  # it (HDR histogram walks, the JSON written and parsed) that natively
  # are nothing per delivery.
  minimal_extra=(--message-timeout-ms 30000 --statistics-interval-ms 2000)
  bridge_extra=(POPBILL_BRIDGE_KAFKA__MESSAGE_TIMEOUT=30s POPBILL_BRIDGE_SERVER__REQUEST_TIMEOUT=60s
    POPBILL_BRIDGE_KAFKA__STATISTICS_INTERVAL=2s)
  # kafka.transactions.timeout must exceed the message timeout by 1 s.
  [ "$txn_known" = 0 ] || bridge_extra+=(POPBILL_BRIDGE_KAFKA__TRANSACTIONS__TIMEOUT=60s)
  for sys in "${open_systems[@]}"; do callgrind_http "$sys"; done
fi

# --- issue #20: the transactional bridge's three goals, in words -------------------
# The goals judged over the rows (each goal holds only if it holds in every
# row it names), with the figures and the distance to the minimal bridge;
# then the group commit per phase, and what transactions cost against the
# same bridge with them off (bridge-on: the same detection).
txn_summary() {
  printf '# transactional bridge (issue #20): bridge-txn, kafka.transactions on (the default), detection on%s\n' \
    "${BENCH_TXN_ENV:+, BENCH_TXN_ENV=$BENCH_TXN_ENV}"
  awk -F'|' '
    { k = $1 " " $3 }
    $2 == "minimal" { md[k] = $5; mp[k] = $6 }
    $2 == "bridge-on" { od[k] = $5; op[k] = $6 }
    $2 == "bridge-txn" { if (!(k in td)) keys[++n] = k; td[k] = $5; tp[k] = $6; te[k] = $7; gc[k] = $13 != "" ? sprintf("%s commits/s, %s deliveries/txn; txn mean %s ms (%s%% over 10 ms), publish mean %s ms; %s aborted/unsettled", $13, $14, $15, $16, $17, $18) : "no transaction metrics" }
    # A goal fails on any row that fails it; it passes only if all its rows were measured.
    function line(goal, ok, seen, figures) {
      printf "#   %-58s %s  (%s)\n", goal ":", !ok ? "FAIL" : seen ? "PASS" : "NOT MEASURED", figures
    }
    END {
      # 1. and 2.: closed loop, c64 and c256
      ok1 = ok2 = seen = 1; f1 = f2 = ""
      for (i = 1; i <= 2; i++) {
        l = i == 1 ? "c64" : "c256"; k = "closed " l
        if (!(k in td) || !(k in md) || md[k] <= 0) { seen = 0; continue }
        ok1 = ok1 && td[k] >= 0.90 * md[k]
        ok2 = ok2 && tp[k] <= mp[k] + 10
        f1 = f1 sprintf("%s%s %.0f / %.0f dl/s = %.3f x", f1 == "" ? "" : "; ", l, td[k], md[k], td[k] / md[k])
        f2 = f2 sprintf("%s%s %.2f ms = minimal %.2f %+.2f", f2 == "" ? "" : "; ", l, tp[k], mp[k], tp[k] - mp[k])
      }
      line("closed-loop dl/s >= 0.90 x minimal at c64 and c256", ok1, seen, f1)
      line("closed-loop p99 <= minimal + 10 ms at c64 and c256", ok2, seen, f2)
      # 3.: open loop at 50 %
      k = "open 50%"
      seen = (k in td) && (k in md)
      line("open loop at 50%: p99 <= minimal + 10 ms, no errors", tp[k] <= mp[k] + 10 && te[k] == 0, seen,
        seen ? sprintf("p99 %.2f ms = minimal %.2f %+.2f; %d errors", tp[k], mp[k], tp[k] - mp[k], te[k]) : "")
      # The group commit, and transactions on against off, per phase (in
      # the order of the table).
      for (i = 1; i <= n; i++) {
        k = keys[i]
        if (k ~ /^(burst|callgrind)/) continue
        printf "#   group commit, %-12s %s\n", k ":", gc[k]
      }
      for (i = 1; i <= n; i++) {
        k = keys[i]
        if (!(k in od) || od[k] <= 0 || k ~ /^(burst|callgrind)/) continue
        printf "#   against transactions off (bridge-on), %-12s %.3f x dl/s, p99 %+.2f ms\n", k ":", td[k] / od[k], tp[k] - op[k]
      }
    }' "$agg"
}

# --- issue #25: the bridges against the record's floor ------------------------------
# What the floor costs beside the minimal bridge is the record format's
# price; what a bridge costs beside the floor is its own (detection, limits,
# metrics, the log line, ...).
floor_summary() {
  printf '# the record'"'"'s floor (issue #25): the minimal bridge writing the record popbill-bridge writes; a goal its\n'
  printf '#   rows mark MISS is missed by the record format itself. Each bridge against the floor (x dl/s, p99, x CPU or Ir):\n'
  awk -F'|' '
    $2 == "floor" { fd[$1, $3] = $5; fp[$1, $3] = $6; fc[$1, $3] = $8; fi[$1, $3] = $10 }
    $2 ~ /^bridge-/ { rows[++n] = $0 }
    END {
      for (i = 1; i <= n; i++) {
        split(rows[i], f, "|"); k = f[1] SUBSEP f[3]
        if (!(k in fd) || f[1] == "burst") continue
        if (f[1] == "callgrind")
          w = (fi[k] > 0 && f[10] != "") ? sprintf("Ir %.2f x (%.0fk against %.0fk)", f[10] / fi[k], f[10] / 1000, fi[k] / 1000) : "-"
        else
          w = sprintf("%.2f x dl/s, p99 %+.2f ms, CPU %s", fd[k] > 0 ? f[5] / fd[k] : 0, f[6] - fp[k],
            (fc[k] > 0 && f[8] != "") ? sprintf("%.2f x (%.1f against %.1f us)", f[8] / fc[k], f[8], fc[k]) : "-")
        printf "#   %-10s %-9s %-10s %s\n", f[1], f[3], f[2], w
      }
    }' "$agg"
}

# --- the table ---------------------------------------------------------------------
# One line per row, the medians over the rounds (VmHWM: the max), in a fixed order.
agg="$work/rows.psv"
: >"$agg"
# Columns 1-12 as in results.psv; 13-18, the group commit's (bridge-txn
# only, else empty): medians, the aborted/unsettled transactions summed.
row() { # kind system load
  local n
  n=$(field "$1" "$2" "$3" 5 | wc -l)
  [ "$n" -gt 0 ] || return 0
  printf '%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s\n' "$1" "$2" "$3" "$n" \
    "$(median $(field "$1" "$2" "$3" 5))" "$(median $(field "$1" "$2" "$3" 6))" \
    "$(field "$1" "$2" "$3" 7 | awk '{s += $1} END {print s + 0}')" \
    "$(median $(field "$1" "$2" "$3" 8))" \
    "$(field "$1" "$2" "$3" 9 | sort -g | tail -n 1)" \
    "$(median $(field "$1" "$2" "$3" 10))" \
    "$(field "$1" "$2" "$3" 11 | tail -n 1)" \
    "$(field "$1" "$2" "$3" 12 | sort -g | tail -n 1)" \
    "$(median $(field "$1" "$2" "$3" 13))" "$(median $(field "$1" "$2" "$3" 14))" \
    "$(median $(field "$1" "$2" "$3" 15))" "$(median $(field "$1" "$2" "$3" 16))" \
    "$(median $(field "$1" "$2" "$3" 17))" \
    "$(field "$1" "$2" "$3" 18 | awk '$1 != "" {s += $1; n++} END {if (n) print s}')" >>"$agg"
}
for c in $concurrencies; do for s in "${closed_systems[@]}"; do row closed "$s" "c$c"; done; done
for p in $open_pcts; do for s in "${open_systems[@]}"; do row open "$s" "$p%"; done; done
for s in "${bridges[@]}"; do row burst "$s" "$burst"; done
for s in "${open_systems[@]}"; do row callgrind "$s" "c${cg_conc}x$cg_count"; done

gcs_at_end=$(broker_full_gcs)
{
  printf '# popbill-bridge bench, %s, run %s\n' "$started_at" "$runid"
  printf '# commit %s\n' "$commit"
  printf '# machine: %s cores (nproc), %s; load average at start %s\n' "$(nproc)" \
    "$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)" "$load_at_start"
  printf '# broker: Apache Kafka %s at %s (%s); client rdkafka-sys %s\n' \
    "$broker_version" "$brokers" "$broker_note" "$rdkafka_sys"
  if [ -n "$gcs_at_start" ] && [ -n "$gcs_at_end" ]; then
    read -r gc0 gct0 <<<"$gcs_at_start"
    read -r gc1 gct1 <<<"$gcs_at_end"
    printf '# broker heap: %s full collections (%s s) during the run' "$((gc1 - gc0))" "$(calc "$gct1 - $gct0")"
    if [ "$gc1" -eq "$gc0" ]; then
      echo
    else
      echo "; their pauses are in the figures: restart the broker (scripts/kafka.sh stop, then start) and run again"
    fi
  fi
  printf '# bridges at log.level %s%s\n' "$log_level" \
    "$([ "$log_level" = info ] && echo ' (as shipped: one line per delivery)' || echo ' (not as shipped)')"
  printf '# %ss a phase, %s round(s), order rotated; ' "$seconds" "$rounds"
  if [ -n "${open_pcts// /}" ] && [ "${open_base:-0}" -gt 0 ]; then
    printf 'open loop at %s%% of %s dl/s (%s)\n' "$(echo $open_pcts | sed 's/ /%, /g')" "$open_base" "$open_base_note"
  else
    printf 'no open loop\n'
  fi
  # bridge-txn rows are judged by issue #20's goals (tverdict, counted
  # apart), the other bridges by issue #12's.
  awk -F'|' -v goal_c=" $(printf 'c%s ' 64 256)" '
    function num(x) { return x == "" ? "-" : x }
    # The floor is judged by the same goals, not counted: a goal it misses,
    # the record format alone misses.
    function verdict(ok) {
      if (sys == "floor") return ok ? "pass" : "MISS"
      npass += ok; nfail += !ok; return ok ? "PASS" : "FAIL"
    }
    function tverdict(ok) { tpass += ok; tfail += !ok; return ok ? "PASS" : "FAIL" }
    NR == FNR { if ($2 == "minimal") { mdps[$1, $3] = $5; mp99[$1, $3] = $6; mcpu[$1, $3] = $8; mir[$1, $3] = $10 }; next }
    FNR == 1 {
      printf "%-9s %-10s %-9s | %9s %5s | %8s %7s | %-10s %5s | %7s | %6s | %-36s | %s\n",
        "phase", "system", "load", "dl/s", "x min", "p99 ms", "d p99", "CPU/dl", "x min", "RSS MiB", "errors", "goals", "note"
    }
    {
      kind = $1; sys = $2; load = $3; dps = $5; p99 = $6; err = $7; cpu = $8; hwm = $9; ir = $10; note = $11; rssg = $12
      if ($13 != "")
        note = note sprintf("; txn %s commits/s, %s dl/txn, mean %s ms (%s%% > 10 ms), publish mean %s ms, %s aborted/unsettled",
          $13, $14, $15, $16, $17, $18)
      key = kind SUBSEP load
      ref = (key in mdps)
      xdps = (ref && mdps[key] > 0 && dps != "") ? sprintf("%.2f", dps / mdps[key]) : "-"
      dp99 = (ref && p99 != "") ? sprintf("%+.2f", p99 - mp99[key]) : "-"
      if (kind == "callgrind") {
        cpus = ir == "" ? "-" : sprintf("%.0fk Ir", ir / 1000)
        xcpu = (ref && mir[key] > 0 && ir != "") ? sprintf("%.2f", ir / mir[key]) : "-"
        dpss = "-"; p99s = "-"; xdps = "-"; dp99 = "-"
      } else {
        cpus = cpu == "" ? "-" : sprintf("%.1f us", cpu)
        xcpu = (ref && mcpu[key] > 0 && cpu != "") ? sprintf("%.2f", cpu / mcpu[key]) : "-"
        dpss = sprintf("%.0f", dps); p99s = sprintf("%.2f", p99)
      }
      g = ""
      if (sys == "ceiling" || sys == "minimal") {
        g = err > 0 ? "reference, HAS ERRORS" : "reference"
      } else if (sys == "bridge-txn" && kind == "closed" && ref && index(goal_c, " " load " ")) {
        g = "tput " tverdict(dps >= 0.90 * mdps[key]) " p99 " tverdict(p99 <= mp99[key] + 10)
      } else if (sys == "bridge-txn" && kind == "open" && load == "50%" && ref) {
        g = "p99 " tverdict(p99 <= mp99[key] + 10) " err " tverdict(err == 0)
      } else if (sys == "bridge-txn" && kind != "burst") {
        g = "(no goal here)"
      } else if (kind == "closed" && ref && index(goal_c, " " load " ")) {
        g = "tput " verdict(dps >= 0.97 * mdps[key]) " p99 " verdict(p99 <= mp99[key] + 0.5) \
            " cpu " verdict(cpu <= 1.25 * mcpu[key])
        if (rssg != "") g = g " mem " verdict(hwm <= rssg)
      } else if (kind == "open" && load == "50%" && ref) {
        g = "p99 " verdict(p99 <= mp99[key] + 1.0) " err " verdict(err == 0)
      } else if (kind == "open" && load == "90%") {
        g = "err " verdict(err == 0)
      } else if (kind == "callgrind" && ref) {
        # Issue #25 set 1.6 x (#12 had 1.25 x): the dozen record headers
        # alone cost librdkafka ~8k Ir that the bare body of the minimal
        # bridge does not (docs/performance.md).
        g = "Ir " verdict(ir <= 1.6 * mir[key])
      } else if (kind == "burst") {
        g = "answers " verdict(err == 0)
        if (rssg != "") g = g " mem " verdict(hwm <= rssg)
      } else {
        g = "(no goal here)"
      }
      if (sys == "floor")
        g = g == "(no goal here)" ? (err > 0 ? "floor, HAS ERRORS" : "floor") : "floor: " g
      printf "%-9s %-10s %-9s | %9s %5s | %8s %7s | %-10s %5s | %7s | %6s | %-36s | %s\n",
        kind, sys, load, dpss, xdps, p99s, dp99, cpus, xcpu,
        hwm == "" ? "-" : sprintf("%.1f", hwm / 1024), err, g, note (rssg != "" ? sprintf("; mem goal %.1f MiB", rssg / 1024) : "")
    }
    END {
      printf "# goals: %d PASS, %d FAIL\n", npass, nfail
      if (tpass + tfail) printf "# goals of bridge-txn (issue #20): %d PASS, %d FAIL\n", tpass, tfail
    }
  ' "$agg" "$agg"
  printf '# goals (docs/performance.md): closed loop at c64, c256: dl/s >= 0.97 x minimal, p99 <= minimal + 0.5 ms,\n'
  printf '#   CPU/dl <= 1.25 x minimal; open loop: p99 <= minimal + 1 ms at 50%%, no errors at 50%% and 90%%;\n'
  printf '#   callgrind: Ir/dl <= 1.6 x minimal; burst: only 200, 503 or closed connections, every OK in Kafka;\n'
  printf '#   mem: peak RSS <= %s MiB in the closed loop (detection on: + %s B a remembered event), <= %s MiB through the burst\n' \
    "$steady_rss_mib" "$remembered_bytes" "$burst_rss_mib"
  if [ "$txn" = 1 ]; then
    printf '#   bridge-txn (issue #20): closed loop at c64, c256: dl/s >= 0.90 x minimal, p99 <= minimal + 10 ms;\n'
    printf '#   open loop at 50%%: p99 <= minimal + 10 ms, no errors; burst: answers as above\n'
    txn_summary
  fi
  if [ "$floor" = 1 ]; then
    floor_summary
  fi
  if [ -s "$stages" ]; then
    printf '# where the time goes, open loop (issue #25, item 4): each bridge'"'"'s own histograms over the phase, means in ms\n'
    printf '#   (p99 as the bucket it falls in); report = handed to the producer until the request resumes with Kafka'"'"'s\n'
    printf '#   verdict, with librdkafka'"'"'s queue wait and round-trip (last statistics window); after = the answer and log line\n'
    awk -F'|' '
      BEGIN { printf "%-10s %-5s %-5s | %11s | %-20s | %-18s | %-34s | %s\n", "system", "load", "round", "loadgen p50", "request mean (p99)", "handover (p99)", "report (p99); queue, rtt", "after report" }
      {
        if ($6 == "" || $8 == "") {
          printf "%-10s %-5s %-5s | %11s | %s\n", $1, $2, $3, $4, "(no stage metrics: " ($1 == "minimal" || $1 == "floor" ? "a reference" : "an older bridge") ")"
          next
        }
        printf "%-10s %-5s %-5s | %11s | %-20s | %-18s | %-34s | %s\n", $1, $2, $3, $4,
          $6 " (" $7 ")", $8 " (" $9 ")", $10 " (" $11 "); " $13 ", " $14, ($5 > 0 ? "- (" $5 " errors)" : $12)
      }' "$stages"
  fi
} >"$work/table.txt"
cat "$work/table.txt"
