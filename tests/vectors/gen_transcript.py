"""Regenerate tests/vectors/transcript.json from verifier.transcript.

Run from the repository root: ``python -m tests.vectors.gen_transcript``. The vectors are
also checked independently of the Transcript class by tests/verifier/test_transcript.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from verifier.constants import P, R
from verifier.transcript import DOMAIN_SEPARATOR, Transcript

VECTORS_PATH = Path(__file__).with_name("transcript.json")

# Each sequence is a list of operations: ("word", v), ("scalar", v), ("g1", (x, y)),
# ("challenge",). The generator records the state and challenge after every challenge.
SEQUENCES: list[tuple[str, list[tuple[Any, ...]]]] = [
    ("three challenges, nothing absorbed", [("challenge",), ("challenge",), ("challenge",)]),
    (
        "word extremes",
        [("word", 0), ("word", 1), ("word", 2**256 - 1), ("word", P), ("challenge",)],
    ),
    (
        "scalars around R",
        [("scalar", 0), ("scalar", R - 1), ("scalar", 2**128 + 7), ("challenge",), ("challenge",)],
    ),
    (
        "G1 generator, infinity and 2*G, then interleaved words",
        [
            ("g1", (1, 2)),
            ("g1", (0, 0)),
            (
                "g1",
                (
                    1368015179489954701390400359078579693043519447331113978918064868415326638035,
                    9918110051302171585080402603319702774565515993150576347155970296011118125764,
                ),
            ),
            ("challenge",),
            ("word", 1024),
            ("challenge",),
            ("scalar", 5),
            ("scalar", 25),
            ("challenge",),
        ],
    ),
]


def _hex_word(value: int) -> str:
    return "0x" + value.to_bytes(32, "big").hex()


def build_vectors() -> dict[str, Any]:
    """Run every sequence through Transcript and record ops and outputs as JSON data."""
    out: list[dict[str, Any]] = []
    for name, ops in SEQUENCES:
        transcript = Transcript()
        steps: list[dict[str, Any]] = []
        for op in ops:
            kind = op[0]
            if kind == "word":
                transcript.absorb_word(op[1])
                steps.append({"op": "word", "value": _hex_word(op[1])})
            elif kind == "scalar":
                transcript.absorb_scalar(op[1])
                steps.append({"op": "scalar", "value": _hex_word(op[1])})
            elif kind == "g1":
                transcript.absorb_g1(op[1])
                x, y = op[1]
                steps.append({"op": "g1", "x": _hex_word(x), "y": _hex_word(y)})
            elif kind == "challenge":
                value = transcript.challenge()
                steps.append(
                    {
                        "op": "challenge",
                        "state": "0x" + transcript.state.hex(),
                        "challenge": _hex_word(value),
                    }
                )
            else:  # pragma: no cover - the table above is fixed
                raise ValueError(f"unknown op {kind}")
        out.append({"name": name, "steps": steps})
    return {
        "domain_separator": "0x" + DOMAIN_SEPARATOR.hex(),
        "initial_state": "0x" + Transcript().state.hex(),
        "modulus_R": _hex_word(R),
        "sequences": out,
    }


def main() -> None:
    VECTORS_PATH.write_text(json.dumps(build_vectors(), indent=2) + "\n")


if __name__ == "__main__":
    main()
