use super::*;

#[test]
fn ledger_lines_are_cut_into_records_at_line_ends_within_the_limit() {
    let lines = b"aaaa\nbbbb\ncccc\ndd\n";
    let records = records_of(lines, 10);
    assert_eq!(records, [&b"aaaa\nbbbb\n"[..], &b"cccc\ndd\n"[..]]);
    // Every byte is kept, in order, and no line is split.
    assert_eq!(records.concat(), lines);
}

#[test]
fn a_ledger_line_longer_than_the_limit_goes_alone() {
    let lines = b"a\nbbbbbbbbbbbb\nc\n";
    let records = records_of(lines, 4);
    assert_eq!(records, [&b"a\n"[..], &b"bbbbbbbbbbbb\n"[..], &b"c\n"[..]]);
}

#[test]
fn no_lines_make_no_ledger_record() {
    assert!(records_of(b"", 100).is_empty());
}

#[test]
fn an_acl_refusal_at_start_names_the_transactional_id_acl_and_the_way_out() {
    let e = KafkaError::MessageProduction(RDKafkaErrorCode::TransactionalIdAuthorizationFailed);
    let text = describe_init_error("bridge-0", &e);
    assert!(text.contains("TransactionalId"), "{text}");
    assert!(text.contains("Write and Describe"), "{text}");
    assert!(
        text.contains("kafka.transactions.enabled = false"),
        "{text}"
    );
}

mod on_the_mock_cluster {
    //! The group commit against librdkafka's mock cluster, which speaks
    //! the transactional protocol (it does not hide aborted records from
    //! readers: what consumers see is proven on the real broker, in
    //! tests/transactions.rs).
    use super::*;
    use crate::kafka::mock;
    use crate::kafka::publish::producer_config;
    use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
    use std::collections::BTreeSet;

    const LEDGER: &str = "ledger";

    fn group(cluster: &mock::Cluster) -> (Arc<GroupCommit>, Arc<Metrics>) {
        group_with(
            cluster,
            KafkaConfig {
                message_timeout: Duration::from_secs(3),
                ..KafkaConfig::default()
            },
        )
    }

    /// The group on `cluster`, with `kafka`'s settings otherwise.
    fn group_with(cluster: &mock::Cluster, kafka: KafkaConfig) -> (Arc<GroupCommit>, Arc<Metrics>) {
        let kafka = KafkaConfig {
            brokers: cluster.bootstrap_servers(),
            statistics_interval: Duration::ZERO,
            ..kafka
        };
        let metrics = Arc::new(Metrics::new(&[]));
        let seq = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let ledger = LedgerRecords {
            topic: LEDGER.into(),
            next_key: Box::new(move || {
                let mut k = [0u8; 16];
                k[8..].copy_from_slice(&seq.fetch_add(1, Ordering::Relaxed).to_be_bytes());
                k
            }),
            max_bytes: 1024,
        };
        let group = GroupCommit::start(
            &kafka,
            producer_config(&kafka, 1_100_000),
            "unit-writer",
            Some(ledger),
            metrics.clone(),
            Arc::new(ClientEvents::default()),
        )
        .expect("writers");
        (group, metrics)
    }

    async fn ready(group: &GroupCommit) {
        let until = Instant::now() + Duration::from_secs(10);
        while let Some(p) = group.problem() {
            assert!(Instant::now() < until, "writers never ready: {p}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A delivery sent into the open group, and its request's hold on it.
    type Sent = (oneshot::Receiver<Verdict>, Withdrawal);

    fn send(group: &GroupCommit, n: usize) -> Sent {
        let topic: Arc<str> = "events".into();
        let body = format!("{{\"n\":{n}}}");
        let record: FutureRecord<'_, str, [u8]> =
            FutureRecord::to("events").payload(body.as_bytes());
        let line = format!("line-{n}\n");
        let write_line = |out: &mut Vec<u8>| out.extend_from_slice(line.as_bytes());
        group
            .send(record, &topic, Some(&write_line))
            .expect("sent into the open transaction")
    }

    /// Waits for the verdict, the request holding on all the while.
    async fn verdict((rx, _waiting): Sent) -> Verdict {
        tokio::time::timeout(Duration::from_secs(10), rx)
            .await
            .expect("answered in time")
            .expect("answered")
    }

    /// Kafka refuses the next few records (the group must abort).
    fn refuse_records(cluster: &mock::Cluster) {
        cluster.request_errors(
            RDKafkaApiKey::Produce,
            &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_INVALID_RECORD; 4],
        );
    }

    /// Deliveries `ns`, one at a time, until one commits: its receipt.
    /// librdkafka may hand a failed group's error to the writer's next
    /// transaction (it purges that one too: another 503, nothing
    /// written), so a delivery is retried as POPBiLL would.
    async fn first_committed(group: &GroupCommit, ns: std::ops::Range<usize>) -> Option<Receipt> {
        for n in ns {
            if let Ok(receipt) = verdict(send(group, n)).await {
                return Some(receipt);
            }
        }
        None
    }

    fn count(metrics: &Metrics, outcome: &str) -> f64 {
        let text = String::from_utf8(metrics.render()).expect("utf-8");
        let series = format!("popbill_bridge_transactions_total{{outcome=\"{outcome}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&series))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(-1.0)
    }

    #[tokio::test]
    async fn every_delivery_of_a_committed_group_gets_its_own_receipt_and_its_ledger_line_goes_with_it()
     {
        let cluster = mock::with_topics(&["events", LEDGER]);
        let (group, metrics) = group(&cluster);
        ready(&group).await;
        // Sent without awaiting in between: one group.
        let answers: Vec<_> = (0..20).map(|n| send(&group, n)).collect();
        let mut offsets = BTreeSet::new();
        for a in answers {
            let receipt = verdict(a).await.expect("committed");
            offsets.insert(receipt.offset());
        }
        assert_eq!(offsets.len(), 20, "each its own place: {offsets:?}");
        assert!(count(&metrics, "committed") >= 1.0);
        assert_eq!(count(&metrics, "aborted"), 0.0);
        let (_, ledger_end) = group
            .lock_open()
            .writer
            .as_ref()
            .expect("a writer is open")
            .producer
            .client()
            .fetch_watermarks(LEDGER, 0, Duration::from_secs(5))
            .expect("ledger watermarks");
        assert!(ledger_end >= 1, "the ledger lines were written");
    }

    #[tokio::test]
    async fn the_seal_sends_what_lingers_so_a_commit_never_waits_out_linger_ms() {
        // Before: a group's commit awaited its reports while its last
        // records waited out the writer's linger.ms (the writers then ran
        // with 0 ms, a produce request a record). Records now linger
        // while the group gathers, and the seal sends them at once.
        let cluster = mock::with_topics(&["events", LEDGER]);
        let mut kafka = KafkaConfig {
            message_timeout: Duration::from_secs(60),
            ..KafkaConfig::default()
        };
        kafka.transactions.timeout = Duration::from_secs(90);
        kafka.properties.insert("linger.ms".into(), "50000".into());
        let (group, _) = group_with(&cluster, kafka);
        ready(&group).await;
        let answers: Vec<_> = (0..5).map(|n| send(&group, n)).collect();
        for a in answers {
            // `verdict` waits 10 s, a fifth of the linger.
            verdict(a)
                .await
                .expect("committed before the linger ran out");
        }
    }

    #[tokio::test]
    async fn a_writer_kafka_keeps_refusing_says_so_once_not_at_every_attempt() {
        // Before: every attempt of init_transactions logged its refusal:
        // four writers retrying filled the log while an ACL was missing.
        let log = crate::telemetry::captured_log::CapturedLog::start();
        let cluster = mock::with_topics(&["events", LEDGER]);
        cluster.request_errors(
            RDKafkaApiKey::InitProducerId,
            &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED; 64],
        );
        let (group, _) = group(&cluster);
        // Attempts at 0, 0.5, 1.5 s: three per writer.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert!(
            group
                .problem()
                .is_some_and(|p| p.contains("TransactionalId"))
        );
        let said = log.text().matches("transactional writer not ready").count();
        assert_eq!(said, 4, "one line per writer:\n{}", log.text());
    }

    #[tokio::test]
    async fn a_group_kafka_refuses_is_aborted_every_delivery_gets_503_and_the_next_group_commits() {
        let cluster = mock::with_topics(&["events", LEDGER]);
        let (group, metrics) = group(&cluster);
        ready(&group).await;
        refuse_records(&cluster);
        let answers: Vec<_> = (0..3).map(|n| send(&group, n)).collect();
        for a in answers {
            let e = verdict(a).await.expect_err("refused");
            assert_eq!(e.status(), hyper::StatusCode::SERVICE_UNAVAILABLE, "{e}");
        }
        assert!(count(&metrics, "aborted") >= 1.0);
        assert_eq!(count(&metrics, "committed"), 0.0);
        // The writers go on. librdkafka may still hand the failed
        // group's error to the next transaction of the same writer (it
        // purges that one too: another 503, nothing written), so the
        // delivery is retried as POPBiLL would.
        cluster.clear_request_errors(RDKafkaApiKey::Produce);
        let committed = first_committed(&group, 9..12).await;
        assert!(
            committed.is_some_and(|r| r.offset() >= 0),
            "no later group committed"
        );
        assert!(count(&metrics, "committed") >= 1.0);
    }

    #[tokio::test]
    async fn an_abort_kafka_refuses_replaces_the_writer_and_does_not_stop_the_bridge() {
        // Before: any failed abort was a fatal error, and the bridge
        // exited (seen on a secured broker: one delivery to a topic without
        // the Write ACL restarted the replica).
        let cluster = mock::with_topics(&["events", LEDGER]);
        let (group, metrics) = group(&cluster);
        ready(&group).await;
        refuse_records(&cluster);
        cluster.request_errors(
            RDKafkaApiKey::EndTxn,
            &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_INVALID_TXN_STATE; 4],
        );
        let e = verdict(send(&group, 1)).await.expect_err("refused");
        assert_eq!(e.status(), hyper::StatusCode::SERVICE_UNAVAILABLE, "{e}");
        assert!(count(&metrics, "aborted") >= 1.0);
        assert_eq!(
            group.events.fatal(),
            None,
            "a failed abort stopped the bridge"
        );
        // Readiness holds while the writer is replaced: the others take
        // turns.
        assert_eq!(group.problem(), None);
        cluster.clear_request_errors(RDKafkaApiKey::Produce);
        goes_on_after_kafka_recovers(&cluster, &group).await;
    }

    #[tokio::test]
    async fn a_commit_that_fails_fatally_without_a_fence_replaces_the_writer_and_does_not_stop_the_bridge()
     {
        // Before: any fatal commit error stopped the bridge (exit status
        // 3, seen after Kafka was away past the transaction timeout:
        // "Failed to end transaction: INVALID_TXN_STATE"), as if another
        // process held the id. Only a fence means that.
        let cluster = mock::with_topics(&["events", LEDGER]);
        let (group, _) = group(&cluster);
        ready(&group).await;
        cluster.request_errors(
            RDKafkaApiKey::EndTxn,
            &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_INVALID_TXN_STATE; 4],
        );
        // Its verdict is the read-back's, which the mock cannot give
        // truly (it shows aborted records): only that it came is checked.
        let _ = verdict(send(&group, 1)).await;
        assert_eq!(
            group.events.fatal(),
            None,
            "a fatal commit error without a fence stopped the bridge"
        );
        goes_on_after_kafka_recovers(&cluster, &group).await;
    }

    /// Once Kafka takes EndTxn again, a new writer is ready, a later group
    /// commits, and nothing stopped the bridge.
    async fn goes_on_after_kafka_recovers(cluster: &mock::Cluster, group: &GroupCommit) {
        cluster.clear_request_errors(RDKafkaApiKey::EndTxn);
        ready(group).await;
        assert!(
            first_committed(group, 10..16).await.is_some(),
            "no later group committed"
        );
        assert_eq!(group.events.fatal(), None);
    }

    /// Every ledger record of `LEDGER` (three partitions): partition,
    /// key, offset, value; read until `lines` lines were seen.
    async fn ledger_records(
        cluster: &mock::Cluster,
        lines: usize,
    ) -> Vec<(i32, Vec<u8>, i64, String)> {
        use rdkafka::consumer::{BaseConsumer, Consumer as _};
        use rdkafka::message::Message as _;
        use rdkafka::{Offset, TopicPartitionList};
        let brokers = cluster.bootstrap_servers();
        tokio::task::spawn_blocking(move || {
            let c: BaseConsumer = ClientConfig::new()
                .set("bootstrap.servers", &brokers)
                .set("group.id", "ut-ledger-reader")
                .set("fetch.wait.max.ms", "10")
                .create()
                .expect("consumer");
            let mut tpl = TopicPartitionList::new();
            for p in 0..3 {
                tpl.add_partition_offset(LEDGER, p, Offset::Offset(0))
                    .expect("partition");
            }
            c.assign(&tpl).expect("assign");
            let until = std::time::Instant::now() + Duration::from_secs(10);
            let mut out = Vec::new();
            let mut seen = 0;
            while seen < lines && std::time::Instant::now() < until {
                let Some(m) = c.poll(Duration::from_millis(100)) else {
                    continue;
                };
                let m = m.expect("consume");
                let value =
                    String::from_utf8(m.payload().unwrap_or_default().to_vec()).expect("utf-8");
                seen += value.lines().count();
                out.push((
                    m.partition(),
                    m.key().unwrap_or_default().to_vec(),
                    m.offset(),
                    value,
                ));
            }
            out
        })
        .await
        .expect("consumer thread")
    }

    #[tokio::test]
    async fn a_groups_first_ledger_line_goes_alone_at_once_and_the_rest_follow_under_its_key_into_its_partition()
     {
        let cluster = mock::with_topics(&["events"]);
        mock::create_topic(&cluster, LEDGER, 3).expect("ledger topic");
        let (group, _) = group(&cluster);
        ready(&group).await;
        let answers: Vec<_> = (0..20).map(|n| send(&group, n)).collect();
        for a in answers {
            verdict(a).await.expect("committed");
        }
        let records = ledger_records(&cluster, 20).await;
        let mut groups: std::collections::BTreeMap<Vec<u8>, Vec<(i32, i64, String)>> =
            Default::default();
        for (partition, key, offset, value) in records {
            groups
                .entry(key)
                .or_default()
                .push((partition, offset, value));
        }
        let mut lines = BTreeSet::new();
        for (key, mut records) in groups {
            records.sort_by_key(|r| r.1);
            let partitions: BTreeSet<i32> = records.iter().map(|r| r.0).collect();
            assert_eq!(
                partitions.len(),
                1,
                "one partition per group: {key:?} {records:?}"
            );
            assert_eq!(
                records[0].2.lines().count(),
                1,
                "the first line alone: {records:?}"
            );
            lines.extend(records.iter().flat_map(|r| r.2.lines().map(str::to_string)));
        }
        let expected: BTreeSet<String> = (0..20).map(|n| format!("line-{n}")).collect();
        assert_eq!(lines, expected, "every line once, none lost");
    }

    #[tokio::test]
    async fn a_group_whose_delivery_was_answered_before_the_commit_aborts_so_the_503_means_not_written()
     {
        let cluster = mock::with_topics(&["events", LEDGER]);
        let (group, metrics) = group(&cluster);
        ready(&group).await;
        // Reports slow enough that the request gives up first, as when
        // Kafka was away past the request's deadline.
        cluster
            .broker_round_trip_time(1, Duration::from_millis(400))
            .expect("rtt");
        let (gave_up, waiting) = send(&group, 1);
        let waited = send(&group, 2);
        drop(waiting); // its request answered 503 at its deadline
        let e = verdict((gave_up, withdrawal_kept(&group))).await;
        assert!(
            e.is_err(),
            "the group of a withdrawn delivery must not commit: {e:?}"
        );
        let e = verdict(waited).await.expect_err("aborted with it");
        assert_eq!(e.status(), hyper::StatusCode::SERVICE_UNAVAILABLE, "{e}");
        assert!(count(&metrics, "aborted") >= 1.0);
        assert_eq!(count(&metrics, "committed"), 0.0);
        // A group whose requests all wait still commits.
        cluster
            .broker_round_trip_time(1, Duration::ZERO)
            .expect("rtt");
        assert!(
            first_committed(&group, 10..13).await.is_some(),
            "no later group committed"
        );
    }

    /// A hold on nothing: for a receiver whose own hold was dropped.
    fn withdrawal_kept(_group: &GroupCommit) -> Withdrawal {
        Withdrawal::of(Claim::committing())
    }
}
