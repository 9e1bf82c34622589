"""Shared set-up for the usage-batch proof tests: a development SRS, proving keys, batches,
and a cheating prover that skips the honest prover's input checks."""

from __future__ import annotations

import dataclasses
import random
import warnings
from collections.abc import Sequence
from functools import cache

from circuits.constants import R
from circuits.public_inputs import Aggregate, BatchHeader, PublicInputs
from circuits.usage_batch import Layout
from prover.prover import ProvingResult, prove_batch, prove_witness
from prover.proving_key import ProvingKey
from prover.srs import SRS, InsecureSRSWarning
from prover.witness import UsageRow, Witness, aggregates_of, build_witness

SRS_LOG_SIZE = 12
HEADER = BatchHeader(
    chain_id=31337,
    settlement=0x5FBDB2315678AFECB367F032D93F642F64180AA3,
    operator=0x70997970C51812DC3A010C7D01B50E0D17DC79C8,
    batch_seq=0,
)
PAYER_A = 0xF39FD6E51AAD88F6F4CE6AB8827279CFFFB92266
PAYER_B = 0x3C44CDDDB6A900FA2B585DD299E03D12FA4293BC


@cache
def development_srs() -> SRS:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureSRSWarning)
        return SRS.insecure_development(
            (1 << SRS_LOG_SIZE) + 8, seed=20261128, lagrange_log_sizes=(8, 9, 10)
        )


@cache
def proving_key(k: int) -> ProvingKey:
    return ProvingKey.build(development_srs(), k)


def seeded(seed: int) -> random.Random:
    return random.Random(seed)


def worked_example_rows() -> list[UsageRow]:
    """12 calls x 800 tokens by one payer to model 1: 9,600 tokens."""
    return [UsageRow(PAYER_A, 1, nonce, 800) for nonce in range(1, 13)]


def random_rows(rng: random.Random, channels: int, max_calls: int) -> list[UsageRow]:
    rows: list[UsageRow] = []
    payers = [rng.getrandbits(160) for _ in range(channels)]
    for payer in payers:
        model = rng.randrange(1, 1 << 20)
        first = rng.randrange(1, 1 << 40)
        for k in range(rng.randrange(1, max_calls + 1)):
            rows.append(UsageRow(payer, model, first + k, rng.randrange(0, 1 << 32)))
    rng.shuffle(rows)
    return rows


def prove(
    rows: Sequence[UsageRow], k: int = 8, header: BatchHeader = HEADER, seed: int = 1
) -> ProvingResult:
    rng = seeded(seed)
    return prove_batch(
        proving_key(k),
        header,
        rows,
        processes=1,
        randomness=lambda: rng.getrandbits(253),
    )


def cheat(
    witness: Witness,
    aggregates: Sequence[Aggregate],
    header: BatchHeader = HEADER,
    seed: int = 2,
) -> ProvingResult:
    """Prove a witness for claimed aggregates without any check: the malicious prover."""
    rng = seeded(seed)
    public = PublicInputs(header, witness.layout.k, tuple(aggregates))
    return prove_witness(
        proving_key(witness.layout.k),
        public,
        witness,
        processes=1,
        randomness=lambda: rng.getrandbits(253),
        self_check=False,
    )


def witness_with_columns(witness: Witness, **columns: list[int]) -> Witness:
    """A copy of ``witness`` with some round-1 columns replaced (multiplicities recomputed
    from the limbs unless ``m`` is given, ``cont[i] = q[i+1](1 - s[i+1])`` cyclically from
    q and s unless ``cont`` is given)."""
    merged = dict(witness.columns)
    merged.update(columns)
    layout: Layout = witness.layout
    if "cont" not in columns:
        q, s, n = merged["q"], merged["s"], layout.size
        merged["cont"] = [q[(i + 1) % n] * (1 - s[(i + 1) % n]) % R for i in range(n)]
    if "m" not in columns:
        counts = [0] * layout.size
        for name in layout.limb_columns:
            for value in merged[name]:
                if 0 <= value < (1 << layout.limb_bits):
                    counts[value] += 1
        merged["m"] = counts
    return dataclasses.replace(witness, columns=merged)


__all__ = [
    "HEADER",
    "PAYER_A",
    "PAYER_B",
    "aggregates_of",
    "build_witness",
    "cheat",
    "development_srs",
    "prove",
    "proving_key",
    "random_rows",
    "seeded",
    "witness_with_columns",
    "worked_example_rows",
]


def rotated(witness: Witness, shift: int) -> dict[str, list[int]]:
    """The witness's round-1 row columns moved cyclically: row i holds the old row i + shift."""
    names = ("key", "nonce", "q", "s", *witness.layout.limb_columns)
    n = witness.layout.size
    return {name: [witness.columns[name][(i + shift) % n] for i in range(n)] for name in names}
