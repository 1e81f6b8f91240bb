"""Reading tests/vectors/: each record as a RawRecord, and its canonical
decoded text."""

import base64
import json
import os
from pathlib import Path
from typing import Any, Iterator, Optional, Tuple

from popbill_events import RawRecord

VECTORS = Path(os.environ.get("POPBILL_VECTORS", Path(__file__).resolve().parents[3] / "tests" / "vectors"))


def raw_bytes(v: Any) -> Optional[bytes]:
    """A vector's bytes: text when UTF-8, else {"base64": …}."""
    if v is None:
        return None
    if isinstance(v, str):
        return v.encode("utf-8")
    return base64.b64decode(v["base64"])


def record_of(vector: dict) -> RawRecord:
    return RawRecord(
        value=raw_bytes(vector["value"]),
        key=raw_bytes(vector["key"]),
        headers=[(n, raw_bytes(v)) for n, v in vector["headers"]],
        timestamp_millis=vector["timestamp"],
    )


def vectors(synthetic: bool = False) -> Iterator[Tuple[str, dict, str]]:
    """(name, record, canonical text with its newline), in name order: the
    records the bridge wrote, or (``synthetic``) those of synthetic/."""
    directory = VECTORS / "synthetic" if synthetic else VECTORS
    for path in sorted(directory.glob("*.record.json")):
        name = path.name[: -len(".record.json")]
        record = json.loads(path.read_text(encoding="utf-8"))
        decoded = (directory / f"{name}.decoded.json").read_text(encoding="utf-8")
        yield ("synthetic/" if synthetic else "") + name, record, decoded
