"""KZG micro-benchmarks: commit (Lagrange basis), open, verify, and one 2-pair pairing product.

Sizes 2^10 ("small") and 2^12. Run only the small ones on a shared machine:
``pytest benches/bench_kzg.py -k small --benchmark-only``; ``--benchmark-disable`` runs
each body once as a smoke test. The SRS and Lagrange basis are built once per size (not
timed) with a seeded insecure development SRS.
"""

from __future__ import annotations

import random
import warnings
from typing import Any

import pytest
from py_ecc.optimized_bn128.optimized_curve import G1, G2, multiply, neg

from prover.kzg import commit_lagrange, commit_monomial, open_at, verifier_key
from prover.srs import SRS, InsecureSRSWarning, lagrange_basis
from verifier.constants import R
from verifier.curve import pairing_product_is_one
from verifier.kzg import verify_opening

SIZES = [pytest.param(10, id="small-2^10"), pytest.param(12, id="2^12")]

_SETUPS: dict[int, tuple[SRS, list[tuple[int, int]]]] = {}


def setup_for(k: int) -> tuple[SRS, list[tuple[int, int]]]:
    if k not in _SETUPS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", InsecureSRSWarning)
            srs = SRS.insecure_development((1 << k) + 8, seed=k)
        _SETUPS[k] = (srs, lagrange_basis(srs, k))
    return _SETUPS[k]


@pytest.mark.parametrize("k", SIZES)
def test_commit_lagrange_full_scalars(benchmark: Any, k: int) -> None:
    _, basis = setup_for(k)
    rng = random.Random(1)
    values = [rng.randrange(R) for _ in range(1 << k)]
    benchmark(commit_lagrange, values, basis)


@pytest.mark.parametrize("k", SIZES)
def test_commit_lagrange_16bit_scalars(benchmark: Any, k: int) -> None:
    _, basis = setup_for(k)
    rng = random.Random(2)
    values = [rng.randrange(1 << 16) for _ in range(1 << k)]
    benchmark(commit_lagrange, values, basis)


@pytest.mark.parametrize("k", SIZES)
def test_open(benchmark: Any, k: int) -> None:
    srs, _ = setup_for(k)
    rng = random.Random(3)
    coeffs = [rng.randrange(R) for _ in range(1 << k)]
    benchmark(open_at, coeffs, rng.randrange(R), srs)


@pytest.mark.parametrize("k", SIZES)
def test_verify(benchmark: Any, k: int) -> None:
    srs, _ = setup_for(k)
    rng = random.Random(4)
    coeffs = [rng.randrange(R) for _ in range(1 << k)]
    z = rng.randrange(R)
    commitment = commit_monomial(coeffs, srs)
    y, proof = open_at(coeffs, z, srs)
    vk = verifier_key(srs)
    assert benchmark(verify_opening, vk, commitment, z, y, proof)


def test_pairing_product_two_pairs_small(benchmark: Any) -> None:
    """e(a·G1, G2) · e(-G1, a·G2) == 1: the cost of every KZG check in this project."""
    a = 123456789
    pairs = [(multiply(G1, a), G2), (neg(G1), multiply(G2, a))]
    assert benchmark(pairing_product_is_one, pairs)
