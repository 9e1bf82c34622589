"""The native core (zkmeter_native, arkworks) side by side with its baselines, in one run.

Run: ``pytest benches/bench_native.py --benchmark-only`` (``-k n65536`` for 2^16 only).
``zkmeter bench table`` prints the comparisons:

* MSM through the binding (scalar buffer in, point out; our batch-affine Pippenger, the
  default) against arkworks' own ``msm_bigint`` timed inside Rust on the same bases and
  scalars, and our Pippenger timed inside Rust the same way; the Rust timings are taken in
  the benchmark's untimed ``setup`` before every round, so the three alternate. Recorded in
  ``extra_info`` (``arkworks_seconds``, ``pippenger_seconds``, their medians and
  ``pippenger_over_arkworks``, the ratio of the medians).
* native MSM 2^16 against the pure-Python Pippenger on 2 processes (the prover's setting);
* NTT 2^16 and 2^20 against ``prover.ntt.ntt_python``, and the cost of the int-list
  dispatch (``prover.ntt.ntt`` on the native backend: list -> buffer -> mpz list);
* our FFT (native/src/fft.rs, the default) against arkworks' ``Radix2EvaluationDomain``,
  both timed inside Rust on the same values and interleaved round by round
  (``ours_over_arkworks`` in ``extra_info``, forward and inverse);
* the two-pair pairing check against py_ecc.

Bases are 2^20 multiples of the generator by random scalars (arkworks' fixed-base
``batch_mul``, built once per session, not timed); scalars are uniform in [0, R).
"""

from __future__ import annotations

import random
from functools import cache
from statistics import median
from typing import Any

import pytest
from py_ecc.optimized_bn128.optimized_curve import G1, G2, multiply, neg

from prover import native
from prover import ntt as ntt_module
from prover.msm import msm_python, prepare_bases
from prover.ntt import ntt_python
from verifier.backend import use_backend
from verifier.constants import R
from verifier.curve import pairing_product_is_one_native, pairing_product_is_one_py_ecc

pytestmark = pytest.mark.skipif(
    not native.available(), reason=f"zkmeter_native not built: {native.unavailable_reason()}"
)

MAX_LOG = 20
MSM_SIZES = [pytest.param(1 << 16, id="n65536"), pytest.param(1 << 20, id="n1048576")]
NTT_SIZES = [pytest.param(16, id="n65536"), pytest.param(20, id="n1048576")]


def _random_scalars(n: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    return [rng.randrange(R) for _ in range(n)]


@cache
def all_bases() -> Any:
    """2^20 native bases s_i G1 (random s_i)."""
    scalars = native.scalars_to_buffer(_random_scalars(1 << MAX_LOG, 0xBA5E))
    return native.g1_bases(native.generator_multiples(scalars))


@cache
def scalar_buffer(n: int) -> bytes:
    return native.scalars_to_buffer(_random_scalars(n, n))


@pytest.mark.parametrize("n", MSM_SIZES)
def test_msm_native_vs_arkworks(benchmark: Any, n: int) -> None:
    """The binding's MSM (ours); arkworks' and ours timed in Rust, interleaved round by
    round."""
    bases = all_bases().slice(0, n)
    scalars = scalar_buffer(n)
    arkworks: list[float] = []
    pippenger: list[float] = []

    def time_both_in_rust() -> None:
        arkworks.extend(native.msm_seconds(bases, scalars, "arkworks", 1))
        pippenger.extend(native.msm_seconds(bases, scalars, "pippenger", 1))

    rounds = 7 if n <= 1 << 16 else 3
    result = benchmark.pedantic(
        native.msm,
        args=(bases, scalars),
        kwargs={"algorithm": "pippenger"},
        setup=time_both_in_rust,
        rounds=rounds,
        warmup_rounds=1,
        iterations=1,
    )
    assert result == native.msm(bases, scalars, algorithm="arkworks")
    benchmark.extra_info.update(
        n=n,
        impl="zkmeter_native.g1_msm, algorithm=pippenger",
        threads=native.num_threads(),
        arkworks_seconds=arkworks,
        arkworks_median=median(arkworks),
        pippenger_seconds=pippenger,
        pippenger_median=median(pippenger),
        pippenger_over_arkworks=median(pippenger) / median(arkworks),
    )
    if benchmark.stats is not None:  # None under --benchmark-disable
        binding = float(benchmark.stats.stats.median)
        benchmark.extra_info["binding_over_arkworks"] = binding / median(arkworks)


def test_msm_python_2_processes(benchmark: Any) -> None:
    """The pure-Python Pippenger at 2^16 on 2 forked processes: the baseline of the native
    MSM at 2^16 (same bases, same scalars)."""
    n = 1 << 16
    raw = all_bases().slice(0, n).to_affine_bytes()
    bases = prepare_bases(native.g1_from_buffer(raw))
    scalars = native.scalars_from_buffer(scalar_buffer(n))
    benchmark.extra_info.update(n=n, impl="prover.msm.msm_python, processes=2")
    result = benchmark.pedantic(
        msm_python, args=(bases, scalars), kwargs={"processes": 2}, rounds=3, iterations=1
    )
    assert result == native.msm(all_bases().slice(0, n), scalar_buffer(n))


@pytest.mark.parametrize("k", NTT_SIZES)
def test_ntt_native(benchmark: Any, k: int) -> None:
    """The native FFT (ours) through the binding, scalar buffer in and out."""
    coeffs = scalar_buffer(1 << k)
    benchmark.extra_info.update(n=1 << k, impl="zkmeter_native.ntt")
    out = benchmark.pedantic(native.ntt, args=(coeffs, k), rounds=7, iterations=1)
    assert len(out) == len(coeffs)


@pytest.mark.parametrize("inverse", [False, True], ids=["forward", "inverse"])
@pytest.mark.parametrize("k", NTT_SIZES)
def test_ntt_ours_vs_arkworks(benchmark: Any, k: int, inverse: bool) -> None:
    """Our FFT through the binding; ours and arkworks' timed in Rust, interleaved."""
    values = scalar_buffer(1 << k)
    timed: dict[str, list[float]] = {name: [] for name in native.NTT_ALGORITHMS}

    def time_both_in_rust() -> None:
        for name in native.NTT_ALGORITHMS:
            timed[name].extend(native.ntt_seconds(values, k, name, 1, inverse=inverse))

    transform = native.intt if inverse else native.ntt
    out = benchmark.pedantic(
        transform, args=(values, k), setup=time_both_in_rust, rounds=7, warmup_rounds=1
    )
    assert len(out) == len(values)
    benchmark.extra_info.update(
        n=1 << k,
        impl=f"zkmeter_native.{'intt' if inverse else 'ntt'} (ours)",
        ours_seconds=timed["ours"],
        arkworks_seconds=timed["arkworks"],
        ours_over_arkworks=median(timed["ours"]) / median(timed["arkworks"]),
    )


@pytest.mark.parametrize("k", NTT_SIZES)
def test_ntt_native_from_ints(benchmark: Any, k: int) -> None:
    """``prover.ntt.ntt`` on the native backend: a list of ints in, a list of mpz out (what
    the prover pays today at the int-list boundary)."""
    coeffs = native.scalars_from_buffer(scalar_buffer(1 << k))
    benchmark.extra_info.update(n=1 << k, impl="prover.ntt.ntt, native backend")
    with use_backend("native"):
        out = benchmark.pedantic(ntt_module.ntt, args=(coeffs, k), rounds=5, iterations=1)
    assert len(out) == len(coeffs)


@pytest.mark.parametrize("k", NTT_SIZES)
def test_ntt_python(benchmark: Any, k: int) -> None:
    """The pure-Python Stockham NTT on gmpy2 (``prover.ntt.ntt_python``), same input."""
    coeffs = native.scalars_from_buffer(scalar_buffer(1 << k))
    benchmark.extra_info.update(n=1 << k, impl="prover.ntt.ntt_python")
    rounds = 3 if k <= 16 else 2
    out = benchmark.pedantic(ntt_python, args=(coeffs, k), rounds=rounds, iterations=1)
    assert [int(x) for x in out[:4]] == native.scalars_from_buffer(
        native.ntt(scalar_buffer(1 << k), k)
    )[:4]


def _pairs() -> list[tuple[Any, Any]]:
    """e(a G1, b G2) * e(-(a b) G1, G2) = 1, the verifier's two-pair shape."""
    a, b = 0xA11CE, 0xB0B
    return [(multiply(G1, a), multiply(G2, b)), (neg(multiply(G1, a * b % R)), G2)]


@pytest.mark.parametrize(
    "impl",
    [
        pytest.param("native", id="native"),
        pytest.param("py_ecc", id="py_ecc"),
    ],
)
def test_pairing_check(benchmark: Any, impl: str) -> None:
    """``verifier.curve.pairing_product_is_one`` for two pairs of py_ecc points: native
    (encode, decode with G2 subgroup checks, multi-pairing) against py_ecc."""
    pairs = _pairs()
    check = pairing_product_is_one_native if impl == "native" else pairing_product_is_one_py_ecc
    benchmark.extra_info.update(impl=f"pairing_product_is_one_{impl}, two pairs")
    rounds = 20 if impl == "native" else 3
    assert benchmark.pedantic(check, args=(pairs,), rounds=rounds, iterations=1)
