"""Proof generation and verification of full usage batches (N rows, 16 channels).

Run: `pytest benches/bench_prove.py --benchmark-only` (add `-k 1024` for the smallest size).
Each proving result records calls proven per second and where the time went
(MSM, NTT, witness, other) in ``extra_info``; `zkmeter bench table` prints them.
"""

from __future__ import annotations

import random
import warnings
from functools import cache
from typing import Any

import pytest

from circuits.public_inputs import BatchHeader
from prover.prover import ProvingResult, prove_batch
from prover.proving_key import ProvingKey
from prover.srs import SRS, InsecureSRSWarning
from prover.witness import UsageRow
from verifier.usage_verifier import verify_batch_proof

LOG_SIZES = [10, 12, 14, 16]
CHANNELS = 16
HEADER = BatchHeader(
    31337, 0x5FBDB2315678AFECB367F032D93F642F64180AA3, 0x70997970C51812DC3A010C7D01B50E0D17DC79C8, 7
)


@cache
def development_srs() -> SRS:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureSRSWarning)
        return SRS.insecure_development(
            (1 << max(LOG_SIZES)) + 8, seed=2026, lagrange_log_sizes=LOG_SIZES
        )


@cache
def proving_key(k: int) -> ProvingKey:
    return ProvingKey.build(development_srs(), k)


def full_batch(k: int) -> list[UsageRow]:
    """2^log_size receipts over 16 channels, token counts uniform in [0, 2^32)."""
    rng = random.Random(k)
    per_channel = (1 << k) // CHANNELS
    return [
        UsageRow(payer, 1 + c, 1 + k, rng.getrandbits(32))
        for c, payer in enumerate(rng.getrandbits(160) for _ in range(CHANNELS))
        for k in range(per_channel)
    ]


@cache
def proven(k: int) -> ProvingResult:
    return prove_batch(proving_key(k), HEADER, full_batch(k), processes=2)


@pytest.mark.parametrize("k", LOG_SIZES, ids=[f"rows{1 << k}" for k in LOG_SIZES])
def test_prove(benchmark: Any, k: int) -> None:
    pk, rows = proving_key(k), full_batch(k)
    benchmark.group = "prove"
    result: ProvingResult = benchmark.pedantic(
        prove_batch, args=(pk, HEADER, rows), kwargs={"processes": 2}, rounds=1, iterations=1
    )
    seconds = result.timings.total
    benchmark.extra_info.update(
        rows=len(rows),
        calls_per_second=len(rows) / seconds,
        proof_bytes=len(result.proof.to_bytes()),
        **{f"seconds_{k}": v for k, v in result.timings.seconds.items()},
    )
    assert verify_batch_proof(pk.vk, result.public, result.proof).accepted


@pytest.mark.parametrize("k", LOG_SIZES, ids=[f"rows{1 << k}" for k in LOG_SIZES])
def test_verify(benchmark: Any, k: int) -> None:
    result = proven(k)
    vk = proving_key(k).vk
    benchmark.group = "verify"
    verdict = benchmark.pedantic(
        verify_batch_proof, args=(vk, result.public, result.proof), rounds=3, iterations=1
    )
    assert verdict.accepted
