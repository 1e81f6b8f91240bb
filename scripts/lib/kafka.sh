# What scripts/kafka.sh (one broker) and scripts/kafka-cluster.sh (three)
# share: the Kafka version and its jar cache, the broker's log settings, the
# JVM, the "does it answer" probes, and the secured brokers' certificates
# and passwords. Sourced, not run; the caller sets
# `java` and `heap`.

# shellcheck disable=SC2034 # used by the scripts that source this
kafka_pom="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/kafka/pom.xml"
kafka_version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$kafka_pom")
kafka_cachebase="${POPBILL_KAFKA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/popbill-bridge}"
kafka_cache="$kafka_cachebase/kafka-$kafka_version"
kafka_lib="$kafka_cache/lib"

# The broker's log4j2 settings in directory $1: one file, kafka.log, kept
# across restarts.
write_log4j() {
  cat >"$1/log4j2.properties" <<'PROPS'
status = error
appender.file.type = File
appender.file.append = true
appender.file.name = file
appender.file.fileName = ${sys:kafka.logs.dir}/kafka.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = info
logger.apache.name = org.apache.kafka
logger.apache.level = warn
PROPS
}

# run_java DIR [exec] MAIN ARGS...: a small, light JVM (serial GC, C1 only)
# on the cached jars, logging into DIR; with "exec" it replaces this shell.
run_java() {
  local how=() dir=$1
  shift
  if [ "$1" = exec ]; then how=(exec); shift; fi
  # shellcheck disable=SC2086 # the heap setting is several words on purpose
  "${how[@]}" "$java" $heap -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xss512k \
    -Djava.awt.headless=true -Dkafka.logs.dir="$dir" \
    -Dlog4j2.configurationFile="$dir/log4j2.properties" \
    -cp "$kafka_lib/*" "$@"
}

# kafka_answers PORT [RUNNER...]: the broker on 127.0.0.1:PORT answers a
# real Kafka request: ApiVersions v0, correlation id 42, over bash's
# /dev/tcp (no extra tools), asked through RUNNER when given (a network
# namespace). The reply's size (4 bytes, any), correlation id (0000002a)
# and error code (0000) must come back within 3 s, so a frozen (SIGSTOPped)
# broker whose port still accepts is not "answering".
kafka_answers() {
  local port=$1 reply
  shift
  # shellcheck disable=SC2016 # expanded by the inner bash, on purpose
  reply=$("$@" timeout 3 bash -c '
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf "\x00\x00\x00\x0b\x00\x12\x00\x00\x00\x00\x00\x2a\x00\x01k" >&3
    head -c 10 <&3 | od -An -tx1 | tr -d " \n"
  ' _ "$port" 2>/dev/null) || return 1
  case "$reply" in ????????0000002a0000) return 0 ;; *) return 1 ;; esac
}

# kafka_answers_tls PORT DIR [RUNNER...]: as kafka_answers, over mutual TLS
# with the CA and client certificate of DIR (kafka_make_secrets).
kafka_answers_tls() {
  local port=$1 dir=$2 reply
  shift 2
  [ -f "$dir/client.pem" ] || return 1
  # stdin stays open 1 s, for the answer to come, then s_client ends.
  reply=$({ printf '\x00\x00\x00\x0b\x00\x12\x00\x00\x00\x00\x00\x2a\x00\x01k'; sleep 1; } |
    "$@" timeout 3 openssl s_client -quiet -no_ign_eof -connect "127.0.0.1:$port" \
      -CAfile "$dir/ca.pem" -cert "$dir/client.pem" -key "$dir/client.key" \
      -verify_return_error 2>/dev/null | head -c 10 | od -An -tx1 | tr -d ' \n') || true
  case "$reply" in ????????0000002a0000) return 0 ;; *) return 1 ;; esac
}

# kafka_make_secrets DIR SAN: in DIR, a throwaway CA (ca.pem; its key
# ca.key signs the others), the brokers' key and certificate (broker.pem, a
# PEM key store; CN=broker, subjectAltName SAN, e.g. "IP:127.0.0.1"), the
# client's (client.pem, client.key; CN=bridge), the SCRAM passwords
# (admin.password, bridge.password, mode 600) and the admin's Java client
# settings (admin.properties: SASL_SSL as admin). Valid 7 days.
kafka_make_secrets() {
  local d=$1 san=$2
  (
    umask 077
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$d/ca.key" 2>/dev/null
    openssl req -x509 -new -key "$d/ca.key" -days 7 -subj "/O=popbill-bridge-test/CN=test CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -out "$d/ca.pem"
    local who
    for who in broker client; do
      local cn=$who
      [ "$who" = client ] && cn=bridge
      openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$d/$who.key" 2>/dev/null
      openssl req -new -key "$d/$who.key" -subj "/O=popbill-bridge-test/CN=$cn" -out "$d/$who.csr"
      printf 'basicConstraints=CA:FALSE\nsubjectAltName=%s\n' "$san" >"$d/$who.ext"
      openssl x509 -req -in "$d/$who.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
        -days 7 -extfile "$d/$who.ext" -out "$d/$who.crt" 2>/dev/null
      rm -f "$d/$who.csr" "$d/$who.ext"
    done
    # A broker certificate that expired (2024-01-02), signed by the same CA,
    # for one listener: what a client says about an expired certificate.
    # `openssl ca` is the one that takes explicit dates.
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$d/expired.key" 2>/dev/null
    openssl req -new -key "$d/expired.key" -subj "/O=popbill-bridge-test/CN=broker" -out "$d/expired.csr"
    printf 'basicConstraints=CA:FALSE\nsubjectAltName=%s\n' "$san" >"$d/expired.ext"
    printf '[ca]\ndefault_ca=test\n[test]\ndatabase=%s\nnew_certs_dir=%s\nserial=%s\ndefault_md=sha256\npolicy=any\n[any]\ncommonName=supplied\norganizationName=optional\n' \
      "$d/ca.index" "$d" "$d/ca.serial" >"$d/ca.cnf"
    : >"$d/ca.index"
    echo 1000 >"$d/ca.serial"
    openssl ca -batch -notext -config "$d/ca.cnf" -cert "$d/ca.pem" -keyfile "$d/ca.key" \
      -startdate 20240101000000Z -enddate 20240102000000Z -extfile "$d/expired.ext" \
      -in "$d/expired.csr" -out "$d/expired.crt" 2>/dev/null
    cat "$d/expired.key" "$d/expired.crt" >"$d/expired.pem"
    rm -f "$d/expired.key" "$d/expired.crt" "$d/expired.csr" "$d/expired.ext" "$d/ca.cnf" \
      "$d/ca.index"* "$d/ca.serial"* "$d"/1000.pem
    # Kafka's PEM key store: the (PKCS#8) key, then the certificate.
    cat "$d/broker.key" "$d/broker.crt" >"$d/broker.pem"
    mv "$d/client.crt" "$d/client.pem"
    rm -f "$d/broker.key" "$d/broker.crt" "$d/ca.srl"
    openssl rand -hex 16 >"$d/admin.password"
    openssl rand -hex 16 >"$d/bridge.password"
  )
  cat >"$d/admin.properties" <<PROPS
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$(cat "$d/admin.password")";
ssl.truststore.type=PEM
ssl.truststore.location=$d/ca.pem
PROPS
  chmod 600 "$d/admin.properties"
}
