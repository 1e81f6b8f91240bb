//! `popbill-bridge redrive`: moves deliveries that a new route or a
//! corrected setting now accepts from the fallback (or dead-letter) topic
//! to their routed topic.
//!
//! Two situations need it. POPBiLL starts sending a webhook or event type
//! the configuration does not route yet: its deliveries land on the
//! fallback topic; the operator adds a route, and the events already there
//! should move. Or a bridge upgrade or a corrected limit makes deliveries
//! valid that were dead-lettered.
//!
//! Each record of the source topic is rebuilt into the request it came
//! from (its body and `pb-webhook-*` headers), checked and routed with the
//! current configuration, and — when it now goes somewhere else — published
//! to its routed topic through the same duplicate detection as the webhook:
//! the bridge's ledger is read first, so an event already published (by the
//! bridge, or by an earlier re-drive) is not published again. Re-driven
//! records carry `popbill-bridge-redriven-from: <topic>/<partition>/<offset>`.
//! The rest is left where it is.
//!
//! Progress is committed (consumer group `<kafka.client_id>-redrive-<topic>`)
//! only up to records that are finished — published and confirmed, or
//! left — so an interrupted run is safely run again: it resumes, and what
//! it had published already is recognised as published.
//!
//! The parts, each with one job: `args` the command line; `driver` the
//! run (write path, ledger, the read loop); `reader` the source topic
//! and its committed progress; `target` one record, rebuilt and
//! re-driven; `progress` up to where progress may be committed;
//! `summary` what became of the records, and the progress bar.

mod args;
mod driver;
mod progress;
mod reader;
mod summary;
mod target;

use std::io::IsTerminal as _;
use std::process::ExitCode;

use crate::config::Config;

pub use args::RedriveArgs;
pub use driver::redrive;
pub use summary::{Fate, Summary};

pub(crate) async fn run(args: RedriveArgs) -> ExitCode {
    let mut cfg = match Config::load(args.config.as_deref(), std::env::vars()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("popbill-bridge redrive: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(b) = &args.brokers {
        cfg.kafka.brokers = b.clone();
    }
    let source = match args.from.as_str() {
        "fallback" => cfg.routes.fallback.clone(),
        "dead-letter" | "deadletter" => cfg.dead_letter.topic.clone(),
        other => other.to_string(),
    };
    let progress = std::io::stderr().is_terminal();
    // Ctrl-C or SIGTERM: stop taking records, finish those in flight
    // (their writes, ledger lines and progress), then exit 130.
    let (interrupt, interrupted) = crate::signal::signal();
    let on_signal = tokio::spawn(async move {
        crate::signal::stop_requested().await;
        eprintln!(
            "\npopbill-bridge redrive: interrupted: finishing the records in flight and committing progress"
        );
        interrupt.fire();
        // A second signal: stop at once.
        crate::signal::stop_requested().await;
        std::process::exit(130);
    });
    let outcome = redrive(&cfg, &source, &args, progress, interrupted).await;
    on_signal.abort();
    match outcome {
        Ok(summary) => {
            print!("{}", summary.table(&source, args.dry_run));
            if summary.count(|f| matches!(f, Fate::Failed(_))) > 0 {
                ExitCode::FAILURE
            } else if summary.interrupted {
                ExitCode::from(130)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("popbill-bridge redrive: {e}");
            ExitCode::from(2)
        }
    }
}
