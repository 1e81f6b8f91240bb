"""tests/vectors/: every record decodes to its canonical form, byte for byte
the text the Rust crate wrote (a difference fails here, in the language that
differs)."""

import pytest

from popbill_events import DecodeError, canonical_json
from vectors import record_of, vectors

ALL = list(vectors())


def test_the_vectors_are_there():
    # 13 samples, 19 odd inputs, the re-driven record.
    assert len(ALL) >= 33, [n for n, _, _ in ALL]


@pytest.mark.parametrize("name,record,want", ALL, ids=[n for n, _, _ in ALL])
def test_every_vector_decodes_to_its_canonical_form(name, record, want):
    try:
        decoded = record_of(record).decode()
    except DecodeError as e:
        decoded = e
    assert canonical_json(decoded) + "\n" == want
