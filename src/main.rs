//! The `popbill-bridge` binary: flags and configuration, logging, start,
//! and the signals that stop it.

use std::process::ExitCode;

use clap::Parser;
use tracing::{error, info, warn};

use popbill_bridge::cli::Cli;

// glibc's allocator showed as ~15% of the bridge's CPU under load (malloc,
// free and consolidation across threads); mimalloc's thread-local heaps
// cut that. Measured with scripts/bench.sh, see the README. It serves C's
// malloc too (libmimalloc-sys "override", Cargo.toml): librdkafka's
// allocations. Its settings: popbill_bridge::allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use popbill_bridge::config::Config;
use popbill_bridge::kafka::mock as dev;
use popbill_bridge::telemetry::logging;

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("popbill-bridge: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut dev_cluster = None;
    let code = runtime.block_on(run(&mut dev_cluster));
    // The runtime's tasks hold Kafka clients until it is dropped; the
    // embedded cluster of --dev must outlive them, or each client logs its
    // disconnect after "popbill-bridge stopped".
    drop(runtime);
    drop(dev_cluster);
    // Log lines still in memory (see telemetry::logging) go out before
    // the process does.
    logging::flush();
    code
}

/// Runs the bridge or a command. With --dev, the embedded cluster goes
/// into `dev_cluster`, for `main` to drop last.
async fn run(dev_cluster: &mut Option<dev::DevKafka>) -> ExitCode {
    // Purge freed memory at once, no transparent huge pages: see the module.
    popbill_bridge::allocator::tune();
    let mut cli = Cli::parse();
    if let Some(command) = cli.command.take() {
        return popbill_bridge::commands::run(command).await;
    }
    // --dev: the listeners default to loopback; an address given in the
    // file, the environment or a flag is kept as given.
    let loaded = if cli.dev {
        Config::load_dev(cli.config.as_deref(), std::env::vars())
    } else {
        Config::load(cli.config.as_deref(), std::env::vars())
    };
    let mut cfg = match loaded {
        Ok(c) => c,
        Err(e) => {
            eprintln!("popbill-bridge: {e}");
            return ExitCode::from(2);
        }
    };
    cli.apply(&mut cfg);
    if let Err(e) = logging::init(&cfg.log) {
        eprintln!("popbill-bridge: {e}");
        return ExitCode::from(2);
    }

    // The embedded cluster must outlive the bridge: `main` holds it.
    if cli.dev {
        let topics = cfg.prepare_for_dev();
        match dev::start(&topics) {
            Ok(d) => {
                cfg.kafka.brokers = d.bootstrap.clone();
                eprintln!(
                    "\npopbill-bridge --dev: embedded Kafka (librdkafka mock cluster) at {}\n\
                     WARNING: NOTHING IS DURABLE. Records live in this process only; use --brokers for a real cluster.\n\
                     Post a delivery:  curl -i http://{}{} -H 'Pb-Webhook-Type: TAXINVOICE.STATE' \
                     -H 'Pb-Webhook-MID: try-1' -H 'Content-Type: application/json' \
                     -d '{{\"corpNum\":\"1234567890\",\"itemKey\":\"1\",\"eventType\":\"Issue\"}}'\n\
                     See it counted:   curl -s http://{}/metrics | grep deliveries_total\n",
                    d.bootstrap,
                    cfg.server.listen,
                    cfg.server.webhook_path,
                    cfg.server.admin_listen
                );
                warn!(bootstrap = %d.bootstrap, "dev mode: embedded mock Kafka, nothing is durable");
                *dev_cluster = Some(d);
            }
            Err(e) => {
                eprintln!("popbill-bridge: cannot start the embedded Kafka: {e}");
                return ExitCode::FAILURE;
            }
        }
    }

    // --dev runs on one's own machine, against nothing durable: an open
    // door there is the point, not a mistake.
    let warnings = if cli.dev { Vec::new() } else { cfg.warnings() };

    if cli.check_config {
        // The Kafka client is built too (without connecting), so a mistyped
        // property fails here rather than at start-up.
        let checked = popbill_bridge::bridge::check(&cfg);
        return match checked {
            Ok(()) => {
                println!("{cfg:#?}");
                for w in &warnings {
                    println!("warning: {w}");
                }
                println!("configuration is valid");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("popbill-bridge: {e}");
                ExitCode::from(2)
            }
        };
    }

    // Said before anything starts: a stop signal that comes as soon as the
    // bridge listens must not take the warning with it.
    for w in &warnings {
        warn!("{w}");
    }
    let bridge = match popbill_bridge::start(cfg).await {
        Ok(b) => b,
        Err(e) => {
            error!("{e}");
            eprintln!("popbill-bridge: {e}");
            return ExitCode::from(2);
        }
    };

    // A fatal Kafka error leaves a producer that can never write: take
    // the orderly way out and exit non-zero, so the orchestrator restarts
    // the process with a new producer.
    let exit_status = tokio::select! {
        _ = popbill_bridge::signal::stop_requested() => {
            info!("stop signal received; a second one exits at once");
            None
        }
        reason = bridge.fatal_error() => {
            error!(reason, "fatal Kafka error: shutting down, then exiting with status {EXIT_KAFKA_FATAL} to be restarted");
            Some(EXIT_KAFKA_FATAL)
        }
        reason = bridge.restart_requested() => {
            warn!(reason, "restart asked for: shutting down, then exiting with status {EXIT_RESTART} to be started again");
            Some(EXIT_RESTART)
        }
    };
    let shutdown = bridge.shutdown();
    tokio::pin!(shutdown);
    tokio::select! {
        report = &mut shutdown => {
            if let Some(status) = exit_status {
                ExitCode::from(status)
            } else if report.drained && report.unflushed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        _ = popbill_bridge::signal::stop_requested() => {
            warn!("second stop signal: exiting now");
            ExitCode::from(130)
        }
    }
}

/// Exit status after a fatal Kafka client error (1: unclean shutdown,
/// 2: configuration, 130: second stop signal).
const EXIT_KAFKA_FATAL: u8 = 3;

/// Exit status after a changed Kafka secret file (`kafka.secret_files`):
/// an orderly stop, so that the orchestrator starts the bridge again with
/// the new value.
const EXIT_RESTART: u8 = 4;
