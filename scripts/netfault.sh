#!/usr/bin/env bash
# A bad network between the clients (the bridge) and the Kafka cluster of
# scripts/kafka-cluster.sh. Brokers keep talking to each other and to the
# controller undisturbed: only the clients' side is hit.
#
#   scripts/netfault.sh partition          the veth link to the cluster's namespace down: no packet passes
#   scripts/netfault.sh bandwidth RATE     a token-bucket cap (tc tbf) both ways on that link, e.g. 256kbit
#   scripts/netfault.sh latency MS [JITTER]  Toxiproxy adds MS (± JITTER) ms to every answer from Kafka
#   scripts/netfault.sh stall              Toxiproxy holds all data both ways; connections stay open,
#                                          the held data flows on when the stall is cleared
#   scripts/netfault.sh reset              Toxiproxy resets (TCP RST) every connection as soon as it
#                                          carries data, new ones too, until cleared (the chaos
#                                          driver sets it in short pulses)
#   scripts/netfault.sh loss PERCENT       every packet on that link dropped with this chance, both
#                                          ways (iptables `statistic --mode random`: this kernel has
#                                          no netem)
#   scripts/netfault.sh clear              all of the above undone (link up, no qdisc, no toxics,
#                                          no drop rules)
#   scripts/netfault.sh status             what is in effect
#
# Partition and bandwidth need the cluster in its namespace (root); the
# proxy faults work on loopback too. Exits non-zero if the fault could not
# be set.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
eval "$("$here/kafka-cluster.sh" env)"
ns=$KAFKA_CLUSTER_NETNS
api=$KAFKA_CLUSTER_PROXY_API
out=$KAFKA_CLUSTER_VETH_OUT
in=$KAFKA_CLUSTER_VETH_IN
proxies=(kafka-1 kafka-2 kafka-3)

say() { printf 'netfault.sh: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

need_ns() {
  [ "$ns" != none ] || die "$1 needs the cluster in a network namespace (run as root)"
  ip netns list | grep -qw "$ns" || die "no namespace $ns: is the cluster running?"
}

# toxic NAME TYPE STREAM ATTRIBUTES-JSON: on every proxy.
toxic() {
  local p
  for p in "${proxies[@]}"; do
    curl -fsS -o /dev/null -X POST "$api/proxies/$p/toxics" -H 'Content-Type: application/json' \
      -d "{\"name\":\"$1\",\"type\":\"$2\",\"stream\":\"$3\",\"toxicity\":1,\"attributes\":$4}" ||
      die "could not add toxic $1 to $p"
  done
}

tbf() {
  # burst: at least one full-size packet plus some; latency: how long a
  # packet may queue before it is dropped (a deep queue, as a slow uplink has).
  local rate=$1
  tc qdisc replace dev "$out" root tbf rate "$rate" burst 16kb latency 1s
  ip netns exec "$ns" tc qdisc replace dev "$in" root tbf rate "$rate" burst 16kb latency 1s
}

# The drop rules of `loss`, in the root namespace (towards the cluster)
# and in the cluster's (back): ACTION is -I to add, -D to remove.
loss_rules() {
  local action=$1 p=${2:-0}
  iptables -w "$action" OUTPUT -o "$out" -m statistic --mode random --probability "$p" -j DROP \
    -m comment --comment pbb-loss
  ip netns exec "$ns" iptables -w "$action" OUTPUT -o "$in" -m statistic --mode random \
    --probability "$p" -j DROP -m comment --comment pbb-loss
}

clear_loss() {
  local rule
  # Each rule as iptables -S shows it, turned into its -D.
  # No rule to remove is not a failure (grep finds none: pipefail).
  { iptables -S OUTPUT 2>/dev/null | grep -- '--comment pbb-loss' || true; } | sed 's/^-A/-D/' |
    while read -r rule; do eval "iptables -w $rule" || true; done
  { ip netns exec "$ns" iptables -S OUTPUT 2>/dev/null | grep -- '--comment pbb-loss' || true; } |
    sed 's/^-A/-D/' | while read -r rule; do eval "ip netns exec $ns iptables -w $rule" || true; done
}

clear() {
  # Toxiproxy's reset removes every toxic and re-enables every proxy.
  curl -fsS -o /dev/null -X POST "$api/reset" || say "warning: the proxy did not answer"
  if [ "$ns" != none ] && ip netns list | grep -qw "$ns"; then
    ip link set "$out" up 2>/dev/null || true
    ip netns exec "$ns" ip link set "$in" up 2>/dev/null || true
    tc qdisc del dev "$out" root 2>/dev/null || true
    ip netns exec "$ns" tc qdisc del dev "$in" root 2>/dev/null || true
    clear_loss
  fi
}

case "${1:-}" in
  partition)
    need_ns partition
    ip link set "$out" down
    ;;
  bandwidth)
    need_ns bandwidth
    [ -n "${2:-}" ] || die "give a rate, e.g. 256kbit"
    tbf "$2"
    ;;
  loss)
    need_ns loss
    [ -n "${2:-}" ] || die "give a percentage, e.g. 10"
    command -v iptables >/dev/null || die "loss needs iptables (apt-get install iptables)"
    loss_rules -I "$(awk -v p="$2" 'BEGIN { printf "%.4f", p / 100 }')"
    ;;
  latency)
    [ -n "${2:-}" ] || die "give a latency in ms"
    toxic pbb-latency latency downstream "{\"latency\":$2,\"jitter\":${3:-0}}"
    ;;
  stall)
    # A latency toxic of an hour holds every byte (Toxiproxy's timeout toxic
    # would drop them, which no real network does to a TCP stream).
    toxic pbb-stall-up latency upstream '{"latency":3600000}'
    toxic pbb-stall-down latency downstream '{"latency":3600000}'
    ;;
  reset)
    # timeout 0: at once. (With a timeout, Toxiproxy swallows the data
    # until then: a stall ending in a reset.)
    toxic pbb-reset-up reset_peer upstream '{"timeout":0}'
    toxic pbb-reset-down reset_peer downstream '{"timeout":0}'
    ;;
  clear) clear ;;
  status)
    for p in "${proxies[@]}"; do
      printf '%s: ' "$p"
      curl -fsS "$api/proxies/$p/toxics" 2>/dev/null || printf 'proxy not answering'
      echo
    done
    if [ "$ns" != none ]; then
      ip -br link show "$out" 2>/dev/null || echo "$out: missing"
      tc qdisc show dev "$out" 2>/dev/null | grep tbf || true
    fi
    ;;
  *)
    sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
