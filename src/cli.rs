//! Command-line flags. Each flag also reads an environment variable, and
//! wins over both the config file and the `POPBILL_BRIDGE_SECTION__KEY`
//! variables.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

use crate::config::Config;
use crate::telemetry::logging::LogFormat;

#[derive(Debug, Parser)]
#[command(
    name = "popbill-bridge",
    version,
    about = "Receives POPBiLL webhook deliveries and publishes them to Kafka; answers OK only after Kafka confirmed the write.",
    long_about = "Receives POPBiLL webhook deliveries and publishes them to Kafka; answers OK only after \
Kafka confirmed the write (acks=all, idempotent producer), and 503 with Retry-After when it could \
not, so POPBiLL retries and nothing is lost.\n\n\
Settings come from, in rising precedence: built-in defaults, the TOML file given with --config \
(every setting is documented in config/popbill-bridge.toml), environment variables named \
POPBILL_BRIDGE_<SECTION>__<KEY> (e.g. POPBILL_BRIDGE_KAFKA__BROKERS, \
POPBILL_BRIDGE_KAFKA__PROPERTIES__SASL_PASSWORD), and the flags below.\n\n\
Try it without Kafka:  popbill-bridge --dev\n\n\
Without a command it serves; the commands are tools around it: `send` posts a sample delivery \
to a URL the way POPBiLL does (to check a deployment), `asyncapi` prints the AsyncAPI document \
of the topics the configuration produces.",
    args_conflicts_with_subcommands = true,
    after_help = "Endpoints: POST <listen><server.webhook_path> for POPBiLL; GET /metrics, /healthz, /readyz on --admin-listen.\n\
Exit status: 0 stopped in order; 1 stopped with deliveries left unflushed; 2 configuration or start-up error; \
3 fatal Kafka client error (restart it); 4 a kafka.secret_files file changed (start it again); 130 a second stop signal."
)]
pub struct Cli {
    /// Without a command, the bridge serves.
    #[command(subcommand)]
    pub command: Option<crate::commands::Command>,

    /// TOML configuration file.
    #[arg(short, long, env = "POPBILL_BRIDGE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Address for POPBiLL's deliveries [default: 0.0.0.0:8080; 127.0.0.1:8080 with --dev].
    #[arg(long, env = "POPBILL_BRIDGE_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,

    /// Address for /metrics, /healthz and /readyz [default: 0.0.0.0:9090; 127.0.0.1:9090 with --dev].
    #[arg(long, env = "POPBILL_BRIDGE_ADMIN_LISTEN", value_name = "ADDR")]
    pub admin_listen: Option<SocketAddr>,

    /// Kafka bootstrap servers, host:port[,host:port]. Required unless --dev.
    #[arg(long, env = "POPBILL_BRIDGE_BROKERS", value_name = "LIST")]
    pub brokers: Option<String>,

    /// Log output format.
    #[arg(
        long,
        env = "POPBILL_BRIDGE_LOG_FORMAT",
        value_enum,
        value_name = "FORMAT"
    )]
    pub(crate) log_format: Option<LogFormat>,

    /// Run against an embedded in-process Kafka (librdkafka's mock cluster).
    /// For trying the bridge out: NOTHING IS DURABLE.
    #[arg(long, conflicts_with = "brokers")]
    pub dev: bool,

    /// Load and validate the configuration, print it (secrets redacted), and exit.
    #[arg(long)]
    pub check_config: bool,
}

impl Cli {
    /// Applies the flags over a loaded configuration.
    pub fn apply(&self, cfg: &mut Config) {
        if let Some(a) = self.listen {
            cfg.server.listen = a;
        }
        if let Some(a) = self.admin_listen {
            cfg.server.admin_listen = a;
        }
        if let Some(b) = &self.brokers {
            cfg.kafka.brokers = b.clone();
        }
        if let Some(f) = self.log_format {
            cfg.log.format = f;
        }
    }
}
