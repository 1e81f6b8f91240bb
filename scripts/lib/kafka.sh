# What scripts/kafka.sh (one broker) and scripts/kafka-cluster.sh (three)
# share: the Kafka version and its jar cache, the broker's log settings, the
# JVM, and the "does it answer" probe. Sourced, not run; the caller sets
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
