//! The integration tests: one test binary (`it`), one module per subject,
//! the shared helpers in [`common`]. One binary links the bridge, rdkafka
//! and the test helpers once instead of once per file.
//!
//! Run them all with `scripts/test.sh`, which starts a Kafka broker with
//! `scripts/kafka.sh` and passes `--include-ignored`. A plain `cargo test`
//! runs the tests that need no broker (librdkafka's mock cluster, an
//! unreachable broker, the CLI, the docs) and lists the others as ignored:
//!
//! - `#[ignore = "needs a Kafka broker"]`: the test reads the broker from
//!   `KAFKA_BOOTSTRAP_SERVERS` ([`common::real_broker`]) and fails, saying
//!   so, when it is unset;
//! - `#[ignore = "needs the Kafka broker of scripts/kafka.sh"]`: the test
//!   also stops the broker, or changes its ACLs, so it runs only where
//!   `scripts/kafka.sh` owns the broker (`POPBILL_TEST_KAFKA_SCRIPT=1`, as
//!   `scripts/test.sh` sets when it starts the broker;
//!   [`common::kafka_sh_broker`]). Given another broker, `scripts/test.sh`
//!   skips these by name (`test_sh` keeps its list equal to the marks).
//!   The tests of [`secured`] carry this mark too: they need the secured
//!   broker of `scripts/kafka.sh secured` and change its ACLs; they find it
//!   running, or start (and then stop) it when `POPBILL_TEST_KAFKA_SCRIPT=1`.
//!
//! libtest runs the tests of one binary in parallel. The test that stops
//! the broker therefore holds it alone, the others sharing it (the lock in
//! `common/kafka.rs`); the tests that count the process's log lines run in
//! a child process of their own (`outage.rs`).

mod asyncapi;
mod cli;
mod common;
mod dead_letters;
mod docs;
mod duplicates;
mod end_to_end;
mod events_crate;
mod failures;
mod http_edge;
mod least_privilege;
mod missing_rights;
mod outage;
mod prometheus;
mod redrive;
mod secured;
mod send;
mod shutdown;
mod test_sh;
mod transactions;
mod vectors;
