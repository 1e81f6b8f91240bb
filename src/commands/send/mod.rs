//! `popbill-bridge send`: a POPBiLL-like sender, to check a deployment end
//! to end (like `stripe trigger`).
//!
//! It sends a sample delivery with POPBiLL's headers, judges the answer by
//! POPBiLL's rule (status 200 with body `OK` or `{"result":"OK"}`;
//! anything else, or no answer within the timeout, is a failure), retries
//! the way POPBiLL does, and says plainly what happened at each try.
//!
//! The library half is for every tool that needs to send like POPBiLL:
//! [`Sender::try_once`] makes one try on a connection of its own (as a
//! fresh POPBiLL delivery would) and names what went wrong — connection
//! refused, certificate not trusted, hostname mismatch, timed out and in
//! which phase — and [`deliver`] is the retry loop around it.
//!
//! The parts, each with one job: `args` the command line; `delivery`
//! what is sent; `target` where it goes; `sender` one try on a
//! connection of its own; `answer` how a try went and POPBiLL's rule
//! for judging it; `failure` why a try got no answer; `retry` the
//! retry loop; `report` what the command prints.

mod answer;
mod args;
mod delivery;
mod failure;
mod report;
mod retry;
mod sender;
mod target;

use std::process::ExitCode;

use crate::commands::samples::{self, Sample};

pub use answer::{Answer, TryOutcome};
pub use args::SendArgs;
pub use delivery::{Delivery, fresh_mid};
pub use failure::{Failure, Phase};
pub use retry::{RetryPolicy, TryReport, deliver};
pub use sender::{Sender, SenderOptions};

use delivery::basic_authorization;
use report::{describe, list};
use target::POPBILL_PORTS;

pub(crate) async fn run(args: SendArgs) -> ExitCode {
    if args.list {
        print!("{}", list());
        return ExitCode::SUCCESS;
    }
    match prepare(&args) {
        Ok((sender, delivery, sample)) => send(sender, delivery, &sample, &args).await,
        Err(e) => {
            eprintln!("popbill-bridge send: {e}");
            ExitCode::from(2)
        }
    }
}

fn prepare(args: &SendArgs) -> Result<(Sender, Delivery, Sample), String> {
    let (Some(url), Some(name)) = (&args.url, &args.sample) else {
        return Err("give --url and --sample (or --list)".into());
    };
    let sample = samples::find(name).ok_or_else(|| {
        format!(
            "no sample called {name:?}; these exist: {}",
            samples::all()
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })?;
    let mut delivery = Delivery::from_sample(&sample);
    if let Some(b) = &args.basic {
        if !b.contains(':') {
            return Err("--basic takes user:pass".into());
        }
        delivery.set_header("Authorization", &basic_authorization(b));
    }
    if let Some(k) = &args.api_key {
        delivery.set_header("X-Api-Key", k);
    }
    if let Some(m) = &args.mid {
        delivery.set_header("Pb-Webhook-MID", m);
    } else if args.fresh_mid {
        delivery.set_header("Pb-Webhook-MID", &fresh_mid());
    }
    for h in &args.headers {
        let (k, v) = h
            .split_once(':')
            .ok_or_else(|| format!("--header {h:?}: expected \"Name: value\""))?;
        let (k, v) = (k.trim(), v.trim());
        hyper::header::HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| format!("--header {h:?}: {k:?} is not a header name"))?;
        hyper::header::HeaderValue::from_str(v)
            .map_err(|_| format!("--header {h:?}: the value is not a valid header value"))?;
        delivery.set_header(k, v);
    }
    let sender = Sender::new(
        url,
        SenderOptions {
            timeout: args.timeout,
            ca_files: args.ca_file.clone(),
        },
    )?;
    Ok((sender, delivery, sample))
}

async fn send(sender: Sender, delivery: Delivery, sample: &Sample, args: &SendArgs) -> ExitCode {
    let t = sender.target();
    println!(
        "sending {} ({} {}, MID {}) to {}",
        sample.name,
        sample.webhook_type(),
        sample.event_type().unwrap_or_else(|| "-".into()),
        delivery.mid().unwrap_or("-"),
        t.url
    );
    if !t.popbill_port() {
        println!(
            "note: POPBiLL delivers only to ports {}; a callback URL on port {} would not work with POPBiLL itself",
            POPBILL_PORTS
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            t.port
        );
    }
    let policy = RetryPolicy {
        retries: args.retries,
        interval: args.retry_interval,
    };
    let tries = deliver(&sender, &delivery, policy, |r| print!("{}", describe(r))).await;
    let n = tries.len();
    match tries.last() {
        Some(last) if last.succeeded() => {
            println!(
                "delivered: POPBiLL would count this delivery as done (try {n} of {})",
                policy.tries()
            );
            ExitCode::SUCCESS
        }
        _ => {
            if n == 1 {
                println!("not delivered: the try failed");
            } else {
                println!("not delivered: all {n} tries failed");
            }
            ExitCode::FAILURE
        }
    }
}
