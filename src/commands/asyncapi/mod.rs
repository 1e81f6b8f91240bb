//! `popbill-bridge asyncapi`: an AsyncAPI 3.0 document of the topics the
//! configuration produces, for the teams that consume them (client
//! generators, documentation portals, schema checks).
//!
//! Everything comes from the same sources as serving: the routes
//! ([`Router`](crate::route::Router)), the topic settings, the CloudEvents settings, and for the
//! records themselves the bridge's own header builder
//! ([`record::headers`](crate::kafka::record::headers)) applied to the sample deliveries, so the examples
//! are exactly what the bridge writes. Brokers play no part.
//!
//! One channel per topic (routed topics, the fallback, the dead-letter
//! topic); the ledger is the bridge's own bookkeeping and is left out. Each
//! route is one message: its payload schema (by webhook type, from
//! POPBiLL's documented fields; unknown fields allowed), its headers (the
//! `pb-webhook-*` ones POPBiLL sent, `popbill-bridge-*` and the CloudEvents
//! `ce_*` attributes) and its Kafka key.
//!
//! The parts, each with one job: `document` assembles
//! the document from the routes; `description` is its prose; `kind`
//! says what a message is about; `message` builds one message, with its
//! `headers` schema, its `payload` schema (from the `products`
//! table), its Kafka `bindings` and its `examples`; `yaml` prints it
//! in block style.

mod bindings;
mod description;
mod document;
mod examples;
mod headers;
mod kind;
mod message;
mod payload;
mod products;
mod yaml;

use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::Config;

pub use document::document;
pub use payload::payload_schema_names;
use yaml::to_yaml;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Json,
    Yaml,
}

#[derive(Debug, clap::Args)]
#[command(
    about = "Print an AsyncAPI 3.0 document of the Kafka topics this configuration produces.",
    long_about = "Print an AsyncAPI 3.0 document of the Kafka topics this configuration produces: \
one channel per routed topic plus the fallback and the dead-letter topic (the ledger is internal \
and left out), each record's payload schema by webhook type, its headers (pb-webhook-*, \
popbill-bridge-*, CloudEvents ce_*), its key, the Kafka bindings (topic, partitions and replicas \
from topics.*) and examples built from the sample deliveries.\n\n\
The configuration is read exactly as for serving (--config, POPBILL_BRIDGE_* variables); no \
Kafka is needed. docs/asyncapi.json is this output for the built-in defaults.",
    after_help = "Example:  popbill-bridge asyncapi --config /etc/popbill-bridge/popbill-bridge.toml --format yaml > popbill-topics.yaml"
)]
pub struct AsyncapiArgs {
    /// TOML configuration file, as for serving (the routes, topic and CloudEvents settings shape the document).
    #[arg(short, long, env = "POPBILL_BRIDGE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Output format. YAML is the same document in block style.
    #[arg(long, value_enum, default_value = "json", value_name = "FORMAT")]
    pub format: Format,

    /// Write to FILE instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

pub(crate) fn run(args: AsyncapiArgs) -> ExitCode {
    let cfg = match Config::load(args.config.as_deref(), std::env::vars()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("popbill-bridge asyncapi: {e}");
            return ExitCode::from(2);
        }
    };
    let text = match render(&cfg, args.format) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("popbill-bridge asyncapi: {e}");
            return ExitCode::from(2);
        }
    };
    match args.output {
        Some(path) => {
            if let Err(e) = std::fs::write(&path, text) {
                eprintln!(
                    "popbill-bridge asyncapi: cannot write {}: {e}",
                    path.display()
                );
                return ExitCode::FAILURE;
            }
        }
        None => {
            use std::io::Write as _;
            let mut out = std::io::stdout().lock();
            // A closed pipe (`| head`) is the reader's choice, not an error.
            match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                Err(e) => {
                    eprintln!("popbill-bridge asyncapi: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    ExitCode::SUCCESS
}

/// The document as text, ending with a newline.
pub fn render(cfg: &Config, format: Format) -> Result<String, String> {
    let doc = document(cfg)?;
    Ok(match format {
        Format::Json => {
            let mut s = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
            s.push('\n');
            s
        }
        Format::Yaml => to_yaml(&doc),
    })
}
