"""A consumer of popbill-bridge's topics on confluent-kafka: read committed
records only, decode, pass the gate, handle, then commit the offset.

    python examples/consumer.py --brokers kafka-0:9092 --group invoices \\
        --topics popbill.taxinvoice.state.issue,popbill.taxinvoice.state.nts
"""

import argparse
import logging

from confluent_kafka import Consumer

from popbill_events import CONSUMER_PROPERTIES, BodyError, Gate, NotADelivery, RawRecord, TaxInvoiceEvent


def handle(delivery) -> None:
    e = delivery.event
    if isinstance(e, TaxInvoiceEvent):
        # iso() and instant() hold every valid date; datetime() not year 0.
        when = e.state_dt.iso() if e.state_dt and e.state_dt.is_valid else None
        logging.info("tax invoice %s:%s state %s at %s", e.corp_num, e.item_key, e.state_code, when)


def main() -> None:
    args = argparse.ArgumentParser()
    args.add_argument("--brokers", required=True)
    args.add_argument("--group", required=True)
    args.add_argument("--topics", required=True)
    a = args.parse_args()
    logging.basicConfig(level=logging.INFO)
    consumer = Consumer({
        "bootstrap.servers": a.brokers,
        "group.id": a.group,
        # Commit after handling, never before: at least once.
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        # isolation.level=read_committed: records of aborted transactions
        # are copies of deliveries the bridge answered 503.
        **CONSUMER_PROPERTIES,
    })
    consumer.subscribe(a.topics.split(","))
    # In memory: a service that must survive restarts gives the gate a
    # GateStore over its own database, written with its own state.
    gate = Gate()
    try:
        while True:
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            if msg.error():
                logging.error("%s", msg.error())
                continue
            try:
                delivery = RawRecord.from_confluent(msg).decode()
            except NotADelivery:
                pass  # the ledger topic, or another producer: not ours
            except BodyError as e:
                # A dead letter: never an event; keep it for a person.
                logging.warning("undecodable record %s/%s/%s: %s", msg.topic(), msg.partition(), msg.offset(), e)
            else:
                verdict = gate.check(delivery)
                if verdict.is_apply:
                    handle(delivery)
                if not verdict.is_duplicate:
                    gate.record(delivery)
            consumer.commit(message=msg, asynchronous=False)
    finally:
        consumer.close()


if __name__ == "__main__":
    main()
