//! `popbill-bridge asyncapi`: an AsyncAPI 3.0 document of the topics the
//! configuration produces, for the teams that consume them (client
//! generators, documentation portals, schema checks).
//!
//! Everything comes from the same sources as serving: the routes
//! ([`Router`]), the topic settings, the CloudEvents settings, and for the
//! records themselves the bridge's own header builder
//! ([`record::headers`]) applied to the sample deliveries, so the examples
//! are exactly what the bridge writes. Brokers play no part.
//!
//! One channel per topic (routed topics, the fallback, the dead-letter
//! topic); the ledger is the bridge's own bookkeeping and is left out. Each
//! route is one message: its payload schema (by webhook type, from
//! POPBiLL's documented fields; unknown fields allowed), its headers (the
//! `pb-webhook-*` ones POPBiLL sent, `popbill-bridge-*` and the CloudEvents
//! `ce_*` attributes) and its Kafka key.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use hyper::HeaderMap;
use hyper::header::{HeaderName, HeaderValue};
use rdkafka::message::Headers as _;
use serde_json::{Map, Value, json};

use crate::commands::samples::{self, Sample};
use crate::config::Config;
use crate::dedup::identity::{Identity, Namespace};
use crate::delivery::Delivery;
use crate::kafka::record;
use crate::kafka::record::CloudEventsConfig;
use crate::labels::RejectReason;
use crate::route::{Route, Router};
use crate::webhook::DEAD_LETTER_REASON;

/// The Kafka bindings' version this document uses.
const KAFKA_BINDING: &str = "0.5.0";

/// Reject reasons that send a delivery to the dead-letter topic, as the
/// bridge decides them ([`RejectReason::dead_letters`]).
fn dead_letter_reasons() -> Vec<&'static str> {
    RejectReason::ALL
        .iter()
        .filter(|r| r.dead_letters())
        .map(|r| r.as_str())
        .collect()
}

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

pub fn run(args: AsyncapiArgs) -> ExitCode {
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

/// The AsyncAPI document for `cfg`.
pub fn document(cfg: &Config) -> Result<Value, String> {
    let router = Router::new(&cfg.routes, &cfg.dead_letter).map_err(|e| e.join("; "))?;
    let samples = samples::all();
    let ce = &cfg.cloudevents;

    let mut channels = Map::new();
    let mut operations = Map::new();
    let mut messages = Map::new();
    let mut schemas = Map::new();
    let mut message_ids = BTreeSet::new();
    // Topics in route order; several routes may share one topic.
    let mut by_topic: Vec<(&str, Vec<&Route>)> = Vec::new();
    for r in router.routes() {
        match by_topic.iter_mut().find(|(t, _)| *t == &*r.topic) {
            Some((_, rs)) => rs.push(r),
            None => by_topic.push((&r.topic, vec![r])),
        }
    }
    let dead_letter_topic = router.dead_letter().map(|r| r.topic.clone());
    let fallback_topic = router.fallback().topic.clone();
    let publish_summary = publish_summary(cfg.kafka.transactions.enabled);

    for (topic, routes) in by_topic {
        let mut channel_messages = Map::new();
        let mut summaries = Vec::new();
        for r in routes {
            let kind = if dead_letter_topic.as_deref() == Some(&*r.topic) && r.is_fallback {
                Kind::DeadLetter
            } else if r.is_fallback {
                Kind::Fallback
            } else {
                let (t, e) = r.label.split_once(':').unwrap_or((&r.label, ""));
                Kind::Routed {
                    webhook_type: t,
                    event_type: e,
                }
            };
            let id = unique_id(&mut message_ids, &kind.message_id());
            let (message, schema) = message(&kind, &r.topic, ce, &samples);
            if let Some((name, s)) = schema {
                schemas.entry(name).or_insert(s);
            }
            summaries.push(kind.summary());
            messages.insert(id.clone(), message);
            channel_messages.insert(
                id.clone(),
                json!({ "$ref": format!("#/components/messages/{id}") }),
            );
        }
        let channel_id = topic.to_string();
        let description = if *topic == *fallback_topic {
            "Deliveries whose webhook and event type match no route: unknown webhook types \
             (SMS, fax, ...), unknown event types of known webhooks, deliveries without an event \
             type. Created on first use."
                .to_string()
        } else if dead_letter_topic.as_deref() == Some(topic) {
            "Malformed deliveries from verified senders (valid credentials or an allowed \
             source), kept as they came with the reason in `popbill-bridge-rejection-reason` and \
             answered OK, so a permanently broken body does not loop through POPBiLL's retries. \
             Created on first use."
                .to_string()
        } else {
            summaries.join("\n\n")
        };
        let op_messages: Vec<Value> = channel_messages
            .keys()
            .map(|m| json!({ "$ref": format!("#/channels/{channel_id}/messages/{m}") }))
            .collect();
        channels.insert(
            channel_id.clone(),
            json!({
                "address": topic,
                "title": topic,
                "description": description,
                "messages": channel_messages,
                "bindings": { "kafka": channel_binding(cfg, topic) },
            }),
        );
        operations.insert(
            format!("publish.{channel_id}"),
            json!({
                "action": "send",
                "title": format!("Publish to {topic}"),
                "summary": publish_summary,
                "channel": { "$ref": format!("#/channels/{channel_id}") },
                "messages": op_messages,
            }),
        );
    }

    Ok(json!({
        "asyncapi": "3.0.0",
        "id": "urn:com:popbill:bridge",
        "info": {
            "title": "popbill-bridge topics",
            "version": env!("CARGO_PKG_VERSION"),
            "description": info(cfg.kafka.transactions.enabled),
            "license": { "name": "Apache-2.0", "url": "https://www.apache.org/licenses/LICENSE-2.0" },
            "externalDocs": {
                "description": "The Kafka record (key, headers, CloudEvents attributes)",
                "url": "https://github.com/cloudevents/spec/blob/main/cloudevents/bindings/kafka-protocol-binding.md",
            },
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": schemas,
            "messages": messages,
        },
    }))
}

/// The document's description; what it says about delivery and reading
/// depends on `kafka.transactions.enabled`.
fn info(transactions: bool) -> String {
    let delivery = if transactions {
        DELIVERY_TRANSACTIONS
    } else {
        DELIVERY_AT_LEAST_ONCE
    };
    format!("{INFO_RECORD}{delivery}{INFO_BODIES}")
}

/// What the publish operations say, by `kafka.transactions.enabled`.
fn publish_summary(transactions: bool) -> &'static str {
    if transactions {
        "popbill-bridge writes each delivery routed here in a Kafka transaction (acks=all), with its duplicates-ledger line, and answers POPBiLL OK once the transaction committed. Read with isolation.level=read_committed."
    } else {
        "popbill-bridge writes each delivery routed here once Kafka has it (acks=all, idempotent producer), then answers POPBiLL OK."
    }
}

const DELIVERY_TRANSACTIONS: &str = "**Reading: set `isolation.level=read_committed`.** \
Every record is written in a Kafka transaction, and POPBiLL is answered OK only once it \
committed; a delivery whose transaction aborted is answered 503 and sent again. A consumer \
reading `read_committed` sees exactly one record per event (limits: docs/duplicates.md); one \
reading `read_uncommitted` also sees the records of aborted transactions, as duplicates. The \
Java client's default is `read_uncommitted`: set `isolation.level=read_committed` (Kafka \
Streams and Connect: their consumer's `isolation.level`). librdkafka and the clients built on it \
(confluent-kafka, rust-rdkafka) read committed by default. Consumers should still deduplicate \
by `ce_id` (their own restarts re-read, and a manual re-run with a new MID is a new event). \
POPBiLL promises no order and retries minutes apart: order a document's events by the body's \
`stateDT` and treat its state as moving forward.\n\n";

const DELIVERY_AT_LEAST_ONCE: &str = "**Delivery.** At least once: a copy of an event already \
published is normally recognised and not written again, but consumers should still deduplicate \
by `ce_id`. POPBiLL promises no order and retries minutes apart: order a document's events by \
the body's `stateDT` and treat its state as moving forward.\n\n";

const INFO_RECORD: &str = "Kafka topics written by popbill-bridge, which receives POPBiLL webhook \
deliveries (e-tax invoices, statements, cash receipts, hometax crawls, KakaoTalk results) and \
publishes each to the topic its webhook and event type are routed to.\n\n\
**The record.** Value: the body exactly as POPBiLL sent it, byte for byte (JSON, UTF-8). \
Key: `corpNum:itemKey` when both are known, so one document's events share a partition and \
stay in order; otherwise the MID (`Pb-Webhook-MID`). Timestamp: when the bridge received the \
request. Headers: every header POPBiLL sent under its lower-case name (`pb-webhook-*`, \
`content-type`, any custom header; never credentials nor HTTP-hop headers), \
`popbill-bridge-received-at`, and the CloudEvents attributes in binary mode (Kafka protocol \
binding: `ce_specversion`, `ce_id`, `ce_source`, `ce_type`, `ce_time`, `ce_subject`).\n\n";

const INFO_BODIES: &str = "**Bodies.** Fields vary by product and POPBiLL adds fields without notice: every payload schema \
allows unknown properties. Optional fields may be absent, empty or null; `stateCode` is a number \
or a string depending on the product; dates are `yyyyMMddHHmmss` or `yyyyMMdd` in Korean time \
(UTC+9).";

/// What a message is about.
enum Kind<'a> {
    Routed {
        webhook_type: &'a str,
        event_type: &'a str,
    },
    Fallback,
    DeadLetter,
}

impl Kind<'_> {
    fn message_id(&self) -> String {
        match self {
            Kind::Routed {
                webhook_type,
                event_type,
            } => format!("{webhook_type}.{event_type}")
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                        c
                    } else {
                        '_'
                    }
                })
                .collect(),
            Kind::Fallback => "Unrouted".into(),
            Kind::DeadLetter => "DeadLetter".into(),
        }
    }

    fn summary(&self) -> String {
        match self {
            Kind::Routed {
                webhook_type,
                event_type,
            } => {
                let what = product(webhook_type)
                    .and_then(|p| p.events.iter().find(|(e, _)| e == event_type))
                    .map(|(_, d)| *d)
                    .unwrap_or("a configured route");
                format!("`{webhook_type}` `{event_type}`: {what}.")
            }
            Kind::Fallback => "Deliveries that match no route.".into(),
            Kind::DeadLetter => "Malformed deliveries.".into(),
        }
    }
}

fn unique_id(seen: &mut BTreeSet<String>, base: &str) -> String {
    let mut id = base.to_string();
    let mut n = 2;
    while !seen.insert(id.clone()) {
        id = format!("{base}_{n}");
        n += 1;
    }
    id
}

/// `TAXINVOICE.STATE:CLOSEDOWN` → `TaxinvoiceStateClosedown`.
fn camel(s: &str) -> String {
    s.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|p| !p.is_empty())
        .map(|p| {
            let lower = p.to_ascii_lowercase();
            let mut cs = lower.chars();
            match cs.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + cs.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

/// The message for one route, and the payload schema it refers to (name
/// and schema) when it has one of its own.
fn message(
    kind: &Kind<'_>,
    topic: &str,
    ce: &CloudEventsConfig,
    samples: &[Sample],
) -> (Value, Option<(String, Value)>) {
    let headers = headers_schema(kind, ce);
    let (name, title, summary, content_type, payload, schema, key) = match kind {
        Kind::Routed {
            webhook_type,
            event_type,
        } => {
            let p = product(webhook_type);
            let (schema_name, schema) = match p {
                Some(p) => (p.schema.to_string(), payload_schema(p)),
                None => ("UnknownWebhookBody".to_string(), unknown_body_schema()),
            };
            (
                camel(&format!("{webhook_type}:{event_type}")),
                format!("{webhook_type}:{event_type}"),
                kind.summary(),
                "application/json",
                json!({ "$ref": format!("#/components/schemas/{schema_name}") }),
                Some((schema_name, schema)),
                key_schema(p.is_some_and(|p| p.has_item_key) || p.is_none()),
            )
        }
        Kind::Fallback => (
            "Unrouted".into(),
            "Unrouted delivery".into(),
            "A delivery whose webhook and event type match no route.".into(),
            "application/json",
            json!({ "$ref": "#/components/schemas/UnknownWebhookBody" }),
            Some(("UnknownWebhookBody".to_string(), unknown_body_schema())),
            key_schema(true),
        ),
        Kind::DeadLetter => (
            "DeadLetter".into(),
            "Dead-lettered delivery".into(),
            "A malformed delivery from a verified sender, kept as it came.".into(),
            "application/octet-stream",
            json!({
                "type": "string",
                "format": "binary",
                "description": "The request body exactly as received: not JSON, not a JSON object, or not UTF-8. Its content type is the `content-type` header, if the sender gave one.",
            }),
            None,
            key_schema(false),
        ),
    };
    let mut m = json!({
        "name": name,
        "title": title,
        "summary": summary,
        "contentType": content_type,
        "headers": headers,
        "payload": payload,
        "correlationId": {
            "description": "The event's identity: the MID, or a digest without one. Deduplicate by it.",
            "location": "$message.header#/ce_id",
        },
        "bindings": {
            "kafka": { "key": key, "bindingVersion": KAFKA_BINDING },
        },
    });
    if let Kind::Routed {
        webhook_type,
        event_type,
    } = kind
    {
        let examples: Vec<Value> = samples
            .iter()
            .filter(|s| {
                s.webhook_type() == *webhook_type && s.event_type().as_deref() == Some(*event_type)
            })
            .filter_map(|s| example(s, topic, ce))
            .collect();
        if !examples.is_empty() {
            m["examples"] = Value::Array(examples);
        }
    }
    (m, schema)
}

/// The record's key.
fn key_schema(document_key: bool) -> Value {
    if document_key {
        json!({
            "type": "string",
            "description": "`corpNum:itemKey` (the member's business registration number and POPBiLL's document id) when both are known, so one document's events share a partition and stay in order; otherwise the MID (`Pb-Webhook-MID`). No key when neither is known.",
            "examples": ["1234567890:025111409301000001", "025111413000-0f1e2d3c4b5a69788796a10"],
        })
    } else {
        json!({
            "type": "string",
            "description": "The MID (`Pb-Webhook-MID`): these bodies carry no `itemKey`. No key when the delivery had no MID.",
            "examples": ["025111413000-0f1e2d3c4b5a69788796a10"],
        })
    }
}

/// A text header.
fn text(description: &str) -> Value {
    json!({ "type": "string", "description": description })
}

fn headers_schema(kind: &Kind<'_>, ce: &CloudEventsConfig) -> Value {
    let mut p = Map::new();
    let mut webhook_type = text(
        "`Pb-Webhook-Type` as POPBiLL sent it: the product and stream, e.g. `TAXINVOICE.STATE`.",
    );
    let mut event_type = text(
        "`Pb-Webhook-EventType` as POPBiLL sent it (tax invoices, statements and cash receipts only; the body's `eventType` otherwise). Wins over the body's `eventType` for routing.",
    );
    let prefix = regex_escape(&ce.type_prefix);
    let mut ce_type = json!({
        "type": "string",
        "description": format!("`{}.<webhook type>.<event type>` (`unknown` without an event type); characters outside `[A-Za-z0-9._:-]` become `_`.", ce.type_prefix),
        "pattern": format!("^{prefix}\\."),
    });
    match kind {
        Kind::Routed {
            webhook_type: t,
            event_type: e,
        } => {
            webhook_type["const"] = json!(t);
            event_type["const"] = json!(e);
            ce_type = json!({
                "type": "string",
                "description": "`<cloudevents.type_prefix>.<webhook type>.<event type>`.",
                "const": record::ce_type_of(ce, t, e),
            });
        }
        Kind::Fallback => {}
        Kind::DeadLetter => {
            webhook_type["description"] =
                json!("`Pb-Webhook-Type` as POPBiLL sent it, when it did.");
        }
    }
    p.insert("pb-webhook-type".into(), webhook_type);
    p.insert(
        "pb-webhook-mid".into(),
        text("`Pb-Webhook-MID`: POPBiLL's identifier of the event. Opaque; POPBiLL's retries carry the same MID."),
    );
    p.insert(
        "pb-webhook-corpnum".into(),
        text("`Pb-Webhook-Corpnum`: the member's business registration number, 10 digits."),
    );
    p.insert("pb-webhook-eventtype".into(), event_type);
    p.insert(
        "content-type".into(),
        json!({ "type": "string", "description": "The request's content type: the CloudEvents data content type.", "examples": ["application/json"] }),
    );
    p.insert(
        record::RECEIVED_AT.into(),
        json!({ "type": "string", "format": "date-time", "description": "When the bridge received the request: RFC 3339, UTC, milliseconds. Also the record's timestamp." }),
    );
    if matches!(kind, Kind::Routed { .. }) {
        p.insert(
            record::REDRIVEN_FROM.into(),
            json!({ "type": "string", "pattern": "^.+/[0-9]+/[0-9]+$", "description": "Only on records `popbill-bridge redrive` wrote: where the delivery was before, `<topic>/<partition>/<offset>`." }),
        );
    }
    if matches!(kind, Kind::DeadLetter) {
        p.insert(
            DEAD_LETTER_REASON.into(),
            json!({ "type": "string", "description": "Why the delivery could not be routed.", "enum": dead_letter_reasons() }),
        );
    }
    p.insert(
        "ce_specversion".into(),
        json!({ "type": "string", "const": "1.0", "description": "CloudEvents specification version." }),
    );
    p.insert(
        "ce_id".into(),
        json!({ "type": "string", "description": "The event's identity: the MID; without one `content:<32 hex>` (a digest of webhook type, corpNum, itemKey, event type, stateCode and stateDT) or `sha256:<32 hex>` (a digest of the body). Copies of one event carry the same id: deduplicate by it." }),
    );
    p.insert(
        "ce_source".into(),
        json!({ "type": "string", "const": ce.source, "description": "`cloudevents.source`." }),
    );
    p.insert("ce_type".into(), ce_type);
    p.insert(
        "ce_time".into(),
        json!({ "type": "string", "format": "date-time", "description": "The body's `eventDT` as RFC 3339 in Korean time (`2025-11-14T09:30:11+09:00`); the receive time when absent or not a `yyyyMMddHHmmss` date-time." }),
    );
    p.insert(
        "ce_subject".into(),
        text("The body's `itemKey` (POPBiLL's document id), when present."),
    );
    let mut required = vec![
        record::RECEIVED_AT,
        "ce_specversion",
        "ce_id",
        "ce_source",
        "ce_type",
        "ce_time",
    ];
    match kind {
        Kind::DeadLetter => required.push(DEAD_LETTER_REASON),
        _ => required.insert(0, "pb-webhook-type"),
    }
    json!({
        "type": "object",
        "description": "Kafka record headers (values are UTF-8 text). Besides these, every other header POPBiLL sent travels under its lower-case name (custom headers a partner asked for, such as `pb-custom-tenant`); credentials and HTTP-hop headers never do.",
        "properties": p,
        "required": required,
        "additionalProperties": { "type": "string" },
    })
}

/// Escapes ECMAScript's syntax characters only: validators compile
/// patterns with the `u` flag, where any other escape (`\-`) is an error.
fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\^$.*+?()[]{}|/".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The Kafka channel binding: the topic and, when the bridge creates its
/// topics, their partitions, replicas and settings.
fn channel_binding(cfg: &Config, topic: &str) -> Value {
    let mut b = json!({ "topic": topic, "bindingVersion": KAFKA_BINDING });
    if cfg.topics.create {
        b["partitions"] = json!(cfg.topics.partitions);
        b["replicas"] = json!(cfg.topics.replication_factor);
        let mut settings = Map::new();
        for (k, v) in &cfg.topics.settings {
            // The binding's schema types these; everything else is text,
            // as Kafka takes it.
            let typed = match k.as_str() {
                "cleanup.policy" => Some(json!(v.split(',').map(str::trim).collect::<Vec<_>>())),
                "retention.ms"
                | "retention.bytes"
                | "delete.retention.ms"
                | "max.message.bytes" => v.trim().parse::<i64>().ok().map(Value::from),
                _ => Some(json!(v)),
            };
            if let Some(t) = typed {
                settings.insert(k.clone(), t);
            }
        }
        if !settings.is_empty() {
            b["topicConfiguration"] = Value::Object(settings);
        }
    }
    b
}

/// One example: the sample delivery as the bridge writes it.
fn example(s: &Sample, topic: &str, ce: &CloudEventsConfig) -> Option<Value> {
    let mut request = HeaderMap::new();
    for (k, v) in &s.headers {
        request.append(
            HeaderName::from_bytes(k.to_ascii_lowercase().as_bytes()).ok()?,
            HeaderValue::from_str(v).ok()?,
        );
    }
    let body = s.body.as_bytes();
    let delivery = Delivery::parse(&request, body).ok()?;
    let identity = Identity::of(&delivery, Namespace::Routed, topic);
    // A receive time a quarter second after the event time.
    let received = delivery
        .event_dt
        .as_deref()
        .and_then(record::korean_datetime_to_rfc3339)
        .and_then(|t| humantime::parse_rfc3339(&format!("{}Z", &t[..19])).ok())
        .map(|t| t - Duration::from_secs(9 * 3600) + Duration::from_millis(250))
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let rec = record::headers(&request, &delivery, &identity.id, ce, received);
    let mut headers = Map::new();
    for h in rec.iter() {
        let v = String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned();
        headers.insert(h.key.to_string(), Value::String(v));
    }
    let key = delivery.key().map(|k| k.into_owned());
    let mut summary = s.note.clone().unwrap_or_else(|| s.name.replace('-', " "));
    if let Some(k) = key {
        summary.push_str(&format!(" (key `{k}`)"));
    }
    Some(json!({
        "name": s.name,
        "summary": summary,
        "headers": headers,
        "payload": s.body_json()?,
    }))
}

// ---------------------------------------------------------------------------
// Payload schemas, by webhook type. The fields are POPBiLL's documented ones
// (shared/popbill-webhook.md) and those crates/popbill-events types; every
// schema allows more.

#[derive(Clone, Copy)]
enum F {
    /// Text; may be empty or null.
    Text,
    /// A 10-digit business registration number.
    CorpNum,
    /// `yyyyMMddHHmmss`, Korean time.
    DateTime,
    /// `yyyyMMdd`.
    Date,
    /// A number or its digits as a string, by product.
    StateCode,
    /// A number (or null).
    Int,
    /// A number or a string.
    IntOrText,
    /// An amount: a number or its digits as a string.
    Amount,
}

struct Product {
    webhook_type: &'static str,
    schema: &'static str,
    title: &'static str,
    has_item_key: bool,
    events: &'static [(&'static str, &'static str)],
    fields: &'static [(&'static str, F, &'static str)],
}

const TAX_INVOICE_FIELDS: &[(&str, F, &str)] = &[
    (
        "corpNum",
        F::CorpNum,
        "The member's business registration number.",
    ),
    ("itemKey", F::Text, "POPBiLL's document id (18 characters)."),
    (
        "ntsConfirmNum",
        F::Text,
        "National Tax Service confirmation number (24 characters).",
    ),
    (
        "ntssendDT",
        F::DateTime,
        "When the invoice was filed with the National Tax Service.",
    ),
    (
        "ntsresultDT",
        F::DateTime,
        "When the National Tax Service's result came.",
    ),
    (
        "ntssendErrCode",
        F::Text,
        "Filing result code: `SUC001` is success.",
    ),
    (
        "stateCode",
        F::StateCode,
        "300 issued, 301 before filing, 302 waiting to file, 303 filed and waiting for the result, 304 filed OK, 305 filing failed, 600 issuance cancelled.",
    ),
    (
        "stateDT",
        F::DateTime,
        "When the document reached this state: order a document's events by it.",
    ),
    ("eventDT", F::DateTime, "When the event happened."),
];

const PRODUCTS: &[Product] = &[
    Product {
        webhook_type: "TAXINVOICE.STATE",
        schema: "TaxInvoiceState",
        title: "Tax invoice state event",
        has_item_key: true,
        events: &[
            ("Issue", "the seller issued and signed the tax invoice"),
            ("CancelIssue", "the issuance was cancelled"),
            ("CLOSEDOWN", "the buyer's business-status check finished"),
            (
                "NTS",
                "the invoice's state moved to 301, 304 or 305 (filing with the National Tax Service)",
            ),
            ("OPEN", "the buyer opened the invoice from the e-mail"),
            ("MANUAL", "a delivery re-run by hand from the POPBiLL site"),
        ],
        fields: TAX_INVOICE_FIELDS,
    },
    Product {
        webhook_type: "STATEMENT.STATE",
        schema: "StatementState",
        title: "Statement state event",
        has_item_key: true,
        events: &[
            ("Issue", "the statement was issued"),
            ("Cancel", "the statement was cancelled"),
            ("OPEN", "the recipient opened the statement"),
            ("MANUAL", "a delivery re-run by hand from the POPBiLL site"),
        ],
        fields: &[
            (
                "corpNum",
                F::CorpNum,
                "The member's business registration number.",
            ),
            ("itemKey", F::Text, "POPBiLL's document id."),
            ("invoiceNum", F::Text, "The statement's number."),
            ("mgtKey", F::Text, "The member's own document key."),
            (
                "stateCode",
                F::StateCode,
                "The statement's state; a string for statements.",
            ),
            (
                "stateDT",
                F::DateTime,
                "When the document reached this state: order a document's events by it.",
            ),
            ("issueDT", F::DateTime, "When the statement was issued."),
            ("eventDT", F::DateTime, "When the event happened."),
        ],
    },
    Product {
        webhook_type: "CASHBILL.STATE",
        schema: "CashbillState",
        title: "Cash receipt state event",
        has_item_key: true,
        events: &[
            ("Issue", "the cash receipt was issued"),
            (
                "NTS",
                "the cash receipt's filing with the National Tax Service progressed",
            ),
            ("MANUAL", "a delivery re-run by hand from the POPBiLL site"),
        ],
        fields: &[
            (
                "corpNum",
                F::CorpNum,
                "The member's business registration number.",
            ),
            (
                "franchiseCorpNum",
                F::CorpNum,
                "The franchise's business registration number.",
            ),
            ("itemKey", F::Text, "POPBiLL's document id."),
            ("tradeDate", F::Date, "The trade date."),
            (
                "confirmNum",
                F::Text,
                "National Tax Service confirmation number.",
            ),
            (
                "ntssendDT",
                F::DateTime,
                "When the receipt was filed with the National Tax Service.",
            ),
            (
                "ntsresultDT",
                F::DateTime,
                "When the National Tax Service's result came.",
            ),
            (
                "ntsresultCode",
                F::Text,
                "The National Tax Service's result code.",
            ),
            (
                "stateCode",
                F::StateCode,
                "The receipt's state; a number for cash receipts.",
            ),
            (
                "stateDT",
                F::DateTime,
                "When the document reached this state: order a document's events by it.",
            ),
            ("issueDT", F::DateTime, "When the receipt was issued."),
            ("eventDT", F::DateTime, "When the event happened."),
        ],
    },
    Product {
        webhook_type: "HT.TAXINVOICEXML",
        schema: "HometaxTaxInvoice",
        title: "Hometax tax-invoice crawl",
        has_item_key: false,
        events: &[(
            "HTTaxinvoice",
            "a tax invoice found by the hourly hometax crawl (pushed on the hour: bursts; bodies can be large)",
        )],
        fields: &[
            (
                "corpNum",
                F::CorpNum,
                "The member's business registration number, when in the body.",
            ),
            (
                "ntsconfirmNum",
                F::Text,
                "National Tax Service confirmation number (note the lower-case c).",
            ),
            ("writeDate", F::Date, "The invoice's date."),
            ("issueDT", F::DateTime, "When the invoice was issued."),
            (
                "sendDate",
                F::Date,
                "When the invoice was sent to the National Tax Service.",
            ),
            (
                "invoiceType",
                F::IntOrText,
                "The invoice type code (a number).",
            ),
            (
                "invoicerCorpNum",
                F::CorpNum,
                "The seller's business registration number.",
            ),
            ("invoicerCorpName", F::Text, "The seller's name."),
            (
                "invoiceeCorpNum",
                F::CorpNum,
                "The buyer's business registration number.",
            ),
            ("invoiceeCorpName", F::Text, "The buyer's name."),
            ("supplyCostTotal", F::Amount, "Total supply cost."),
            ("taxTotal", F::Amount, "Total tax."),
            ("totalAmount", F::Amount, "Total amount."),
            ("eventDT", F::DateTime, "When the event happened."),
        ],
    },
    Product {
        webhook_type: "HT.CASHBILL",
        schema: "HometaxCashbill",
        title: "Hometax cash-receipt crawl",
        has_item_key: false,
        events: &[("HTCashbill", "a cash receipt found by the hometax crawl")],
        fields: &[
            (
                "corpNum",
                F::CorpNum,
                "The member's business registration number, when in the body.",
            ),
            (
                "ntsconfirmNum",
                F::Text,
                "National Tax Service confirmation number.",
            ),
            ("tradeDate", F::Date, "The trade date."),
            ("tradeDT", F::DateTime, "The trade's date and time."),
            (
                "tradeType",
                F::Text,
                "Trade type, in Korean (e.g. `승인거래`).",
            ),
            (
                "tradeUsage",
                F::Text,
                "Trade usage, in Korean (e.g. `지출증빙용`).",
            ),
            (
                "invoiceType",
                F::Text,
                "Purchase or sale, in Korean (`매입`, `매출`).",
            ),
            ("totalAmount", F::Amount, "Total amount."),
            ("supplyCost", F::Amount, "Supply cost."),
            ("tax", F::Amount, "Tax."),
            ("serviceFee", F::Amount, "Service fee."),
            ("eventDT", F::DateTime, "When the event happened."),
        ],
    },
    Product {
        webhook_type: "KAKAO.STATE",
        schema: "KakaoState",
        title: "KakaoTalk message result",
        has_item_key: false,
        events: &[
            ("RESULT", "the result of a KakaoTalk message"),
            ("MANUAL", "a delivery re-run by hand from the POPBiLL site"),
        ],
        fields: &[
            (
                "corpNum",
                F::CorpNum,
                "The member's business registration number.",
            ),
            (
                "receiptNum",
                F::Text,
                "POPBiLL's receipt number of the send request.",
            ),
            ("requestNum", F::Text, "The member's own request number."),
            (
                "serialNum",
                F::Int,
                "The message's position in the request.",
            ),
            ("state", F::Int, "The message's state code."),
            ("result", F::Int, "The carrier's result code."),
            (
                "altResult",
                F::Int,
                "The result code of the alternative (SMS) send, if any.",
            ),
            ("contentType", F::Int, "The message's kind."),
            ("sendNum", F::Text, "The sender's number."),
            (
                "receiptDT",
                F::DateTime,
                "When POPBiLL accepted the request.",
            ),
            ("reserveDT", F::DateTime, "When the send was scheduled for."),
            ("sendDT", F::DateTime, "When it was sent."),
            ("resultDT", F::DateTime, "When the result came."),
            ("eventDT", F::DateTime, "When the event happened."),
        ],
    },
];

fn product(webhook_type: &str) -> Option<&'static Product> {
    PRODUCTS.iter().find(|p| p.webhook_type == webhook_type)
}

fn field_schema(kind: F, description: &str) -> Value {
    let (mut s, example): (Value, Value) = match kind {
        F::Text => (json!({ "type": ["string", "null"] }), Value::Null),
        F::CorpNum => (
            json!({ "type": ["string", "null"], "pattern": "^([0-9]{10})?$" }),
            json!("1234567890"),
        ),
        F::DateTime => (
            json!({ "type": ["string", "null"], "pattern": "^([0-9]{14})?$" }),
            json!("20251114093010"),
        ),
        F::Date => (
            json!({ "type": ["string", "null"], "pattern": "^([0-9]{8})?$" }),
            json!("20251114"),
        ),
        F::StateCode => (
            json!({ "type": ["integer", "string", "null"], "pattern": "^[0-9]*$" }),
            json!(300),
        ),
        F::Int => (json!({ "type": ["integer", "null"] }), Value::Null),
        F::IntOrText => (
            json!({ "type": ["integer", "string", "null"] }),
            Value::Null,
        ),
        F::Amount => (
            json!({ "type": ["integer", "string", "null"], "pattern": "^ *-?[0-9][0-9,]* *$|^$" }),
            json!("1100000"),
        ),
    };
    let note = match kind {
        F::DateTime => " `yyyyMMddHHmmss`, Korean time (UTC+9); empty or null when not set.",
        F::Date => " `yyyyMMdd`, Korean time; empty or null when not set.",
        F::StateCode => " A number, or its digits as a string.",
        F::Amount => " A number, or its digits as a string.",
        _ => "",
    };
    s["description"] = json!(format!("{description}{note}"));
    if !example.is_null() {
        s["examples"] = json!([example]);
    }
    s
}

fn payload_schema(p: &Product) -> Value {
    let mut props = Map::new();
    props.insert(
        "eventType".into(),
        json!({
            "type": "string",
            "description": format!(
                "The event type (the `Pb-Webhook-EventType` header wins when both are sent). Known values: {}; others may come.",
                p.events.iter().map(|(e, _)| format!("`{e}`")).collect::<Vec<_>>().join(", ")
            ),
            "examples": p.events.iter().map(|(e, _)| *e).collect::<Vec<_>>(),
        }),
    );
    for (name, kind, description) in p.fields {
        props.insert((*name).into(), field_schema(*kind, description));
    }
    json!({
        "type": "object",
        "title": p.title,
        "description": format!("The body of a `{}` delivery, exactly as POPBiLL sent it. More fields may come; optional fields may be absent, empty or null.", p.webhook_type),
        "properties": props,
        "additionalProperties": true,
    })
}

fn unknown_body_schema() -> Value {
    json!({
        "type": "object",
        "title": "Webhook body",
        "description": "A webhook body as POPBiLL sent it: a JSON object whose fields depend on the webhook type (see the other schemas for the known ones).",
        "properties": {
            "eventType": { "type": ["string", "null"], "description": "The event type, when in the body." },
            "corpNum": field_schema(F::CorpNum, "The member's business registration number, when in the body."),
            "itemKey": field_schema(F::Text, "POPBiLL's document id, when in the body."),
            "eventDT": field_schema(F::DateTime, "When the event happened, when in the body."),
        },
        "additionalProperties": true,
    })
}

/// The payload schema names, by webhook type, for the known products.
pub fn payload_schema_names() -> BTreeMap<&'static str, &'static str> {
    PRODUCTS
        .iter()
        .map(|p| (p.webhook_type, p.schema))
        .collect()
}

// ---------------------------------------------------------------------------
// YAML: JSON is YAML already; this writes the same value in block style.
// Strings are written as JSON strings (valid YAML double-quoted scalars),
// so nothing needs YAML's own quoting rules.

pub fn to_yaml(v: &Value) -> String {
    let mut out = String::new();
    match v {
        Value::Object(m) if !m.is_empty() => yaml_map(m, 0, &mut out),
        Value::Array(a) if !a.is_empty() => yaml_seq(a, 0, &mut out),
        _ => {
            out.push_str(&yaml_scalar(v));
            out.push('\n');
        }
    }
    out
}

fn yaml_scalar(v: &Value) -> String {
    match v {
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
        // Strings, numbers, booleans and null print the same in both.
        other => other.to_string(),
    }
}

fn yaml_key(k: &str) -> String {
    let plain = k
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '$' | '/'))
        && !matches!(
            k.to_ascii_lowercase().as_str(),
            "y" | "n" | "yes" | "no" | "on" | "off" | "true" | "false" | "null"
        );
    if plain {
        k.to_string()
    } else {
        Value::String(k.to_string()).to_string()
    }
}

fn is_block(v: &Value) -> bool {
    match v {
        Value::Object(m) => !m.is_empty(),
        Value::Array(a) => !a.is_empty(),
        _ => false,
    }
}

fn yaml_map(m: &Map<String, Value>, indent: usize, out: &mut String) {
    for (k, v) in m {
        out.push_str(&" ".repeat(indent));
        out.push_str(&yaml_key(k));
        out.push(':');
        yaml_value(v, indent, out);
    }
}

fn yaml_seq(a: &[Value], indent: usize, out: &mut String) {
    for v in a {
        out.push_str(&" ".repeat(indent));
        out.push('-');
        yaml_value(v, indent, out);
    }
}

/// After `key:` or `-`: a scalar on the same line, or a block below.
fn yaml_value(v: &Value, indent: usize, out: &mut String) {
    if !is_block(v) {
        out.push(' ');
        out.push_str(&yaml_scalar(v));
        out.push('\n');
        return;
    }
    out.push('\n');
    match v {
        Value::Object(m) => yaml_map(m, indent + 2, out),
        Value::Array(a) => yaml_seq(a, indent + 2, out),
        _ => unreachable!("is_block"),
    }
}

#[cfg(test)]
mod tests;
