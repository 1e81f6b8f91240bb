"""The real broker: a running popbill-bridge writes every delivery the
vectors come from (each posted twice), and this package, reading
read_committed through confluent-kafka, gets each event as the vectors
say, none missing, and none twice after the gate, even when the topics
are read a second time (a consumer that restarts without its offsets).

Needs KAFKA_BOOTSTRAP_SERVERS and POPBILL_BRIDGE_BIN (scripts/test.sh
sets both); without them it is skipped, saying so."""

import json
import os
import time
import uuid

import pytest

from popbill_events import CONSUMER_PROPERTIES, DecodeError, Gate, RawRecord, canonical_json
from bridge import Bridge, inputs
from vectors import VECTORS

BROKERS = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "")
BINARY = os.environ.get("POPBILL_BRIDGE_BIN", "")

pytestmark = pytest.mark.broker


def _without_run_values(decoded: dict) -> dict:
    """The canonical form without what differs per run: receive times, and
    a digest ce_id (it includes the topic's name)."""
    env = decoded.get("envelope")
    if env:
        received = env["received_at"]
        env["received_at"] = env["timestamp"] = None
        if env["cloud_event"]["time"] == received:
            env["cloud_event"]["time"] = None
        if env["cloud_event"]["id"].startswith(("content:", "sha256:")):
            env["cloud_event"]["id"] = "digest"
    return decoded


def _read_all(consumer_cls, topics, expected, within=60.0, settle=2.0):
    from confluent_kafka import OFFSET_BEGINNING, TopicPartition

    consumer = consumer_cls({
        "bootstrap.servers": BROKERS,
        "group.id": "popbill-events-python-" + uuid.uuid4().hex,
        "enable.auto.commit": False,
        **CONSUMER_PROPERTIES,
    })
    try:
        parts = []
        meta = consumer.list_topics(timeout=10)
        for t in topics:
            for p in meta.topics[t].partitions:
                parts.append(TopicPartition(t, p, OFFSET_BEGINNING))
        consumer.assign(parts)
        out, until, last = [], time.monotonic() + within, time.monotonic()
        while time.monotonic() < until:
            if len(out) >= expected and time.monotonic() - last >= settle:
                break
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            if msg.error():
                raise AssertionError(str(msg.error()))
            out.append(msg)
            last = time.monotonic()
        return out
    finally:
        consumer.close()


@pytest.mark.skipif(not BROKERS or not BINARY,
                    reason="needs a Kafka broker and the bridge: set KAFKA_BOOTSTRAP_SERVERS and "
                           "POPBILL_BRIDGE_BIN (scripts/test.sh does)")
def test_what_the_running_bridge_wrote_decodes_as_sent_once_each():
    confluent_kafka = pytest.importorskip("confluent_kafka", reason="confluent-kafka is not installed")
    prefix = "py-events-" + uuid.uuid4().hex[:12]
    bridge = Bridge(BINARY, BROKERS, prefix)
    try:
        bridge.wait_ready()
        sent = inputs()
        for name, headers, body in sent:
            for copy in range(2):
                assert bridge.post(headers, body) == 200, f"{name} (copy {copy})"
    finally:
        bridge.stop()

    admin_meta = confluent_kafka.Consumer({"bootstrap.servers": BROKERS, "group.id": "meta"}).list_topics(timeout=10)
    topics = sorted(t for t in admin_meta.topics if t.startswith(prefix + ".") and not t.endswith(".ledger"))
    messages = _read_all(confluent_kafka.Consumer, topics, expected=len(sent))
    assert len(messages) == len(sent), "one record per delivery, the copies not written"

    by_input = {}
    for m in messages:
        record = RawRecord.from_confluent(m)
        try:
            decoded = record.decode()
        except DecodeError as e:
            decoded = e
        mid = record.header("pb-webhook-mid")
        name = next(n for n, h, b in sent if h.get("Pb-Webhook-MID") == mid and b == m.value())
        assert name not in by_input, f"{name}: two records"
        by_input[name] = (decoded, m.topic())

    missing = [n for n, _, _ in sent if n not in by_input]
    assert not missing, f"no record for {missing}"
    for name, (decoded, topic) in by_input.items():
        vector = "fallback-fax-result" if name == "fax-result" else name
        want = json.loads((VECTORS / f"{vector}.decoded.json").read_text(encoding="utf-8"))
        got = json.loads(canonical_json(decoded))
        got, want = _without_run_values(got), _without_run_values(want)
        assert json.dumps(got, indent=1, sort_keys=True) == json.dumps(want, indent=1, sort_keys=True), name

    # Read twice, as after a restart without committed offsets: each event
    # passes the gate once, and every copy is a duplicate.
    gate = Gate()
    deliveries = [d for d, _ in by_input.values() if not isinstance(d, DecodeError)]
    assert all(not gate.admit(d).is_duplicate for d in deliveries)
    again = _read_all(confluent_kafka.Consumer, topics, expected=len(sent))
    for m in again:
        try:
            d = RawRecord.from_confluent(m).decode()
        except DecodeError:
            continue
        assert gate.admit(d).is_duplicate, d.id
