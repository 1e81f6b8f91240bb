//! The command line of `popbill-bridge send`.

use std::path::PathBuf;
use std::time::Duration;

use super::retry::RetryPolicy;

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (e.g. 500ms, 10s, 5m)"))
}

#[derive(Debug, clap::Args)]
#[command(
    about = "Send a sample POPBiLL delivery to a URL the way POPBiLL does, and tell what happened.",
    long_about = "Send a sample POPBiLL delivery to a callback URL the way POPBiLL does, to check a \
deployment end to end (TLS, credentials, allow-list, the bridge, Kafka).\n\n\
The delivery carries POPBiLL's headers (Pb-Webhook-Type, -MID, -Corpnum, -EventType, \
Content-Type) and a realistic body (--list shows the samples). A try succeeds only on status 200 \
with body OK or {\"result\":\"OK\"}; any other status or body, a connection or TLS error, or no \
answer within --timeout is a failure, and the delivery is sent again after --retry-interval, \
--retries times at most, as POPBiLL does. Each try is printed: time, status, body, duration, and \
connection or TLS problems by name (connection refused, certificate not trusted, hostname \
mismatch, timed out, ...).\n\n\
HTTPS trusts Mozilla's root certificates (the same on every machine), plus --ca-file.\n\n\
Exit status: 0 when a try succeeded, 1 when every try failed, 2 for a usage error.",
    after_help = "Examples:\n  popbill-bridge send --list\n  popbill-bridge send --url https://hooks.example.com/popbill/webhook --sample taxinvoice-issue --api-key \"$KEY\" --retries 0\n  popbill-bridge send --url http://127.0.0.1:8080/popbill/webhook --sample statement-issue --fresh-mid --retries 4 --retry-interval 5m"
)]
pub struct SendArgs {
    /// The callback URL, as registered with POPBiLL (http:// or https://).
    #[arg(long, value_name = "URL", required_unless_present = "list")]
    pub(crate) url: Option<String>,

    /// Which sample delivery to send (see --list).
    #[arg(long, value_name = "NAME", required_unless_present = "list")]
    pub(crate) sample: Option<String>,

    /// List the sample deliveries and exit.
    #[arg(long)]
    pub(crate) list: bool,

    /// HTTP Basic credentials, as turned on in POPBiLL's settings; replaces the sample's Authorization header.
    #[arg(
        long,
        value_name = "USER:PASS",
        env = "POPBILL_SEND_BASIC",
        hide_env_values = true
    )]
    pub(crate) basic: Option<String>,

    /// API key (X-Api-Key), as turned on in POPBiLL's settings; replaces the sample's X-Api-Key header.
    #[arg(
        long,
        value_name = "KEY",
        env = "POPBILL_SEND_API_KEY",
        hide_env_values = true
    )]
    pub(crate) api_key: Option<String>,

    /// Sends after the first failed one (POPBiLL: 3, i.e. 4 sends in total). 0 sends once.
    #[arg(long, value_name = "N", default_value_t = RetryPolicy::POPBILL.retries)]
    pub(crate) retries: u32,

    /// Wait between a failed try and the next (POPBiLL: 5 minutes).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub(crate) retry_interval: Duration,

    /// No answer within this time is a failed try (connecting, TLS, sending and the answer together).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub(crate) timeout: Duration,

    /// Send with this Pb-Webhook-MID instead of the sample's.
    #[arg(long, value_name = "MID", conflicts_with = "fresh_mid")]
    pub(crate) mid: Option<String>,

    /// Send with a new, unique Pb-Webhook-MID, so the receiver sees a new event rather than a copy of the sample's (the same MID on every retry, as POPBiLL does).
    #[arg(long)]
    pub(crate) fresh_mid: bool,

    /// An extra header, "Name: value" (a custom header POPBiLL was asked to add); repeatable.
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    pub(crate) headers: Vec<String>,

    /// A PEM file of CA certificates to trust besides Mozilla's roots (a private CA); repeatable.
    #[arg(long, value_name = "FILE")]
    pub(crate) ca_file: Vec<PathBuf>,
}
