//! Subcommands beside serving: tools around the bridge that share its
//! code.
//!
//! - [`send`]: `popbill-bridge send`, a POPBiLL-like sender to check a
//!   deployment end to end; its [`send::Sender`] is the one POPBiLL sender
//!   of the repository (tools/ build on it);
//! - [`asyncapi`]: `popbill-bridge asyncapi`, the AsyncAPI 3.0 document of
//!   the topics a configuration produces;
//! - [`redrive`]: `popbill-bridge redrive`, moves deliveries a new route or
//!   a corrected setting now accepts from the fallback or dead-letter topic
//!   to their routed topic;
//! - [`samples`]: the sample deliveries both use, built in from
//!   `src/commands/samples/deliveries.jsonl`.

pub mod asyncapi;
pub mod redrive;
pub mod samples;
pub mod send;

use std::process::ExitCode;

/// `popbill-bridge <command>`; without one the bridge serves.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    Send(send::SendArgs),
    Asyncapi(asyncapi::AsyncapiArgs),
    Redrive(redrive::RedriveArgs),
}

pub async fn run(command: Command) -> ExitCode {
    match command {
        Command::Send(args) => send::run(args).await,
        Command::Asyncapi(args) => asyncapi::run(args),
        Command::Redrive(args) => redrive::run(args).await,
    }
}
