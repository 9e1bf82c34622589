"""The verification key of the usage-batch circuit for one domain size.

It holds what a verifier cannot compute cheaply itself: the commitment [T(tau)]_1 to the
fixed range-table column, and [tau]_2 from the SRS ([1]_1 and [1]_2 are the standard
generators). Both are absorbed into the transcript before anything else (PROTOCOL §5.1),
which binds every proof to one SRS and one table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from circuits.usage_batch import Layout
from verifier.curve import (
    G1Affine,
    G2Point,
    InvalidPointError,
    g1_from_bytes,
    g1_to_bytes,
    g2_from_bytes,
    g2_to_bytes,
)

VK_FORMAT = "zkmeter-usage-vk-v2"


class VerificationKeyError(ValueError):
    """A verification-key file is malformed or does not match the proof."""


@dataclass(frozen=True)
class VerificationKey:
    k: int
    table_commitment: G1Affine  # [T(tau)]_1
    g2_tau: G2Point  # [tau]_2

    @property
    def layout(self) -> Layout:
        return Layout(self.k)

    def g2_tau_words(self) -> list[int]:
        """[tau]_2 as the four EIP-197 words (x_im, x_re, y_im, y_re)."""
        raw = g2_to_bytes(self.g2_tau)
        return [int.from_bytes(raw[i : i + 32], "big") for i in range(0, 128, 32)]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": VK_FORMAT,
            "log_domain_size": self.k,
            "table_commitment": "0x" + g1_to_bytes(self.table_commitment).hex(),
            "g2_tau": "0x" + g2_to_bytes(self.g2_tau).hex(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> VerificationKey:
        if data.get("format") != VK_FORMAT:
            raise VerificationKeyError(f"not a zkmeter verification key (format {VK_FORMAT!r})")
        try:
            k = int(data["log_domain_size"])
            table = bytes.fromhex(str(data["table_commitment"]).removeprefix("0x"))
            tau = bytes.fromhex(str(data["g2_tau"]).removeprefix("0x"))
        except (KeyError, ValueError) as error:
            raise VerificationKeyError(f"verification key field unreadable: {error}") from None
        try:
            return cls(k, g1_from_bytes(table), g2_from_bytes(tau))
        except InvalidPointError as error:
            raise VerificationKeyError(f"verification key point invalid: {error}") from None

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> VerificationKey:
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise VerificationKeyError(f"{path} is not JSON: {error}") from None
        return cls.from_json(data)
