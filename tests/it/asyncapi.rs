//! `popbill-bridge asyncapi`: the committed document is the generator's,
//! every topic of the configuration has its channel (and the ledger none),
//! the bindings follow `topics.*`, and every header and body field the
//! bridge writes for the sample deliveries is described. No broker needed.
//! (scripts/check-asyncapi.sh validates the documents with the official
//! AsyncAPI parser.)

use std::collections::BTreeSet;

use serde_json::Value;

use popbill_bridge::commands::asyncapi::{self, Format};
use popbill_bridge::commands::samples;
use popbill_bridge::config::Config;
use popbill_bridge::route::Router;

use crate::common::bridge_command;

const COMMITTED: &str = "docs/asyncapi.json";

fn path(rel: &str) -> String {
    format!("{}/{rel}", env!("CARGO_MANIFEST_DIR"))
}

fn doc(cfg: &Config) -> Value {
    asyncapi::document(cfg).expect("document")
}

fn channel_addresses(d: &Value) -> BTreeSet<String> {
    d["channels"]
        .as_object()
        .expect("channels")
        .values()
        .map(|c| c["address"].as_str().expect("address").to_string())
        .collect()
}

/// The message a channel's first message reference points to.
fn first_message<'a>(d: &'a Value, address: &str) -> &'a Value {
    let channel = d["channels"]
        .as_object()
        .expect("channels")
        .values()
        .find(|c| c["address"] == address)
        .unwrap_or_else(|| panic!("no channel for {address}"));
    let reference = channel["messages"]
        .as_object()
        .expect("messages")
        .values()
        .next()
        .expect("a message")["$ref"]
        .as_str()
        .expect("ref");
    let id = reference.rsplit('/').next().expect("id");
    &d["components"]["messages"][id]
}

#[test]
fn the_committed_document_is_the_generators_for_the_default_configuration() {
    let text = asyncapi::render(&Config::default(), Format::Json).expect("render");
    if std::env::var_os("UPDATE_ASYNCAPI").is_some() {
        std::fs::write(path(COMMITTED), &text).expect("write");
    }
    let committed = std::fs::read_to_string(path(COMMITTED)).expect("docs/asyncapi.json");
    let committed: Value = serde_json::from_str(&committed).expect("committed JSON");
    let generated: Value = serde_json::from_str(&text).expect("generated JSON");
    assert!(
        committed == generated,
        "{COMMITTED} is out of date. Regenerate it with\n  \
         UPDATE_ASYNCAPI=1 cargo test --test it asyncapi::\n\
         (or, with no POPBILL_BRIDGE_* variable set: cargo run -- asyncapi -o {COMMITTED}) \
         and commit it."
    );
}

#[test]
fn every_topic_has_a_channel_and_the_ledger_none() {
    let cfg = Config::default();
    let d = doc(&cfg);
    let router = Router::new(&cfg.routes, &cfg.dead_letter).expect("routes");
    let topics: BTreeSet<String> = router
        .routes()
        .iter()
        .map(|r| r.topic.to_string())
        .collect();
    assert_eq!(channel_addresses(&d), topics);
    assert!(topics.contains("popbill.unrouted") && topics.contains("popbill.deadletter"));
    let text = d.to_string();
    assert!(
        !text.contains(&cfg.dedup.ledger_topic),
        "the ledger is internal"
    );
    // One send operation per channel, on that channel.
    let ops = d["operations"].as_object().expect("operations");
    assert_eq!(ops.len(), topics.len());
    for op in ops.values() {
        assert_eq!(op["action"], "send");
    }
    assert_eq!(d["asyncapi"], "3.0.0");

    let mut no_dl = Config::default();
    no_dl.dead_letter.enabled = false;
    assert!(!channel_addresses(&doc(&no_dl)).contains("popbill.deadletter"));
}

#[test]
fn bindings_follow_the_topic_settings() {
    let mut cfg = Config::default();
    cfg.topics.partitions = 12;
    cfg.topics.replication_factor = 2;
    cfg.topics
        .settings
        .insert("retention.ms".into(), "604800000".into());
    cfg.topics
        .settings
        .insert("cleanup.policy".into(), "delete".into());
    let d = doc(&cfg);
    for c in d["channels"].as_object().expect("channels").values() {
        let k = &c["bindings"]["kafka"];
        assert_eq!(k["topic"], c["address"]);
        assert_eq!(k["partitions"], 12);
        assert_eq!(k["replicas"], 2);
        assert_eq!(k["topicConfiguration"]["retention.ms"], 604_800_000);
        assert_eq!(
            k["topicConfiguration"]["cleanup.policy"],
            serde_json::json!(["delete"])
        );
        assert_eq!(k["topicConfiguration"]["min.insync.replicas"], "2");
    }
    let issue = first_message(&d, "popbill.taxinvoice.state.issue");
    assert_eq!(issue["bindings"]["kafka"]["key"]["type"], "string");
    assert!(
        issue["bindings"]["kafka"]["key"]["description"]
            .as_str()
            .expect("text")
            .contains("corpNum:itemKey")
    );
    let kakao = first_message(&d, "popbill.kakao.state.result");
    assert!(
        kakao["bindings"]["kafka"]["key"]["description"]
            .as_str()
            .expect("text")
            .starts_with("The MID")
    );

    // Topics the bridge does not create: their shape is not its to tell.
    cfg.topics.create = false;
    let d = doc(&cfg);
    for c in d["channels"].as_object().expect("channels").values() {
        let k = &c["bindings"]["kafka"];
        assert!(k.get("partitions").is_none() && k.get("topicConfiguration").is_none());
    }
}

#[test]
fn overrides_and_unknown_webhook_types_get_channels() {
    let mut cfg = Config::default();
    cfg.routes
        .overrides
        .insert("TAXINVOICE.STATE:Issue".into(), "invoices.issued".into());
    cfg.routes
        .overrides
        .insert("FAX.STATE:RESULT".into(), "fax.results".into());
    cfg.cloudevents.source = "urn:example".into();
    let d = doc(&cfg);
    let addresses = channel_addresses(&d);
    assert!(addresses.contains("invoices.issued") && addresses.contains("fax.results"));
    assert!(!addresses.contains("popbill.taxinvoice.state.issue"));
    let fax = first_message(&d, "fax.results");
    assert_eq!(
        fax["payload"]["$ref"],
        "#/components/schemas/UnknownWebhookBody"
    );
    assert_eq!(
        fax["headers"]["properties"]["pb-webhook-type"]["const"],
        "FAX.STATE"
    );
    assert_eq!(
        fax["headers"]["properties"]["ce_type"]["const"],
        "com.popbill.webhook.FAX.STATE.RESULT"
    );
    assert_eq!(
        fax["headers"]["properties"]["ce_source"]["const"],
        "urn:example"
    );
    let issued = first_message(&d, "invoices.issued");
    assert_eq!(
        issued["payload"]["$ref"],
        "#/components/schemas/TaxInvoiceState"
    );
}

#[test]
fn every_header_the_bridge_writes_is_described() {
    let d = doc(&Config::default());
    let mut examples = 0;
    for (id, m) in d["components"]["messages"].as_object().expect("messages") {
        let props = m["headers"]["properties"].as_object().expect("properties");
        for name in [
            "pb-webhook-type",
            "pb-webhook-mid",
            "pb-webhook-corpnum",
            "content-type",
            "popbill-bridge-received-at",
            "ce_specversion",
            "ce_id",
            "ce_source",
            "ce_type",
            "ce_time",
            "ce_subject",
        ] {
            assert!(props.contains_key(name), "{id} lacks header {name}");
        }
        assert_eq!(
            props.contains_key("popbill-bridge-rejection-reason"),
            id == "DeadLetter",
            "{id}"
        );
        // The examples are the bridge's own record headers for the samples.
        for ex in m["examples"].as_array().into_iter().flatten() {
            examples += 1;
            for name in ex["headers"].as_object().expect("headers").keys() {
                assert!(
                    props.contains_key(name) || name.starts_with("pb-custom-"),
                    "{id}: example header {name} is not described"
                );
                assert!(
                    name != "authorization" && name != "x-api-key",
                    "{id}: {name}"
                );
            }
        }
    }
    let routed = samples::all()
        .iter()
        .filter(|s| s.event_type().is_some())
        .count();
    assert_eq!(examples, routed, "every sample is an example of its route");
}

#[test]
fn every_body_field_of_the_samples_is_in_its_payload_schema() {
    let d = doc(&Config::default());
    let schemas = &d["components"]["schemas"];
    for (webhook_type, schema) in asyncapi::payload_schema_names() {
        let props = schemas[schema]["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("{schema}"));
        assert_eq!(schemas[schema]["additionalProperties"], true, "{schema}");
        for s in samples::all()
            .iter()
            .filter(|s| s.webhook_type() == webhook_type)
        {
            let body = s.body_json().expect("JSON");
            for field in body.as_object().expect("object").keys() {
                assert!(
                    props.contains_key(field),
                    "{schema} does not describe {field} (sample {})",
                    s.name
                );
            }
        }
    }
    let tax = &schemas["TaxInvoiceState"]["properties"];
    assert_eq!(
        tax["stateCode"]["type"],
        serde_json::json!(["integer", "string", "null"])
    );
    assert_eq!(tax["stateDT"]["pattern"], "^([0-9]{14})?$");
    assert_eq!(
        schemas["CashbillState"]["properties"]["tradeDate"]["pattern"],
        "^([0-9]{8})?$"
    );
}

#[test]
fn the_command_needs_no_brokers_and_reads_the_configuration_as_serving_does() {
    let out = bridge_command().arg("asyncapi").output().expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let committed: Value =
        serde_json::from_str(&std::fs::read_to_string(path(COMMITTED)).expect("read"))
            .expect("JSON");
    assert!(printed == committed, "the binary prints {COMMITTED}");

    // Environment variables and the config file shape it; brokers set in
    // the environment (as in a deployment) are no obstacle.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("bridge.toml");
    std::fs::write(&file, "[topics]\npartitions = 24\n").expect("write");
    let out = bridge_command()
        .args(["asyncapi", "--format", "yaml", "--config"])
        .arg(&file)
        .env("POPBILL_BRIDGE_ROUTES__FALLBACK", "acme.unrouted")
        .env("POPBILL_BRIDGE_KAFKA__BROKERS", "kafka-0:9092")
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let yaml = String::from_utf8_lossy(&out.stdout);
    assert!(yaml.starts_with("asyncapi: \"3.0.0\"\n"), "{yaml:.200}");
    assert!(yaml.contains("address: \"acme.unrouted\""));
    assert!(yaml.contains("partitions: 24"));

    // A configuration error is named, with status 2.
    let out = bridge_command()
        .args(["asyncapi"])
        .env("POPBILL_BRIDGE_ROUTES__FALLBACK", "__consumer_offsets")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("fallback"));
}

#[test]
fn help_explains_every_flag() {
    let out = bridge_command()
        .args(["asyncapi", "--help"])
        .output()
        .expect("runs");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "--config",
        "--format",
        "--output",
        "POPBILL_BRIDGE_CONFIG",
        "AsyncAPI 3.0",
        "ledger",
    ] {
        assert!(
            text.contains(needle),
            "asyncapi --help lacks {needle}:\n{text}"
        );
    }
}
