"""Tests of verifier.transcript, with vectors recomputed independently via pycryptodome."""

from __future__ import annotations

import json

import pytest
from Crypto.Hash import keccak as crypto_keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.vectors.gen_transcript import VECTORS_PATH, build_vectors
from verifier.constants import R
from verifier.fr import ScalarOutOfRangeError
from verifier.transcript import (
    DOMAIN_SEPARATOR,
    Transcript,
    WordOutOfRangeError,
)


def reference_keccak(data: bytes) -> bytes:
    """keccak256 from pycryptodome, independent of eth_hash's backend choice."""
    return crypto_keccak.new(digest_bits=256, data=data).digest()


def load_vectors() -> dict[str, object]:
    data: dict[str, object] = json.loads(VECTORS_PATH.read_text())
    return data


def test_domain_separator_and_initial_state() -> None:
    assert DOMAIN_SEPARATOR == b"zkmeter.usage.v2"
    assert Transcript().state == reference_keccak(b"zkmeter.usage.v2")
    assert len(Transcript().state) == 32


def test_vectors_file_matches_generator() -> None:
    """The committed JSON is what the current code produces (regenerate on purpose only)."""
    assert load_vectors() == build_vectors()


def test_vectors_recomputed_from_raw_bytes() -> None:
    """Replay each vector with hand-built byte strings and pycryptodome's keccak."""
    vectors = load_vectors()
    assert vectors["initial_state"] == "0x" + reference_keccak(DOMAIN_SEPARATOR).hex()
    sequences = vectors["sequences"]
    assert isinstance(sequences, list)
    challenge_count = 0
    for seq in sequences:
        state = reference_keccak(DOMAIN_SEPARATOR)
        pending = b""
        for step in seq["steps"]:
            if step["op"] in ("word", "scalar"):
                pending += bytes.fromhex(step["value"][2:])
            elif step["op"] == "g1":
                pending += bytes.fromhex(step["x"][2:]) + bytes.fromhex(step["y"][2:])
            else:
                state = reference_keccak(state + pending)
                pending = b""
                assert step["state"] == "0x" + state.hex()
                expected = int.from_bytes(state, "big") % R
                assert int(step["challenge"], 16) == expected
                challenge_count += 1
    assert challenge_count >= 8


def test_tampered_vector_is_detected() -> None:
    """Negative twin: one flipped bit in an absorbed word changes the next challenge."""
    a = Transcript()
    b = Transcript()
    a.absorb_word(1024)
    b.absorb_word(1024 ^ 1)
    assert a.challenge() != b.challenge()
    assert a.state != b.state


def test_challenge_matches_manual_bytes() -> None:
    t = Transcript()
    t.absorb_g1((1, 2))
    t.absorb_scalar(R - 1)
    t.absorb_words([7, 2**256 - 1])
    manual = (
        (1).to_bytes(32, "big")
        + (2).to_bytes(32, "big")
        + (R - 1).to_bytes(32, "big")
        + (7).to_bytes(32, "big")
        + b"\xff" * 32
    )
    assert t.pending == manual
    digest = reference_keccak(reference_keccak(DOMAIN_SEPARATOR) + manual)
    assert t.challenge() == int.from_bytes(digest, "big") % R
    assert t.state == digest
    assert t.pending == b""


def test_consecutive_challenges_are_distinct() -> None:
    t = Transcript()
    c = t.challenges(4)
    assert len(set(c)) == 4
    assert all(0 <= x < R for x in c)


def test_order_matters() -> None:
    a, b = Transcript(), Transcript()
    a.absorb_words([1, 2])
    b.absorb_words([2, 1])
    assert a.challenge() != b.challenge()


def test_boundary_between_rounds_matters() -> None:
    """Absorbing x, challenge, y differs from absorbing x, y, challenge."""
    a, b = Transcript(), Transcript()
    a.absorb_word(1)
    a.challenge()
    a.absorb_word(2)
    b.absorb_words([1, 2])
    b.challenge()
    assert a.challenge() != b.challenge()


def test_infinity_absorbed_as_zero_words() -> None:
    t = Transcript()
    t.absorb_g1((0, 0))
    assert t.pending == b"\x00" * 64


@pytest.mark.parametrize("bad", [-1, 2**256, 2**300])
def test_word_out_of_range_rejected(bad: int) -> None:
    with pytest.raises(WordOutOfRangeError):
        Transcript().absorb_word(bad)


@pytest.mark.parametrize("bad", [R, R + 1, 2**256 - 1, -1])
def test_scalar_out_of_range_rejected(bad: int) -> None:
    with pytest.raises(ScalarOutOfRangeError):
        Transcript().absorb_scalar(bad)


def test_non_int_rejected() -> None:
    with pytest.raises(WordOutOfRangeError):
        Transcript().absorb_word(True)
    with pytest.raises(ScalarOutOfRangeError):
        Transcript().absorb_scalar(1.0)  # type: ignore[arg-type]


def test_rejected_word_leaves_transcript_untouched() -> None:
    t = Transcript()
    t.absorb_word(5)
    with pytest.raises(WordOutOfRangeError):
        t.absorb_words([6, 2**256])
    with pytest.raises(ScalarOutOfRangeError):
        t.absorb_scalars([6, R])
    with pytest.raises(WordOutOfRangeError):
        t.absorb_g1((6, 2**256))
    assert t.pending == (5).to_bytes(32, "big")


def test_state_is_read_only() -> None:
    t = Transcript()
    with pytest.raises(AttributeError):
        t.state = b"\x00" * 32  # type: ignore[misc]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=2**256 - 1), max_size=6))
def test_random_words_match_reference(words: list[int]) -> None:
    t = Transcript()
    t.absorb_words(words)
    data = b"".join(w.to_bytes(32, "big") for w in words)
    digest = reference_keccak(reference_keccak(DOMAIN_SEPARATOR) + data)
    assert t.challenge() == int.from_bytes(digest, "big") % R
