"""The usage-batch proof: its fields, its byte encoding (the EVM calldata), and JSON.

The proof is the transcript (docs/PROTOCOL.md §5): its fields are listed here in the order
the prover sends them and both verifiers absorb them. Bytes: 32-byte big-endian words;
a G1 point is two words (x, y) as in EIP-196, the point at infinity (0, 0).

    round-1 commitments   layout.round1_columns          2 words each
    round-2 commitments   layout.round2_columns          2 words each
    quotient chunks       t_0, t_1                       2 words each
    evaluations at zeta   layout.opened_at_zeta          1 word each
    evaluations at w*zeta layout.opened_at_omega_zeta    1 word each
    opening proofs        W_zeta, W_omega_zeta           2 words each
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from circuits.constants import WORD_BYTES, R
from circuits.usage_batch import QUOTIENT_CHUNKS, Layout
from verifier.curve import G1_BYTES, G1Affine, InvalidPointError, g1_from_bytes, g1_to_bytes

QUOTIENT_COLUMNS: tuple[str, ...] = tuple(f"t_{i}" for i in range(QUOTIENT_CHUNKS))


class MalformedProofError(ValueError):
    """The proof bytes or JSON do not decode to a well-formed proof; the message says where."""


@dataclass(frozen=True)
class Proof:
    k: int
    commitments: dict[str, G1Affine]  # [c(tau)]_1 for every witness column and t_0, t_1
    evals_zeta: dict[str, int]  # c(zeta) for layout.opened_at_zeta
    evals_omega_zeta: dict[str, int]  # c(omega * zeta) for layout.opened_at_omega_zeta
    w_zeta: G1Affine  # [W_zeta(tau)]_1, the batched opening at zeta
    w_omega_zeta: G1Affine  # [W_omega_zeta(tau)]_1, the batched opening at omega * zeta

    @property
    def layout(self) -> Layout:
        return Layout(self.k)

    def commitment_order(self) -> tuple[str, ...]:
        layout = self.layout
        return layout.round1_columns + layout.round2_columns + QUOTIENT_COLUMNS

    def to_bytes(self) -> bytes:
        layout = self.layout
        parts = [g1_to_bytes(self.commitments[name]) for name in self.commitment_order()]
        parts += [self.evals_zeta[name].to_bytes(32, "big") for name in layout.opened_at_zeta]
        parts += [
            self.evals_omega_zeta[name].to_bytes(32, "big") for name in layout.opened_at_omega_zeta
        ]
        parts += [g1_to_bytes(self.w_zeta), g1_to_bytes(self.w_omega_zeta)]
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, k: int, data: bytes) -> Proof:
        """Decode and validate: exact length, every point on the curve, every scalar < R."""
        layout = Layout(k)
        expected = proof_size(layout)
        if len(data) != expected:
            raise MalformedProofError(
                f"proof has {len(data)} bytes; a 2^{k}-row proof has {expected}"
            )
        offset = 0

        def point(what: str) -> G1Affine:
            nonlocal offset
            chunk = data[offset : offset + G1_BYTES]
            offset += G1_BYTES
            try:
                return g1_from_bytes(chunk)
            except InvalidPointError as error:
                raise MalformedProofError(f"{what}: {error}") from None

        def scalar(what: str) -> int:
            nonlocal offset
            value = int.from_bytes(data[offset : offset + WORD_BYTES], "big")
            offset += WORD_BYTES
            if value >= R:
                raise MalformedProofError(f"{what}: evaluation {value:#x} is not below R")
            return value

        order = layout.round1_columns + layout.round2_columns + QUOTIENT_COLUMNS
        commitments = {name: point(f"commitment [{name}]") for name in order}
        evals_zeta = {name: scalar(f"{name}(zeta)") for name in layout.opened_at_zeta}
        evals_omega_zeta = {
            name: scalar(f"{name}(omega*zeta)") for name in layout.opened_at_omega_zeta
        }
        w_zeta = point("opening proof W_zeta")
        w_omega_zeta = point("opening proof W_omega_zeta")
        return cls(k, commitments, evals_zeta, evals_omega_zeta, w_zeta, w_omega_zeta)

    def to_json(self) -> dict[str, Any]:
        return {"log_domain_size": self.k, "bytes": "0x" + self.to_bytes().hex()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Proof:
        try:
            k = int(data["log_domain_size"])
            text = str(data["bytes"])
        except KeyError as missing:
            raise MalformedProofError(f"proof JSON is missing field {missing}") from None
        if not text.startswith("0x"):
            raise MalformedProofError("proof bytes must be 0x-prefixed hex")
        try:
            raw = bytes.fromhex(text[2:])
        except ValueError:
            raise MalformedProofError("proof bytes are not valid hex") from None
        return cls.from_bytes(k, raw)


def proof_size(layout: Layout) -> int:
    """Bytes in a proof for this layout (2,080 at every size)."""
    points = len(layout.round1_columns) + len(layout.round2_columns) + QUOTIENT_CHUNKS + 2
    scalars = len(layout.opened_at_zeta) + len(layout.opened_at_omega_zeta)
    return points * G1_BYTES + scalars * WORD_BYTES
