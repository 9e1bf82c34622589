"""Fiat–Shamir transcript: keccak256 over 32-byte big-endian words.

The Solidity verifier reproduces this construction byte for byte, so it is spelled out
exactly (see docs/PROTOCOL.md §5):

    state   = keccak256(DOMAIN_SEPARATOR)                  # 32 bytes
    pending = b""
    absorb_word(v):  pending += v.to_bytes(32, "big")      # 0 <= v < 2^256
    challenge():     digest  = keccak256(state || pending)
                     state   = digest; pending = b""
                     return int(digest, big-endian) mod R

A G1 point is absorbed as its affine x then y (the point at infinity as 0, 0), which is
exactly its 64-byte EIP-196 encoding. Because ``state`` is chained, two challenges drawn
with nothing absorbed in between are distinct (keccak256(s) != s except with negligible
probability), so a protocol can draw several challenges in a row.

Reduction mod R: the digest is uniform on [0, 2^256) and 2^256 = 5·R + (2^256 mod R),
so every residue has at most 6 preimages and any fixed challenge value occurs with
probability at most 6 / 2^256 ≈ 1.134 / R. A soundness bound of the form d/R per
challenge (Schwartz–Zippel) therefore grows by the factor 1.134 at most; the statistical
distance of one challenge from uniform on Fr is about 0.039.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from eth_hash.auto import keccak

from verifier.constants import WORD_BYTES, R
from verifier.curve import G1Affine
from verifier.fr import check_scalar

DOMAIN_SEPARATOR: Final[bytes] = b"zkmeter.usage.v2"

WORD_BOUND: Final[int] = 1 << (8 * WORD_BYTES)


class TranscriptError(ValueError):
    """Base class of transcript input errors."""


class WordOutOfRangeError(TranscriptError):
    """A value absorbed as a word is negative or does not fit in 256 bits."""


def keccak256(data: bytes) -> bytes:
    """keccak256 (the Ethereum variant, not NIST SHA3-256) of ``data``."""
    digest: bytes = keccak(data)
    return digest


def _word_bytes(value: int) -> bytes:
    if isinstance(value, bool) or not isinstance(value, int):
        raise WordOutOfRangeError(f"word must be an int, got {type(value).__name__}")
    if not 0 <= value < WORD_BOUND:
        raise WordOutOfRangeError(f"word {value} is outside [0, 2^256)")
    return value.to_bytes(WORD_BYTES, "big")


def _scalar_bytes(x: int) -> bytes:
    check_scalar(x, "scalar")
    return x.to_bytes(WORD_BYTES, "big")


class Transcript:
    """A keccak256 Fiat–Shamir transcript (see the module docstring for the exact bytes)."""

    __slots__ = ("_pending", "_state")

    def __init__(self, domain_separator: bytes = DOMAIN_SEPARATOR) -> None:
        self._state: bytes = keccak256(domain_separator)
        self._pending: bytearray = bytearray()

    @property
    def state(self) -> bytes:
        """The 32-byte chaining state: keccak256 of the separator, then the last digest."""
        return self._state

    @property
    def pending(self) -> bytes:
        """The bytes absorbed since the last challenge (a copy)."""
        return bytes(self._pending)

    def absorb_word(self, value: int) -> None:
        """Append ``value`` as a 32-byte big-endian word; requires 0 <= value < 2^256."""
        self._pending += _word_bytes(value)

    def absorb_scalar(self, x: int) -> None:
        """Append a canonical Fr element (0 <= x < R) as one word."""
        self._pending += _scalar_bytes(x)

    def absorb_words(self, values: Iterable[int]) -> None:
        """Append each value as a word, in order; all or nothing if one is out of range."""
        self._pending += b"".join(_word_bytes(v) for v in values)

    def absorb_scalars(self, values: Iterable[int]) -> None:
        """Append each canonical Fr element as a word, in order; all or nothing."""
        self._pending += b"".join(_scalar_bytes(v) for v in values)

    def absorb_g1(self, point: G1Affine) -> None:
        """Append an affine G1 point as x then y (infinity is (0, 0)): its EIP-196 bytes.

        Curve membership is not checked here: points reaching a transcript have been
        decoded and checked by verifier.curve already.
        """
        x, y = point
        self._pending += _word_bytes(x) + _word_bytes(y)

    def challenge(self) -> int:
        """Squeeze one challenge: digest = keccak256(state || pending), return digest mod R."""
        digest = keccak256(self._state + bytes(self._pending))
        self._state = digest
        self._pending = bytearray()
        return int.from_bytes(digest, "big") % R

    def challenges(self, count: int) -> list[int]:
        """Squeeze ``count`` challenges in a row (the first one takes the pending words)."""
        return [self.challenge() for _ in range(count)]
