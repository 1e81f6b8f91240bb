#!/usr/bin/env bash
# A secured single-node Apache Kafka 4.x broker (KRaft) on loopback, as
# companies run theirs: TLS with a private CA, SASL/SCRAM-SHA-512, mutual
# TLS, and the StandardAuthorizer denying whatever no ACL allows. Run it as
# `scripts/kafka.sh secured CMD` (this script is what that runs). It shares
# the jar cache of scripts/kafka.sh, never its ports or its directory: both
# can run at once.
#
#   scripts/kafka.sh secured start    start (or reuse) it; prints the SASL_SSL bootstrap address
#   scripts/kafka.sh secured stop     stop it and delete its data, keys and passwords
#   scripts/kafka.sh secured status   exit 0 when it runs and answers (over mutual TLS)
#   scripts/kafka.sh secured dir      print its directory (certificates, passwords, admin.properties)
#   scripts/kafka.sh secured acls ARGS   Kafka's ACL tool (AclCommand) as the admin, e.g.
#       scripts/kafka.sh secured acls --add --allow-principal User:bridge \
#         --operation Write --topic popbill. --resource-pattern-type prefixed
#
# Listeners (all 127.0.0.1):
#   19192 SASL_SSL  SCRAM-SHA-512 over TLS (users admin and bridge)
#   19193 SSL       mutual TLS: a client certificate is required
#   19194 SSL       INTERNAL, the broker's own (inter-broker), mutual TLS
#   19195 SSL       CONTROLLER, mutual TLS
#   19196 SSL       EXPIRED: a broker certificate that expired (2024-01-02),
#                   signed by the same CA; no client certificate asked for
# Principals: SCRAM users are User:<name>; a certificate is User:<its CN>
# (ssl.principal.mapping.rules), so the client certificate (CN=bridge) and
# the SCRAM user bridge are one principal with one set of ACLs. Super users:
# User:admin and User:broker (the broker's own certificate).
#
# Made at the first start (format time), in the directory, never in git:
#   ca.pem                     the throwaway CA (its key, ca.key, signs the others)
#   broker.pem                 the broker's key and certificate (SAN kafka-0.popbill.test, 127.0.0.1)
#   expired.pem                the same for the EXPIRED listener, expired
#   client.pem, client.key     the client certificate (CN=bridge) and its key
#   admin.password, bridge.password   the SCRAM passwords (mode 600)
#   admin.properties           a Java client's settings as the admin (--command-config)
#
# Environment: KAFKA_SECURED_SASL_PORT (19192), KAFKA_SECURED_MTLS_PORT
# (19193), KAFKA_SECURED_INTERNAL_PORT (19194), KAFKA_SECURED_CONTROLLER_PORT
# (19195), KAFKA_SECURED_EXPIRED_PORT (19196), POPBILL_KAFKA_SECURED_STATE,
# KAFKA_HEAP, POPBILL_KAFKA_CACHE, JAVA.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib/process.sh
. "$here/lib/process.sh"
# shellcheck source=lib/kafka.sh
. "$here/lib/kafka.sh"

version=$kafka_version
lib=$kafka_lib
state="${POPBILL_KAFKA_SECURED_STATE:-${TMPDIR:-/tmp}/popbill-bridge-kafka-secured}"
sasl_port="${KAFKA_SECURED_SASL_PORT:-19192}"
mtls_port="${KAFKA_SECURED_MTLS_PORT:-19193}"
int_port="${KAFKA_SECURED_INTERNAL_PORT:-19194}"
cport="${KAFKA_SECURED_CONTROLLER_PORT:-19195}"
expired_port="${KAFKA_SECURED_EXPIRED_PORT:-19196}"
heap="${KAFKA_HEAP:--Xms128m -Xmx384m}"
java="${JAVA:-java}"
pidfile="$state/kafka.pid"
logfile="$state/kafka.log"
bootstrap="127.0.0.1:$sasl_port"

say() { printf 'kafka.sh secured: %s\n' "$*" >&2; }

pid() { pidfile_pid "$pidfile"; }

started() {
  grep -q "Kafka Server started" "$logfile" 2>/dev/null
}

# The broker answers a real Kafka request over mutual TLS within 3 s.
answers() { kafka_answers_tls "$mtls_port" "$state"; }

# The CA, the certificates and the passwords (scripts/lib/kafka.sh): made
# once per directory (a restart on the same data keeps them, since the SCRAM
# credentials in the metadata were made with these passwords). Not
# "localhost" among the names: the name a client connects by must be one the
# certificate lists, and tests/it/secured.rs connects by "localhost" to see
# a mismatch named.
make_secrets() { kafka_make_secrets "$state" "DNS:kafka-0.popbill.test,IP:127.0.0.1"; }

write_config() {
  mkdir -p "$state/data"
  cat >"$state/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$cport
listeners=SASL://127.0.0.1:$sasl_port,MTLS://127.0.0.1:$mtls_port,INTERNAL://127.0.0.1:$int_port,CONTROLLER://127.0.0.1:$cport,EXPIRED://127.0.0.1:$expired_port
advertised.listeners=SASL://127.0.0.1:$sasl_port,MTLS://127.0.0.1:$mtls_port,INTERNAL://127.0.0.1:$int_port,CONTROLLER://127.0.0.1:$cport,EXPIRED://127.0.0.1:$expired_port
controller.listener.names=CONTROLLER
inter.broker.listener.name=INTERNAL
listener.security.protocol.map=SASL:SASL_SSL,MTLS:SSL,INTERNAL:SSL,CONTROLLER:SSL,EXPIRED:SSL
# TLS everywhere, with the throwaway CA; PEM stores, no keytool.
ssl.keystore.type=PEM
ssl.keystore.location=$state/broker.pem
ssl.truststore.type=PEM
ssl.truststore.location=$state/ca.pem
ssl.endpoint.identification.algorithm=https
# A certificate's principal is its CN (CN=bridge is User:bridge, as the SCRAM
# user bridge is), so one set of ACLs serves both ways in.
ssl.principal.mapping.rules=RULE:^CN=([^,]+).*\$/\$1/,DEFAULT
listener.name.mtls.ssl.client.auth=required
listener.name.expired.ssl.keystore.type=PEM
listener.name.expired.ssl.keystore.location=$state/expired.pem
listener.name.internal.ssl.client.auth=required
listener.name.controller.ssl.client.auth=required
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
# Nothing is allowed without an ACL; the admin (SCRAM) and the broker
# itself (its certificate) are above ACLs.
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:admin;User:broker
log.dirs=$state/data
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=3
transaction.abort.timed.out.transaction.cleanup.interval.ms=1000
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
num.network.threads=2
num.io.threads=2
num.recovery.threads.per.data.dir=1
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=8388608
log.segment.bytes=67108864
PROPS
  write_log4j "$state"
}

start() {
  "$here/kafka.sh" fetch
  if pid >/dev/null && answers; then
    say "reusing the secured broker already running (pid $(pid))"
    echo "$bootstrap"
    return 0
  fi
  if p=$(pid); then
    say "the secured broker process ($p) does not answer; restarting it on its data"
    stop_process
  fi
  mkdir -p "$state"
  chmod 700 "$state"
  if [ ! -f "$state/data/meta.properties" ]; then
    rm -rf "$state/data"
    make_secrets
  fi
  write_config
  if [ ! -f "$state/data/meta.properties" ]; then
    mkdir -p "$state/data"
    local id
    id=$(run_java "$state" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)
    run_java "$state" kafka.tools.StorageTool format --standalone -t "$id" \
      -c "$state/server.properties" \
      --add-scram "SCRAM-SHA-512=[name=admin,password=$(cat "$state/admin.password")]" \
      --add-scram "SCRAM-SHA-512=[name=bridge,password=$(cat "$state/bridge.password")]" \
      >"$state/format.log" 2>&1 || {
      say "formatting the storage failed:"; cat "$state/format.log" >&2; return 1; }
  fi
  : >"$logfile"
  nohup "$0" __run >>"$state/stdout.log" 2>&1 &
  echo $! >"$pidfile"
  local deadline=$((SECONDS + 90))
  until started && answers; do
    if ! pid >/dev/null; then
      say "the broker exited while starting:"; tail -n 40 "$logfile" "$state/stdout.log" >&2; return 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      say "the broker did not start within 90 s:"; tail -n 40 "$logfile" >&2; return 1
    fi
    sleep 0.5
  done
  say "Apache Kafka $version (secured) up at $bootstrap (SASL_SSL), 127.0.0.1:$mtls_port (mTLS); pid $(pid); certificates, passwords and logs in $state"
  echo "$bootstrap"
}

stop_process() {
  local p
  if p=$(pid); then stop_pid "$p" 40 "the secured broker"; fi
  rm -f "$pidfile"
}

cmd="${1:-}"
case "$cmd" in
  start) start ;;
  stop)
    stop_process
    rm -rf "$state"
    say "stopped"
    ;;
  status)
    if pid >/dev/null && answers; then echo "running at $bootstrap"; else echo "not running"; exit 1; fi
    ;;
  bootstrap) echo "$bootstrap" ;;
  dir) echo "$state" ;;
  acls)
    shift
    [ -f "$state/admin.properties" ] || { say "no secured broker in $state (start it first)"; exit 1; }
    "$java" -Xmx128m -cp "$lib/*" org.apache.kafka.tools.AclCommand --bootstrap-server "$bootstrap" \
      --command-config "$state/admin.properties" "$@"
    ;;
  __run)
    run_java "$state" exec kafka.Kafka "$state/server.properties"
    ;;
  *)
    sed -n '2,40p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
