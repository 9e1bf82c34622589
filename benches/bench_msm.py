"""G1 MSM, pairing and point-addition benchmarks (pytest-benchmark).

Run the small sizes only:   pytest benches/bench_msm.py -k 1024 --benchmark-only
Everything (quiet machine): pytest benches/bench_msm.py --benchmark-only

The py_ecc baseline (multiply-and-add) runs at n = 2^10 only; it is linear in n, so its
2^16 figure is 64 times the 2^10 one.  Targets: Pippenger at 2^16 with 254-bit scalars
>= 100x faster than that scaled baseline; 32-bit scalars >= 5x faster than 254-bit ones;
2 processes >= 1.7x faster than 1.
"""

import random
from typing import Any

import pytest
from py_ecc.optimized_bn128.optimized_curve import G1, G2, add, multiply
from py_ecc.optimized_bn128.optimized_pairing import pairing

from prover.g1 import (
    affine_to_jacobian,
    batch_to_affine,
    jacobian_add,
    jacobian_add_affine,
    scalar_mul,
)
from prover.msm import Bases, msm, msm_reference, prepare_bases
from verifier.constants import R
from verifier.curve import G1Affine, pairing_product_is_one

LOG_SIZES = list(range(10, 17))
MAX_N = 1 << LOG_SIZES[-1]


@pytest.fixture(scope="session")
def points() -> list[G1Affine]:
    """2^16 distinct points Q + i D (Q, D random multiples of G) by successive mixed
    additions and one batch conversion to affine: ~0.3 s instead of minutes of py_ecc."""
    rng = random.Random(0xB254)
    q = scalar_mul((1, 2), rng.randrange(1, R))
    d = scalar_mul((1, 2), rng.randrange(1, R))
    cur = affine_to_jacobian(q)
    acc = []
    for _ in range(MAX_N):
        acc.append(cur)
        cur = jacobian_add_affine(cur, d)
    return [(int(x), int(y)) for x, y in batch_to_affine(acc)]


@pytest.fixture(scope="session")
def bases(points: list[G1Affine]) -> Bases:
    return prepare_bases(points)


def _scalars(n: int, bits: int) -> list[int]:
    rng = random.Random(n * 1000 + bits)
    if bits >= 254:
        return [rng.randrange(R) for _ in range(n)]
    return [rng.getrandbits(bits) for _ in range(n)]


@pytest.mark.parametrize("processes", [1, 2], ids=lambda p: f"p{p}")
@pytest.mark.parametrize("bits", [254, 32], ids=lambda b: f"b{b}")
@pytest.mark.parametrize("n", [1 << k for k in LOG_SIZES], ids=lambda n: f"n{n}")
def test_msm_pippenger(
    benchmark: Any, points: list[G1Affine], n: int, bits: int, processes: int
) -> None:
    sub = prepare_bases(points[:n])
    scalars = _scalars(n, bits)
    benchmark.extra_info.update(n=n, bits=bits, processes=processes, impl="pippenger")
    result = benchmark.pedantic(
        msm, args=(sub, scalars), kwargs={"processes": processes}, rounds=3, iterations=1
    )
    assert result != (0, 0)


@pytest.mark.parametrize("n", [1 << 10], ids=lambda n: f"n{n}")
def test_msm_py_ecc_baseline(benchmark: Any, points: list[G1Affine], n: int) -> None:
    scalars = _scalars(n, 254)
    benchmark.extra_info.update(n=n, bits=254, processes=1, impl="py_ecc multiply-and-add")
    result = benchmark.pedantic(msm_reference, args=(points[:n], scalars), rounds=1, iterations=1)
    assert result == msm(points[:n], scalars)


def test_pairing_py_ecc(benchmark: Any) -> None:
    benchmark.extra_info.update(impl="py_ecc optimized pairing, one pair")
    benchmark.pedantic(pairing, args=(G2, G1), rounds=3, iterations=1)


def test_pairing_product_two_pairs(benchmark: Any) -> None:
    pairs = [(G1, G2), (multiply(G1, R - 1), G2)]
    benchmark.extra_info.update(impl="pairing_product_is_one, two pairs")
    assert benchmark.pedantic(pairing_product_is_one, args=(pairs,), rounds=3, iterations=1)


def test_g1_add_py_ecc(benchmark: Any) -> None:
    p, q = multiply(G1, 12345), multiply(G1, 67890)
    benchmark.extra_info.update(impl="py_ecc optimized add")
    benchmark(add, p, q)


def test_g1_add_jacobian(benchmark: Any, points: list[G1Affine]) -> None:
    p = jacobian_add_affine(affine_to_jacobian(points[0]), points[1])  # Z != 1
    q = jacobian_add_affine(affine_to_jacobian(points[2]), points[3])
    benchmark.extra_info.update(impl="prover.g1.jacobian_add on mpz")
    benchmark(jacobian_add, p, q)


def test_g1_add_mixed(benchmark: Any, points: list[G1Affine]) -> None:
    p = jacobian_add_affine(affine_to_jacobian(points[0]), points[1])  # Z != 1
    a = prepare_bases(points[2:3])
    benchmark.extra_info.update(impl="prover.g1.jacobian_add_affine on mpz")
    benchmark(jacobian_add_affine, p, (a.xs[0], a.ys[0]))
