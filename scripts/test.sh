#!/usr/bin/env bash
# The whole test suite: starts a real single-node Kafka broker (fetched from
# Maven Central on the first run, cached after), runs every cargo test
# against it, the ignored ones included, and stops the broker again. With
# KAFKA_BOOTSTRAP_SERVERS set, the tests use that broker instead and nothing
# is started or stopped; then the tests that need the broker of
# scripts/kafka.sh (they stop it, or change its ACLs) are skipped, unless
# POPBILL_TEST_KAFKA_SCRIPT=1 says that it is that broker. The secured tests
# (tests/it/secured.rs) start the secured broker of `scripts/kafka.sh
# secured` themselves under POPBILL_TEST_KAFKA_SCRIPT=1, and stop it after.
#
# Usage: scripts/test.sh [extra cargo test arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

# tests/it/prometheus.rs scrapes the bridge with a real Prometheus server.
if ! command -v "${PROMETHEUS_BIN:-prometheus}" >/dev/null 2>&1; then
  echo "test.sh: installing Debian's prometheus package (for tests/it/prometheus.rs)" >&2
  { apt-get install -y -qq prometheus || { apt-get update -qq && apt-get install -y -qq prometheus; }; } >/dev/null
fi

stop_after=0
if [ -z "${KAFKA_BOOTSTRAP_SERVERS:-}" ]; then
  # A broker the developer started by hand keeps running afterwards.
  scripts/kafka.sh status >/dev/null 2>&1 || stop_after=1
  KAFKA_BOOTSTRAP_SERVERS=$(scripts/kafka.sh start)
  # The broker is ours: tests that stop and restart it may run.
  POPBILL_TEST_KAFKA_SCRIPT=1
  export KAFKA_BOOTSTRAP_SERVERS POPBILL_TEST_KAFKA_SCRIPT
  if [ "$stop_after" = 1 ]; then
    trap 'scripts/kafka.sh stop' EXIT
  fi
fi
echo "test.sh: Kafka at $KAFKA_BOOTSTRAP_SERVERS" >&2

# Tests that need the broker are #[ignore = "needs a Kafka broker"] (or "...
# the Kafka broker of scripts/kafka.sh"): plain `cargo test` lists them as
# ignored, and here they run. One that runs and finds no broker fails.
test_args=(--include-ignored)
# The tests marked "needs the Kafka broker of scripts/kafka.sh", which
# tests/it/test_sh.rs keeps equal to the marks.
kafka_sh_tests=(
  outage::kafka_down_during_the_first_copy_then_back_gives_exactly_one_record
  transactions::a_cluster_that_refuses_transactional_ids_makes_readiness_name_the_acl
  secured::a_wrong_scram_password_keeps_the_bridge_up_and_readiness_names_the_refused_login
  secured::a_broker_certificate_without_the_connected_name_makes_readiness_name_the_name_not_the_ca
  secured::an_expired_broker_certificate_makes_readiness_say_it_expired_not_blame_the_ca
  secured::a_sasl_password_from_a_file_logs_in_never_shows_and_its_rotation_restarts_the_bridge_with_status_4
  secured::an_untrusted_broker_certificate_keeps_the_bridge_up_and_readiness_names_the_tls_failure
  secured::no_client_certificate_on_the_mutual_tls_listener_keeps_the_bridge_up_and_readiness_names_the_refusal
  least_privilege::over_sasl_ssl_the_documented_acls_suffice_for_delivery_duplicate_replica_dead_letter_and_redrive
  least_privilege::over_mutual_tls_the_documented_acls_suffice_for_delivery_duplicate_replica_dead_letter_and_redrive
  secured::without_read_on_an_empty_ledger_the_bridge_is_not_ready_and_names_the_read_acl
  secured::without_write_on_a_routed_topic_the_503_and_readyz_name_the_topic_and_the_acl
  secured::without_describe_configs_readiness_lists_the_unchecked_settings_and_the_acl
  missing_rights::without_create_on_the_topics_readiness_the_log_and_the_503_name_each_topic_and_create
  missing_rights::without_describe_on_the_topics_the_bridge_works_since_write_and_read_imply_it
  missing_rights::without_the_transactional_id_acl_readiness_the_log_and_the_503_name_the_id_and_the_acl
  missing_rights::without_describe_on_the_ledger_group_the_bridge_is_ready_and_readyz_warns_naming_the_group_and_the_acl
  missing_rights::without_read_on_its_group_redrive_exits_naming_the_group_and_the_read_acl
)
if [ "${POPBILL_TEST_KAFKA_SCRIPT:-}" != 1 ]; then
  echo "test.sh: the broker is not run by scripts/kafka.sh: skipping ${kafka_sh_tests[*]}" >&2
  for t in "${kafka_sh_tests[@]}"; do
    test_args+=(--skip "$t")
  done
fi
case " $* " in
  *" -- "*) cargo test --locked --workspace "$@" "${test_args[@]}" ;;
  *) cargo test --locked --workspace "$@" -- "${test_args[@]}" ;;
esac

# The Java and Python consumer libraries: the vectors of tests/vectors/
# decoded byte for byte as the Rust crate does, the AsyncAPI contract against
# their types, and each one's real-broker test on this broker.
scripts/clients.sh

# deploy/: manifests against the Kubernetes schemas, alert rules with
# promtool, metric names of the dashboard and alerts against /metrics.
scripts/check-deploy.sh
scripts/check-deps.sh
scripts/check-asyncapi.sh
# The container image built from deploy/Dockerfile (podman, a base made from
# Debian's packages) and run: uid, no shell, --help, --check-config, --dev
# answering on a published port, SIGTERM drain, read-only root filesystem.
scripts/image.sh smoke
# The kustomize example overlay and the Helm chart played by podman against
# this broker: probes' endpoint, args, env, mounts, securityContext, and a
# delivery that lands in Kafka.
KAFKA_BOOTSTRAP_SERVERS="$KAFKA_BOOTSTRAP_SERVERS" scripts/image.sh play
