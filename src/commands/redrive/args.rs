//! The command line of `popbill-bridge redrive`.

use std::path::PathBuf;
use std::time::SystemTime;

#[derive(Debug, clap::Args)]
#[command(
    about = "Move deliveries the current configuration now accepts from the fallback or dead-letter topic to their routed topic.",
    long_about = "Reads the fallback topic (or the dead-letter topic, or any topic the bridge wrote), \
rebuilds each delivery from its record, checks and routes it with the current configuration, and \
publishes those that now go to another topic — through the bridge's duplicate detection, so an event \
already published is not published twice (a re-drive run twice publishes nothing the second time). \
Re-driven records carry popbill-bridge-redriven-from: <topic>/<partition>/<offset>; everything else \
is left where it is.\n\n\
Progress is committed only for finished records (consumer group <kafka.client_id>-redrive-<topic>): \
run it again to resume. Ctrl-C or SIGTERM stops it in order: the records in flight are finished and \
committed, then it exits with status 130 (a second signal stops it at once). The configuration is \
read exactly as for serving (--config, POPBILL_BRIDGE_* variables, --brokers).",
    after_help = "Examples:\n  popbill-bridge redrive --config bridge.toml --dry-run\n  popbill-bridge redrive --config bridge.toml --from dead-letter --since 2025-11-14T00:00:00+09:00 --limit 1000"
)]
pub struct RedriveArgs {
    /// TOML configuration file, as for serving (its routes decide where deliveries go now).
    #[arg(short, long, env = "POPBILL_BRIDGE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Kafka bootstrap servers, host:port[,host:port] (overrides kafka.brokers).
    #[arg(long, env = "POPBILL_BRIDGE_BROKERS", value_name = "LIST")]
    pub brokers: Option<String>,

    /// What to read: `fallback` (routes.fallback), `dead-letter` (dead_letter.topic), or a topic name.
    #[arg(long, default_value = "fallback", value_name = "SOURCE")]
    pub from: String,

    /// Only records written at or after this time (RFC 3339, e.g. 2025-11-14T09:00:00+09:00).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub since: Option<SystemTime>,

    /// Only records written before this time (RFC 3339).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub until: Option<SystemTime>,

    /// Stop after this many records were looked at (re-driven or left).
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,

    /// Print what would be done; publish and commit nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Start from the beginning (or --since), not from where the last run stopped.
    #[arg(long)]
    pub from_start: bool,
}

fn parse_time(s: &str) -> Result<SystemTime, String> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|e| {
            format!("{s:?} is not an RFC 3339 time (e.g. 2025-11-14T09:30:00+09:00): {e}")
        })?;
    Ok(SystemTime::from(t))
}

#[cfg(test)]
mod tests;
