"""Proof generation and verification of full usage batches (N rows, 16 channels).

Run: `pytest benches/bench_prove.py --benchmark-only` (add `-k 1024` for the smallest size).
Each proving result records calls proven per second and where the time went
(MSM, NTT, witness, other) in ``extra_info``; `zkmeter bench table` prints them.
`test_prove_backend` sets the native rounds (``prover.native_prover``) against the
pure-Python rounds on the same batch in the same run. `test_prove_large` proves 2^20 rows
(16 and 1,024 channels) and records the peak RSS; it runs only with
``ZKMETER_BENCH_LARGE=1`` (minutes, and a 2^20 SRS).
"""

from __future__ import annotations

import os
import random
import resource
import warnings
from functools import cache
from typing import Any

import pytest

from circuits.public_inputs import BatchHeader
from prover.prover import ProvingResult, prove_batch
from prover.proving_key import ProvingKey
from prover.srs import SRS, InsecureSRSWarning
from prover.witness import UsageRow
from verifier.backend import use_backend
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


def full_batch(k: int, channels: int = CHANNELS) -> list[UsageRow]:
    """2^log_size receipts over ``channels`` channels, token counts uniform in [0, 2^32)."""
    rng = random.Random(k)
    per_channel = (1 << k) // channels
    return [
        UsageRow(payer, 1 + c, 1 + i, rng.getrandbits(32))
        for c, payer in enumerate(rng.getrandbits(160) for _ in range(channels))
        for i in range(per_channel)
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


@pytest.mark.parametrize("backend", ["native", "python"])
def test_prove_backend(benchmark: Any, backend: str) -> None:
    """2^10 rows: the native rounds against the pure-Python rounds (2 processes), same run."""
    k = 10
    rows = full_batch(k)
    with use_backend(backend):  # type: ignore[arg-type]
        pk = ProvingKey.build(development_srs(), k)
        benchmark.group = "prove-backends"
        result: ProvingResult = benchmark.pedantic(
            prove_batch, args=(pk, HEADER, rows), kwargs={"processes": 2}, rounds=3, iterations=1
        )
    assert verify_batch_proof(pk.vk, result.public, result.proof).accepted


LARGE = os.environ.get("ZKMETER_BENCH_LARGE") == "1"


@pytest.mark.skipif(not LARGE, reason="set ZKMETER_BENCH_LARGE=1 to prove 2^20 rows")
@pytest.mark.parametrize("channels", [16, 1024], ids=["C16", "C1024"])
def test_prove_large(benchmark: Any, channels: int) -> None:
    """2^20 receipts (1,048,576) over 16 or 1,024 channels; peak RSS in extra_info."""
    k = 20
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureSRSWarning)
        srs = SRS.insecure_development((1 << k) + 8, seed=2020, lagrange_log_sizes=(k,))
    pk = ProvingKey.build(srs, k)
    rows = full_batch(k, channels)
    benchmark.group = "prove-large"
    result: ProvingResult = benchmark.pedantic(
        prove_batch, args=(pk, HEADER, rows), rounds=1, iterations=1
    )
    benchmark.extra_info.update(
        rows=len(rows),
        channels=channels,
        calls_per_second=len(rows) / result.timings.total,
        peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        **{f"seconds_{name}": v for name, v in result.timings.seconds.items()},
    )
    assert verify_batch_proof(pk.vk, result.public, result.proof).accepted
