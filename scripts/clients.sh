#!/usr/bin/env bash
# The consumer libraries of issue #26 beside the Rust crate: clients/java
# (Maven: build, JUnit, install) with examples/java-spring (build, JUnit), and
# clients/python (pytest). Both check every vector of tests/vectors/ against
# its canonical decoded form and, with KAFKA_BOOTSTRAP_SERVERS set, run their
# real-broker test against the bridge binary (POPBILL_BRIDGE_BIN, built here
# when unset).
#
# Downloads are cached as the Kafka jars are, under
# ${POPBILL_TOOLS_CACHE:-~/.cache/popbill-bridge}: Maven's repository in m2/,
# the Python test environment in python-clients/ (rebuilt when
# clients/python/requirements-test.txt changes or its python no longer runs).
#
# A missing tool (mvn or a JDK 17, python3 with venv) skips that language
# with a line that says so; POPBILL_TEST_REQUIRE_CLIENTS=1 (.ci/run sets it)
# makes it a failure instead, so that CI never passes by skipping.
#
# Usage: scripts/clients.sh [java|python]...
set -euo pipefail
cd "$(dirname "$0")/.."
cache="${POPBILL_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/popbill-bridge}"
langs=("$@")
[ ${#langs[@]} -gt 0 ] || langs=(java python)

skip() {
  if [ "${POPBILL_TEST_REQUIRE_CLIENTS:-}" = 1 ]; then
    echo "clients: FAILED $1: $2 (POPBILL_TEST_REQUIRE_CLIENTS=1)" >&2
    exit 1
  fi
  echo "clients: SKIPPED $1: $2" >&2
}

if [ -n "${KAFKA_BOOTSTRAP_SERVERS:-}" ] && [ -z "${POPBILL_BRIDGE_BIN:-}" ]; then
  cargo build --quiet --locked --bin popbill-bridge
  # Where cargo put it (CARGO_TARGET_DIR or target/), without needing python3.
  POPBILL_BRIDGE_BIN="$(cargo metadata --format-version 1 --no-deps --locked |
    grep -o '"target_directory":"[^"]*"' | cut -d'"' -f4)/debug/popbill-bridge"
  export POPBILL_BRIDGE_BIN
fi
if [ -z "${KAFKA_BOOTSTRAP_SERVERS:-}" ]; then
  echo "clients: KAFKA_BOOTSTRAP_SERVERS is not set: the real-broker tests will report themselves skipped" >&2
fi

java_part() {
  if ! command -v mvn >/dev/null 2>&1; then
    skip "clients/java and examples/java-spring" "mvn not found (install Maven and a JDK 17)"
    return
  fi
  if ! java -version 2>&1 | grep -Eq 'version "(1[7-9]|[2-9][0-9])'; then
    skip "clients/java and examples/java-spring" "no JDK 17 or later"
    return
  fi
  local start=$SECONDS mvn=(mvn -B -q -Dstyle.color=never -Dmaven.repo.local="$cache/m2")
  echo "clients: Java: clients/java (JUnit: vectors, AsyncAPI, gate, real broker), then examples/java-spring" >&2
  # Reports of an earlier run would be counted again.
  rm -rf clients/java/target/surefire-reports
  # Maven 3.8 writes colour resets (to both streams) even in batch mode; pipefail
  # keeps its status.
  "${mvn[@]}" -f clients/java install 2>&1 | sed 's/\x1b\[[0-9;]*m//g' >&2
  # Surefire is quiet with -q: say what ran, and what was skipped and why.
  cat clients/java/target/surefire-reports/*.txt | grep -h "Tests run" >&2
  grep -ho 'Assumption failed: [^]]*' clients/java/target/surefire-reports/TEST-*.xml | sed 's/^/clients: Java skipped: /' >&2 || true
  "${mvn[@]}" -f examples/java-spring package 2>&1 | sed 's/\x1b\[[0-9;]*m//g' >&2
  echo "clients: Java ok in $((SECONDS - start)) s" >&2
}

python_part() {
  if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    skip "clients/python" "python3 with venv and ensurepip not found"
    return
  fi
  local start=$SECONDS venv="$cache/python-clients"
  # Rebuilt when the requirements change, or when the environment no longer
  # runs (its python3 was upgraded or removed underneath it).
  if ! cmp -s clients/python/requirements-test.txt "$venv/requirements-test.txt" ||
    ! "$venv/bin/python" -c 1 >/dev/null 2>&1; then
    echo "clients: installing pytest and confluent-kafka (PyPI) into $venv" >&2
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q -r clients/python/requirements-test.txt >&2
    cp clients/python/requirements-test.txt "$venv/requirements-test.txt"
  fi
  echo "clients: Python: clients/python (pytest: vectors, AsyncAPI, gate, real broker)" >&2
  (cd clients/python && "$venv/bin/python" -m pytest -q -rs -p no:cacheprovider tests)
  echo "clients: Python ok in $((SECONDS - start)) s" >&2
}

for lang in "${langs[@]}"; do
  case "$lang" in
    java) java_part ;;
    python) python_part ;;
    *) echo "clients: unknown language $lang (java, python)" >&2; exit 2 ;;
  esac
done
