#!/usr/bin/env bash
# Kafka as it runs in production, on one machine: a three-broker Apache Kafka
# 4.x cluster (KRaft) with a dedicated controller, replication factor 3,
# min.insync.replicas=2 and no unclean leader election, for the cluster
# fault table (CHAOS_CLUSTER=1 scripts/chaos.sh) and by hand.
#
#   scripts/kafka-cluster.sh start       start (or reuse) the cluster; prints the bootstrap list
#   scripts/kafka-cluster.sh stop        stop everything, delete its data, remove netns and proxy
#   scripts/kafka-cluster.sh status      one line per node; exit 0 when all answer
#   scripts/kafka-cluster.sh bootstrap   print the bootstrap list (the proxies' addresses)
#   scripts/kafka-cluster.sh start N     start broker N (1-3) again on its data
#   scripts/kafka-cluster.sh stop N      SIGTERM broker N (controlled shutdown), data kept
#   scripts/kafka-cluster.sh kill N      SIGKILL broker N, data kept
#   scripts/kafka-cluster.sh pause N | resume N    SIGSTOP / SIGCONT broker N
#   scripts/kafka-cluster.sh env         the layout, as shell assignments (scripts/netfault.sh reads it)
#   scripts/kafka-cluster.sh acls ARGS   Kafka's ACL tool as the admin (secured only; see below)
#   (scripts/kafka.sh start --brokers 3 is the same as scripts/kafka-cluster.sh start)
#
# Layout. Node 0 is the KRaft controller, nodes 1-3 are brokers, each a small
# JVM (KAFKA_HEAP, -Xms64m -Xmx256m) on the jars scripts/kafka.sh fetches.
# As root (and unless KAFKA_CLUSTER_NETNS=none) the four nodes run in a
# network namespace of their own (pbb-kafka), joined to this one by a veth
# pair (pbbk0 10.213.77.1 here, pbbk1 10.213.77.2 there), so the link between
# clients and the cluster can be cut or capped (scripts/netfault.sh) while the
# brokers keep talking to each other and to the controller on the
# namespace's own loopback. Every broker has two listeners: INTERNAL
# (127.0.0.1:2918N, inter-broker replication) and CLIENT (10.213.77.2:2919N),
# and advertises CLIENT as 127.0.0.1:2909N: a Toxiproxy (installed from the Go
# module proxy when missing) listening there forwards to the broker, so every
# client connection, bootstrap and after, passes through a proxy that can add
# latency, stall or reset it. Without a namespace the same runs on loopback
# (partition and bandwidth faults are then unavailable).
#
# Ports are below Linux's ephemeral range (32768-60999), so a client socket in
# TIME_WAIT can never block a bind: 29090 (proxy API), 29091-29093 (proxies),
# 29180 (controller), 29181-29183, 29191-29193 (brokers); KAFKA_CLUSTER_PORT_BASE
# (29000) moves them all (27000: 27090, 27091-27093, ...). State in
# ${TMPDIR:-/tmp}/popbill-kafka-cluster. The shared test broker
# (scripts/kafka.sh, 19092) is never touched.
#
# Secured (KAFKA_CLUSTER_SECURED=1 at the first start; kept with the data),
# as scripts/kafka-secured.sh is for one broker: clients connect with
# SASL_SSL and SCRAM-SHA-512 (users admin and bridge), the brokers and the
# controller talk mutual TLS, and the StandardAuthorizer (brokers and
# controller) allows nothing without an ACL (super users: User:admin, and
# User:broker, the nodes' certificate). The throwaway CA, certificates
# (subjectAltName 127.0.0.1, 10.213.77.2, localhost) and passwords are made
# at the first start in $state/tls (ca.pem, bridge.password, admin.properties,
# client.pem/client.key); `acls` runs AclCommand there as the admin.
# Environment: KAFKA_HEAP, KAFKA_CLUSTER_STATE, KAFKA_CLUSTER_NETNS
# (pbb-kafka; "none" = loopback), KAFKA_CLUSTER_PORT_BASE, KAFKA_CLUSTER_SECURED,
# KAFKA_CLUSTER_SESSION_MS (the controller's broker.session.timeout.ms,
# 9000), POPBILL_KAFKA_CACHE, JAVA.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib/process.sh
. "$here/lib/process.sh"
# shellcheck source=lib/kafka.sh
. "$here/lib/kafka.sh"
version=$kafka_version
cachebase=$kafka_cachebase
state="${KAFKA_CLUSTER_STATE:-${TMPDIR:-/tmp}/popbill-kafka-cluster}"
heap="${KAFKA_HEAP:--Xms64m -Xmx256m}"
session_ms="${KAFKA_CLUSTER_SESSION_MS:-9000}"
java="${JAVA:-java}"
toxiproxy_version=v2.5.0
toxiproxy="$cachebase/tools/toxiproxy-server-$toxiproxy_version"

port_base="${KAFKA_CLUSTER_PORT_BASE:-29000}"
# Like the namespace below: decided at the first start, kept with the data.
if [ -f "$state/port_base" ]; then port_base=$(cat "$state/port_base"); fi
api_port=$((port_base + 90))
proxy_base=$((port_base + 90)) # proxy of broker N: 29090+N
ctl_port=$((port_base + 180))
int_base=$((port_base + 180)) # INTERNAL listener of broker N: 29180+N
cli_base=$((port_base + 190)) # CLIENT listener of broker N: 29190+N
brokers=(1 2 3)

ns="${KAFKA_CLUSTER_NETNS:-pbb-kafka}"
if [ "$ns" != none ] && [ "$(id -u)" != 0 ]; then
  ns=none
fi
# Where this cluster runs was decided when it started (a machine that
# refuses namespaces falls back to loopback): that decision holds.
if [ -f "$state/netns" ]; then ns=$(cat "$state/netns"); fi
secured="${KAFKA_CLUSTER_SECURED:-0}"
if [ -f "$state/secured" ]; then secured=$(cat "$state/secured"); fi
tls="$state/tls"
veth_out=pbbk0 veth_in=pbbk1
ip_out=10.213.77.1 ip_in=10.213.77.2
set_kip() { if [ "$ns" = none ]; then kip=127.0.0.1; else kip=$ip_in; fi; }
set_kip

bootstrap="127.0.0.1:$((proxy_base + 1)),127.0.0.1:$((proxy_base + 2)),127.0.0.1:$((proxy_base + 3))"

say() { printf 'kafka-cluster.sh: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

# Runs a command inside the cluster's namespace (or here, on loopback).
in_ns() {
  if [ "$ns" = none ]; then "$@"; else ip netns exec "$ns" "$@"; fi
}

need_tools() {
  if [ "$ns" != none ] && ! command -v ip >/dev/null 2>&1; then
    say "installing iproute2 (ip netns, tc)"
    { apt-get install -y -qq iproute2 || { apt-get update -qq && apt-get install -y -qq iproute2; }; } >/dev/null
  fi
  if ! command -v curl >/dev/null 2>&1; then
    say "installing curl (the proxy's API)"
    { apt-get install -y -qq curl || { apt-get update -qq && apt-get install -y -qq curl; }; } >/dev/null
  fi
  if [ ! -x "$toxiproxy" ]; then
    # Toxiproxy: a TCP proxy whose faults ("toxics") are set over HTTP. Built
    # from source by the Go toolchain, once, into the cache.
    command -v go >/dev/null 2>&1 || die "Go is needed to install Toxiproxy"
    say "installing Toxiproxy $toxiproxy_version from the Go module proxy (first run only)"
    local gobin
    gobin=$(mktemp -d)
    GOFLAGS=-mod=mod GOBIN="$gobin" go install \
      "github.com/Shopify/toxiproxy/v2/cmd/server@$toxiproxy_version" >&2 ||
      { rm -rf "$gobin"; die "go install toxiproxy failed"; }
    mkdir -p "$(dirname "$toxiproxy")"
    mv "$gobin/server" "$toxiproxy"
    rm -rf "$gobin"
  fi
}

# pid of node N (0 = controller) or "proxy", when it runs.
pid() { pidfile_pid "$state/$1.pid"; }

# Node N answers a real Kafka request (ApiVersions v0) on its inter-broker
# (or controller) port within 3 s, asked from inside its namespace: true
# during a client-side partition, false while it is frozen.
answers() {
  local port
  if [ "$1" = 0 ]; then port=$ctl_port; else port=$((int_base + $1)); fi
  if [ "$secured" = 1 ]; then kafka_answers_tls "$port" "$tls" in_ns; else kafka_answers "$port" in_ns; fi
}

# Started since the last launch: the log is kept across restarts (the chaos
# driver counts the brokers' refusals in it), so only its new part counts.
started() {
  local from
  from=$(cat "$state/node-$1/log.start" 2>/dev/null || echo 0)
  # grep reads to the end (no -q): quitting at the first match would kill
  # tail with SIGPIPE once the new part outgrows a pipe's buffer, and under
  # pipefail a started broker would then never count as started.
  tail -c +$((from + 1)) "$state/node-$1/kafka.log" 2>/dev/null | grep "Kafka Server started" >/dev/null
}

# The namespace and its veth pair: created when missing, checked when there.
netns_up() {
  [ "$ns" = none ] && return 0
  if ! ip netns exec "$ns" ip link show "$veth_in" >/dev/null 2>&1; then
    # Half-made (an interrupted start): make it again from nothing.
    netns_down
    if ! ip netns add "$ns" 2>/dev/null; then
      say "cannot create a network namespace here: the cluster runs on loopback (no partition or bandwidth faults)"
      ns=none
      set_kip
      return 0
    fi
    ip link add "$veth_out" type veth peer name "$veth_in"
    ip link set "$veth_in" netns "$ns"
    ip addr add "$ip_out/30" dev "$veth_out"
    ip link set "$veth_out" up
    ip netns exec "$ns" ip addr add "$ip_in/30" dev "$veth_in"
    ip netns exec "$ns" ip link set "$veth_in" up
    ip netns exec "$ns" ip link set lo up
  fi
  # With the link down (a partition) the connected route goes, and the
  # cluster's address would be sent to the default route: this fallback
  # keeps it on the machine (connects fail at once, open connections hang).
  ip route replace blackhole "${ip_out%.*}.0/30" metric 4000
  # A partition or cap left behind by an interrupted fault run is healed here.
  ip link set "$veth_out" up
  ip netns exec "$ns" ip link set "$veth_in" up
  tc qdisc del dev "$veth_out" root 2>/dev/null || true
  ip netns exec "$ns" tc qdisc del dev "$veth_in" root 2>/dev/null || true
}

netns_down() {
  [ "$ns" = none ] && return 0
  ip link del "$veth_out" 2>/dev/null || true
  ip route del blackhole "${ip_out%.*}.0/30" metric 4000 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
}

# What production runs: three copies, two must confirm, never elect a replica
# that is out of sync.
topic_defaults() {
  cat <<'PROPS'
default.replication.factor=3
min.insync.replicas=2
unclean.leader.election.enable=false
num.partitions=3
PROPS
}

# The security protocol of a listener: $1 when secured, PLAINTEXT otherwise.
proto() { if [ "$secured" = 1 ]; then echo "$1"; else echo PLAINTEXT; fi; }

# Every node, secured: TLS with the throwaway CA, mutual on the nodes' own
# listeners; a certificate's principal is its CN; nothing without an ACL.
security_props() {
  [ "$secured" = 1 ] || return 0
  cat <<PROPS
ssl.keystore.type=PEM
ssl.keystore.location=$tls/broker.pem
ssl.truststore.type=PEM
ssl.truststore.location=$tls/ca.pem
ssl.principal.mapping.rules=RULE:^CN=([^,]+).*\$/\$1/,DEFAULT
listener.name.internal.ssl.client.auth=required
listener.name.controller.ssl.client.auth=required
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:admin;User:broker
PROPS
}

# The brokers' client listener, secured: SCRAM-SHA-512 over TLS.
client_sasl_props() {
  [ "$secured" = 1 ] || return 0
  cat <<'PROPS'
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.client.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
PROPS
}

# Written at every start, so a restart on old data runs with today's settings.
write_config() {
  local n=$1 dir="$state/node-$1"
  mkdir -p "$dir/data"
  write_log4j "$dir"
  if [ "$n" = 0 ]; then
    cat >"$dir/server.properties" <<PROPS
process.roles=controller
node.id=0
controller.quorum.bootstrap.servers=127.0.0.1:$ctl_port
listeners=CONTROLLER://127.0.0.1:$ctl_port
advertised.listeners=CONTROLLER://127.0.0.1:$ctl_port
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:$(proto SSL)
log.dirs=$dir/data
$(security_props)
num.network.threads=1
num.io.threads=2
# In KRaft the controller creates topics: the defaults for new topics must be
# set here (on the brokers alone they are silently not used).
$(topic_defaults)
# A broker that stops heartbeating is fenced (its partitions get new leaders,
# it leaves every ISR) after broker.session.timeout.ms: production's 9 s
# unless KAFKA_CLUSTER_SESSION_MS says otherwise.
broker.session.timeout.ms=$session_ms
PROPS
    return 0
  fi
  cat >"$dir/server.properties" <<PROPS
process.roles=broker
node.id=$n
controller.quorum.bootstrap.servers=127.0.0.1:$ctl_port
controller.listener.names=CONTROLLER
listeners=INTERNAL://127.0.0.1:$((int_base + n)),CLIENT://$kip:$((cli_base + n))
advertised.listeners=INTERNAL://127.0.0.1:$((int_base + n)),CLIENT://127.0.0.1:$((proxy_base + n))
listener.security.protocol.map=INTERNAL:$(proto SSL),CLIENT:$(proto SASL_SSL),CONTROLLER:$(proto SSL)
inter.broker.listener.name=INTERNAL
log.dirs=$dir/data
$(security_props)
$(client_sasl_props)
$(topic_defaults)
offsets.topic.replication.factor=3
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
# The bridge writes in transactions; a writer that dies mid-transaction has
# it aborted at its timeout, looked for every second (default 10 s).
transaction.abort.timed.out.transaction.cleanup.interval.ms=1000
share.coordinator.state.topic.replication.factor=3
share.coordinator.state.topic.min.isr=2
group.initial.rebalance.delay.ms=0
# The bridge creates its own topics; so must every test.
auto.create.topics.enable=false
# Small: 2 cores for four JVMs, two bridges and the load.
num.network.threads=2
num.io.threads=2
num.replica.fetchers=1
num.recovery.threads.per.data.dir=1
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=8388608
log.segment.bytes=67108864
broker.heartbeat.interval.ms=$((session_ms / 4 < 2000 ? session_ms / 4 : 2000))
PROPS
}

format_node() {
  local n=$1 dir="$state/node-$1" how=()
  [ -f "$dir/data/meta.properties" ] && return 0
  if [ "$secured" = 1 ]; then
    how+=(--add-scram "SCRAM-SHA-512=[name=admin,password=$(cat "$tls/admin.password")]"
      --add-scram "SCRAM-SHA-512=[name=bridge,password=$(cat "$tls/bridge.password")]")
  fi
  rm -rf "$dir/data"
  mkdir -p "$dir/data"
  if [ "$n" = 0 ]; then how+=(--standalone); fi
  run_java "$dir" kafka.tools.StorageTool format "${how[@]}" -t "$(cat "$state/cluster.id")" \
    -c "$dir/server.properties" >"$dir/format.log" 2>&1 ||
    { say "formatting node $n failed:"; cat "$dir/format.log" >&2; return 1; }
}

# Starts node N in the background (the pid file names its JVM).
launch() {
  local n=$1 dir="$state/node-$1"
  write_config "$n"
  touch "$dir/kafka.log"
  stat -c %s "$dir/kafka.log" >"$dir/log.start"
  if [ "$ns" = none ]; then
    nohup "$0" __run "$n" >>"$dir/stdout.log" 2>&1 &
  else
    # ip netns exec replaces itself with the command: $! is the JVM.
    nohup ip netns exec "$ns" "$0" __run "$n" >>"$dir/stdout.log" 2>&1 &
  fi
  echo $! >"$state/$n.pid"
}

wait_started() {
  local n=$1 deadline=$((SECONDS + ${2:-120}))
  until answers "$n" && { [ "$n" = 0 ] || started "$n"; }; do
    pid "$n" >/dev/null || { say "node $n exited while starting:"; tail -n 30 "$state/node-$n/kafka.log" "$state/node-$n/stdout.log" >&2; return 1; }
    [ $SECONDS -lt "$deadline" ] || { say "node $n did not start in time:"; tail -n 30 "$state/node-$n/kafka.log" >&2; return 1; }
    sleep 0.5
  done
}

proxy_up() {
  if pid proxy >/dev/null; then return 0; fi
  local n cfg="$state/toxiproxy.json" sep=""
  {
    echo "["
    for n in "${brokers[@]}"; do
      printf '%s{"name":"kafka-%s","listen":"127.0.0.1:%s","upstream":"%s:%s","enabled":true}\n' \
        "$sep" "$n" $((proxy_base + n)) "$kip" $((cli_base + n))
      sep=","
    done
    echo "]"
  } >"$cfg"
  nohup "$toxiproxy" -host 127.0.0.1 -port "$api_port" -config "$cfg" >>"$state/toxiproxy.log" 2>&1 &
  echo $! >"$state/proxy.pid"
  local i
  for ((i = 0; i < 40; i++)); do
    if [ "$(curl -fsS "http://127.0.0.1:$api_port/proxies" 2>/dev/null | grep -o '"kafka-[0-9]"' | sort -u | wc -l)" = 3 ]; then
      return 0
    fi
    sleep 0.25
  done
  say "Toxiproxy did not come up:"; tail -n 20 "$state/toxiproxy.log" >&2
  return 1
}

start_all() {
  need_tools
  "$here/kafka.sh" fetch
  mkdir -p "$state"
  netns_up
  echo "$ns" >"$state/netns"
  echo "$secured" >"$state/secured"
  echo "$port_base" >"$state/port_base"
  if [ "$secured" = 1 ] && [ ! -f "$tls/ca.pem" ]; then
    mkdir -p "$tls"
    chmod 700 "$tls"
    kafka_make_secrets "$tls" "DNS:localhost,IP:127.0.0.1,IP:$ip_in"
  fi
  local all_up=1 n
  for n in 0 "${brokers[@]}"; do
    pid "$n" >/dev/null && answers "$n" || all_up=0
  done
  if [ $all_up = 1 ] && pid proxy >/dev/null; then
    say "reusing the cluster already running"
    echo "$bootstrap"
    return 0
  fi
  proxy_up
  [ -f "$state/cluster.id" ] ||
    run_java "$state" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1 >"$state/cluster.id"
  # Formatted in parallel (a JVM each); waited for by pid, since the proxy
  # also runs in the background of this shell.
  local jobs=()
  for n in 0 "${brokers[@]}"; do
    if ! pid "$n" >/dev/null; then
      write_config "$n"
      format_node "$n" &
      jobs+=($!)
    fi
  done
  for n in "${jobs[@]}"; do wait "$n" || true; done
  for n in 0 "${brokers[@]}"; do
    [ -f "$state/node-$n/data/meta.properties" ] || die "node $n was not formatted"
  done
  pid 0 >/dev/null || launch 0
  wait_started 0
  for n in "${brokers[@]}"; do
    pid "$n" >/dev/null || launch "$n"
  done
  for n in "${brokers[@]}"; do
    wait_started "$n"
  done
  say "Apache Kafka $version: controller + 3 brokers up (namespace: $ns$([ "$secured" = 1 ] && echo ", secured: SASL_SSL, CA and passwords in $tls")), clients via Toxiproxy at $bootstrap"
  echo "$bootstrap"
}

start_one() {
  local n=$1
  if pid "$n" >/dev/null; then
    kill -CONT "$(pid "$n")" 2>/dev/null || true
    say "broker $n already runs"
    return 0
  fi
  launch "$n"
  wait_started "$n"
  say "broker $n up"
}

stop_one() {
  local n=$1 p
  if p=$(pid "$n"); then stop_pid "$p" 120 "node $n"; fi
  rm -f "$state/$n.pid"
}

kill_one() {
  local n=$1 p
  if p=$(pid "$n"); then kill_pid "$p"; fi
  rm -f "$state/$n.pid"
}

stop_all() {
  local n
  # The data goes too, so no graceful shutdown: brokers killed in parallel,
  # then the controller, the proxy and the namespace.
  local jobs=()
  for n in "${brokers[@]}"; do
    kill_one "$n" &
    jobs+=($!)
  done
  for n in "${jobs[@]}"; do wait "$n" || true; done
  stop_one 0
  if p=$(pid proxy); then kill -TERM "$p" 2>/dev/null || true; wait_gone "$p" 10 || kill -KILL "$p" 2>/dev/null || true; fi
  rm -f "$state/proxy.pid"
  netns_down
  rm -rf "$state"
}

broker_arg() {
  case "${1:-}" in 1 | 2 | 3) echo "$1" ;; *) die "name a broker: 1, 2 or 3" ;; esac
}

# A broker, or node 0, the KRaft controller (kill and start only).
node_arg() {
  case "${1:-}" in 0 | 1 | 2 | 3) echo "$1" ;; *) die "name a node: 0 (the controller), 1, 2 or 3" ;; esac
}

cmd="${1:-}"
case "$cmd" in
  start)
    if [ -n "${2:-}" ]; then start_one "$(node_arg "$2")"; else start_all; fi
    ;;
  stop)
    if [ -n "${2:-}" ]; then stop_one "$(broker_arg "$2")"; else stop_all; say "stopped"; fi
    ;;
  kill) kill_one "$(node_arg "${2:-}")" ;;
  pause | resume)
    n=$(broker_arg "${2:-}")
    p=$(pid "$n") || die "broker $n is not running"
    if [ "$cmd" = pause ]; then kill -STOP "$p"; else kill -CONT "$p"; fi
    ;;
  status)
    rc=0
    for n in 0 "${brokers[@]}"; do
      if p=$(pid "$n"); then
        if answers "$n"; then s="answers"; else s="does not answer"; rc=1; fi
        echo "node $n: pid $p, $s"
      else
        echo "node $n: not running"; rc=1
      fi
    done
    if p=$(pid proxy); then echo "proxy: pid $p, $bootstrap"; else echo "proxy: not running"; rc=1; fi
    exit $rc
    ;;
  bootstrap) echo "$bootstrap" ;;
  env)
    cat <<ENV
KAFKA_CLUSTER_NETNS=$ns
KAFKA_CLUSTER_VETH_OUT=$veth_out
KAFKA_CLUSTER_VETH_IN=$veth_in
KAFKA_CLUSTER_PROXY_API=http://127.0.0.1:$api_port
KAFKA_CLUSTER_BOOTSTRAP=$bootstrap
KAFKA_CLUSTER_STATE=$state
KAFKA_CLUSTER_SECURED=$secured
KAFKA_CLUSTER_PORT_BASE=$port_base
ENV
    ;;
  acls)
    shift
    [ "$secured" = 1 ] && [ -f "$tls/admin.properties" ] || die "no secured cluster in $state"
    "$java" -Xmx128m -cp "$kafka_lib/*" org.apache.kafka.tools.AclCommand --bootstrap-server "$bootstrap" \
      --command-config "$tls/admin.properties" "$@"
    ;;
  __run)
    dir="$state/node-$2"
    run_java "$dir" exec kafka.Kafka "$dir/server.properties"
    ;;
  *)
    sed -n '2,40p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
