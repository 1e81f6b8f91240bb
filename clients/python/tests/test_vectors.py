"""tests/vectors/: every record decodes to its canonical form, byte for byte
the text the Rust crate wrote (a difference fails here, in the language that
differs); the synthetic ones of tests/vectors/synthetic/ too."""

import pytest

from popbill_events import DecodeError, canonical_json
from vectors import record_of, vectors

WRITTEN = list(vectors())
ALL = WRITTEN + list(vectors(synthetic=True))


def test_the_vectors_are_there():
    # 13 samples, 19 odd inputs, the re-driven record; 16 written by hand.
    assert len(WRITTEN) >= 33, [n for n, _, _ in WRITTEN]
    assert len(ALL) - len(WRITTEN) >= 16


@pytest.mark.parametrize("name,record,want", ALL, ids=[n for n, _, _ in ALL])
def test_every_vector_decodes_to_its_canonical_form(name, record, want):
    try:
        decoded = record_of(record).decode()
    except DecodeError as e:
        decoded = e
    assert canonical_json(decoded) + "\n" == want
