//! Kafka secrets kept in files, as Kubernetes mounts Secrets:
//! `kafka.secret_files` maps a librdkafka property (`sasl.password`,
//! `ssl.key.password`, ...) to the file holding its value.
//!
//! The files are read once, when the configuration is loaded, into
//! `kafka.properties` (so every check, every client and every redaction
//! sees them as the other properties). librdkafka takes a client's
//! credentials when the client is made, so a rotated secret means new
//! clients: the watcher asks for an orderly restart when a file's content
//! changes, and Kubernetes starts the container again with the new value.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::file_digest::file_digests;
use crate::kafka::KafkaConfig;
use crate::kafka::client::ClientEvents;
use crate::signal::Signal;
use crate::telemetry::events;

/// Reads every file of `cfg.secret_files` into `cfg.properties`. Every
/// problem, each naming the setting and the file (never a value).
pub(crate) fn read_into(cfg: &mut KafkaConfig) -> Vec<String> {
    let mut errs = Vec::new();
    for (property, path) in &cfg.secret_files {
        if cfg.properties.contains_key(property) {
            errs.push(format!(
                "kafka.secret_files.{property:?} and kafka.properties.{property:?} are both set: keep one"
            ));
            continue;
        }
        match std::fs::read_to_string(path) {
            Ok(text) => {
                // A file written by `echo` or `kubectl create secret
                // --from-file` may end in a newline that is not part of
                // the secret.
                let value = text.strip_suffix('\n').unwrap_or(&text);
                let value = value.strip_suffix('\r').unwrap_or(value);
                if value.is_empty() {
                    errs.push(format!(
                        "kafka.secret_files.{property:?}: {} is empty",
                        path.display()
                    ));
                } else {
                    cfg.properties.insert(property.clone(), value.to_string());
                }
            }
            Err(e) => errs.push(format!(
                "kafka.secret_files.{property:?}: cannot read {}: {e}",
                path.display()
            )),
        }
    }
    errs
}

/// Watches the secret files every `every`; when one's content changes,
/// asks for the orderly restart (see [`ClientEvents::request_restart`]).
/// Ends at `stop`.
pub(crate) fn spawn_watch(
    cfg: &KafkaConfig,
    every: Duration,
    events: Arc<ClientEvents>,
    mut stop: Signal,
) {
    let files: Vec<(String, PathBuf)> = cfg
        .secret_files
        .iter()
        .map(|(p, f)| (p.clone(), f.clone()))
        .collect();
    if files.is_empty() {
        return;
    }
    tokio::spawn(async move {
        let seen = file_digests(files.iter().map(|(_, f)| f.as_path()));
        loop {
            if stop.sleep(every).await {
                return;
            }
            let now = file_digests(files.iter().map(|(_, f)| f.as_path()));
            // A file mid-replacement (unreadable for a moment, as a
            // Secret's symlink swap can be) is looked at again next time.
            let changed = files
                .iter()
                .zip(seen.iter().zip(&now))
                .find(|(_, (before, after))| after.is_some() && before != after);
            if let Some(((property, file), _)) = changed {
                events::kafka_secret_changed(property, file);
                events.request_restart(&format!(
                    "kafka.secret_files.{property:?} ({}) changed",
                    file.display()
                ));
                return;
            }
        }
    });
}

#[cfg(test)]
mod tests;
