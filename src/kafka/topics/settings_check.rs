//! The settings of existing topics, read every `kafka.health_interval`:
//! those that break a promise of the bridge (record size, durability,
//! ledger retention) become [`ConfigProblem`]s for readiness and the log
//! (the rules themselves are in [`super::checks`]).

use super::*;

impl Topics {
    /// Settings of existing topics that break a promise of the bridge, as
    /// of the last settings check.
    pub(crate) fn config_problems(&self) -> Vec<ConfigProblem> {
        let mut problems = self.problems.lock().map(|p| p.clone()).unwrap_or_default();
        // Settings that could not be read are not known to be right:
        // listed (not blocking), with the right that reads them.
        for unread in [self.said_unchecked.get(), self.said_broker_unchecked.get()]
            .into_iter()
            .flatten()
        {
            problems.push(ConfigProblem {
                text: unread,
                blocking: false,
            });
        }
        problems
    }

    /// Reads the settings of every existing topic the bridge uses (and the
    /// broker's record limit) and keeps what breaks a promise. Runs beside
    /// the readiness rounds, not in them: a cluster that does not answer
    /// DescribeConfigs (no permission, librdkafka's mock cluster) must not
    /// slow readiness down. When the settings cannot be read the last
    /// verdict stays, that is said once, and the next try waits a minute.
    pub(crate) async fn check_settings(&self) {
        let due = self.settings_retry_at.lock().map(|t| *t).unwrap_or(None);
        if due.is_some_and(|t| Instant::now() < t) {
            return;
        }
        let Ok(metadata) = self.fetch_metadata(self.admin_timeout).await else {
            // Readiness says Kafka is unreachable; nothing to add here.
            return;
        };
        let (mut facts, broker) = self.settings_facts(&metadata);
        drop(metadata);
        let opts = AdminOptions::new().request_timeout(Some(self.admin_timeout));
        let specifiers: Vec<ResourceSpecifier<'_>> = facts
            .iter()
            .map(|(_, f)| ResourceSpecifier::Topic(&f.name))
            .collect();
        if !specifiers.is_empty() {
            let described = match self.admin.describe_configs(specifiers.iter(), &opts).await {
                Ok(d) => d,
                Err(e) => {
                    self.say_unchecked(Some(format!(
                        "the topics' settings (record size, durability, ledger retention) are not \
                         checked: DescribeConfigs failed ({e})"
                    )));
                    if let Ok(mut t) = self.settings_retry_at.lock() {
                        *t = Some(Instant::now() + SETTINGS_RETRY);
                    }
                    return;
                }
            };
            // A topic the principal may not describe is not a failed call:
            // it comes back with no settings at all (rust-rdkafka drops
            // the per-topic error; an existing topic always has some).
            let refused = described.iter().filter(|r| unread(r)).count();
            if refused > 0 {
                self.say_unchecked(Some(format!(
                    "Kafka refused DescribeConfigs on {refused} of the bridge's {} topic(s) (no \
                     settings came back): their settings (record size, durability, ledger \
                     retention) are not checked; grant the bridge's principal DescribeConfigs on \
                     its topics (docs/deploy.md, ACLs)",
                    described.len()
                )));
            } else {
                self.say_unchecked(None);
            }
            for resource in described.into_iter().flatten() {
                let OwnedResourceSpecifier::Topic(name) = &resource.specifier else {
                    continue;
                };
                let Some((_, f)) = facts.iter_mut().find(|(_, f)| &f.name == name) else {
                    continue;
                };
                let number = |key: &str| {
                    resource
                        .get(key)
                        .and_then(|e| e.value.as_deref())
                        .and_then(|v| v.trim().parse::<i64>().ok())
                };
                f.max_message_bytes = number("max.message.bytes");
                f.min_insync_replicas = number("min.insync.replicas");
                if let (Some(isr), Some(t)) = (
                    f.min_insync_replicas,
                    self.all.iter().find(|t| &*t.name == name.as_str()),
                ) {
                    t.min_insync.store(isr, Ordering::Release);
                }
                f.retention_ms = number("retention.ms");
            }
        }
        let problems: Vec<ConfigProblem> = facts
            .iter()
            .flat_map(|(role, f)| checks::check_topic(*role, f, &self.needs))
            .collect();
        self.set_problems(problems);

        // One broker stands for all: the setting is cluster-wide in
        // practice, and librdkafka describes one broker per request.
        if let Some(id) = broker {
            let broker = [ResourceSpecifier::Broker(id)];
            let described = self.admin.describe_configs(broker.iter(), &opts).await;
            // Refused (no settings came back) names the right to grant; a
            // call that failed (Kafka away, a timeout) says only that.
            let unchecked = match &described {
                Ok(d) if d.iter().any(unread) => Some(format!(
                    "Kafka refused DescribeConfigs on broker {id} (no settings came back): the \
                     brokers' record limit (message.max.bytes) is not checked; grant the bridge's \
                     principal DescribeConfigs on the Cluster (docs/deploy.md, ACLs)"
                )),
                Ok(_) => None,
                Err(e) => Some(format!(
                    "the brokers' record limit (message.max.bytes) is not checked: DescribeConfigs \
                     on broker {id} failed ({e})"
                )),
            };
            self.say_broker_unchecked(unchecked);
            if let Ok(d) = described {
                let limit = d
                    .iter()
                    .flatten()
                    .find_map(|r| r.get("message.max.bytes")?.value.as_deref()?.parse().ok());
                let note = limit.and_then(|l| checks::check_broker(id, l, &self.needs));
                if let Some(n) = self.said_broker.update(note) {
                    warn!(problem = %n, "Kafka broker setting");
                }
            }
        }
    }

    /// The existing topics to check, from the metadata (which cannot be
    /// held across an await), and a broker to ask about its limit.
    fn settings_facts(&self, metadata: &Metadata) -> (Vec<(Role, TopicFacts)>, Option<i32>) {
        let mut facts: Vec<(Role, TopicFacts)> = Vec::new();
        for m in metadata.topics() {
            let role = if self.all.iter().any(|t| &*t.name == m.name()) {
                Role::Delivery
            } else if self.ledger.as_deref() == Some(m.name()) {
                Role::Ledger
            } else {
                continue;
            };
            if m.error().is_some() || m.partitions().is_empty() {
                continue;
            }
            let replicas = m
                .partitions()
                .iter()
                .map(|p| p.replicas().len())
                .min()
                .unwrap_or(0);
            facts.push((
                role,
                TopicFacts {
                    name: m.name().to_string(),
                    replicas,
                    ..TopicFacts::default()
                },
            ));
        }
        (facts, metadata.brokers().first().map(|b| b.id()))
    }

    /// Keeps the new verdict, logging what appeared and what went away.
    fn set_problems(&self, new: Vec<ConfigProblem>) {
        let Ok(mut old) = self.problems.lock() else {
            return;
        };
        for p in new.iter().filter(|p| !old.contains(p)) {
            if p.blocking {
                warn!(problem = %p.text, "Kafka topic setting stops every write: not ready");
            } else {
                warn!(problem = %p.text, "Kafka topic setting breaks a promise of the bridge (listed by /readyz)");
            }
        }
        for p in old.iter().filter(|p| !new.contains(p)) {
            info!(problem = %p.text, "Kafka topic setting fixed");
        }
        *old = new;
    }

    fn say_unchecked(&self, error: Option<String>) {
        if let Some(e) = self.said_unchecked.update(error) {
            warn!(error = %e, "cannot read topic settings (DescribeConfigs) to check them; grant the bridge's principal DescribeConfigs on its topics");
        }
    }

    fn say_broker_unchecked(&self, error: Option<String>) {
        if let Some(e) = self.said_broker_unchecked.update(error) {
            warn!(error = %e, "cannot read the brokers' settings (DescribeConfigs) to check them; grant the bridge's principal DescribeConfigs on the Cluster");
        }
    }
}

/// A resource DescribeConfigs said nothing of: refused (an ACL), since an
/// existing topic or broker always has settings.
fn unread(r: &rdkafka::admin::ConfigResourceResult) -> bool {
    r.as_ref().map_or(true, |c| c.entries.is_empty())
}
