"""Decode cost per record: every vector of tests/vectors/ decoded (and
passed through the gate) in a loop. Prints figures; asserts nothing.

    python clients/python/bench_decode.py [seconds]
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent / "tests"))

from popbill_events import DecodeError, Gate, canonical_json  # noqa: E402
from vectors import record_of, vectors  # noqa: E402


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0
    records = [record_of(r) for _, r, _ in vectors()]
    deliveries = [r for r in records if r.value and r.header("ce_id")]

    def run(label, step, items):
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            for item in items:
                step(item)
            n += len(items)
        per = (time.perf_counter() - start) / n
        print(f"python {label:<22} {per * 1e6:8.2f} us/record  ({n} records, {len(items)} vectors)")

    def decode(r):
        try:
            return r.decode()
        except DecodeError as e:
            return e

    run("decode", decode, records)
    decoded = [decode(r) for r in deliveries]
    run("decode + canonical", lambda r: canonical_json(decode(r)), records)
    gate = Gate()
    run("gate.admit", gate.admit, [d for d in decoded if not isinstance(d, DecodeError)])


if __name__ == "__main__":
    main()
