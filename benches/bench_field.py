"""Benchmarks: Fr multiplication and inversion, and our NTT side by side with galois.

Run only the small sizes: ``pytest benches/bench_field.py -k 4096``. The full set
(2^12, 2^14, 2^16) is for the lead's quiet machine: ``pytest benches/bench_field.py``.

galois oracle: ``galois.ntt(x, modulus=R)`` builds ``GF(R)`` without a primitive element and
spends ~85-100 s searching for one on its first call. It is a thin wrapper over
``np.fft.fft(GF(x))``, so we call that with ``GF = galois.GF(R, primitive_element=5,
verify=False)`` built once per session (~1 s): the same transform (omega = 5^((R-1)/n), as
ours), with the conversion of the input list to field elements inside the timed part just as
``galois.ntt`` does it.
"""

import random
from typing import Any

import galois
import gmpy2
import numpy as np
import pytest

from prover.ntt import coset_ntt, intt, ntt
from verifier.constants import MULTIPLICATIVE_GENERATOR, R
from verifier.fr import batch_inverse

NTT_SIZES = [4096, 16384, 65536]
SMALL = 4096


@pytest.fixture(scope="session")
def GF() -> Any:
    field = galois.GF(R, primitive_element=MULTIPLICATIVE_GENERATOR, verify=False)
    np.fft.fft(field([1, 2, 3, 4]))  # warm up galois' numpy dispatch outside the timings
    return field


def random_scalars(n: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    return [rng.randrange(R) for _ in range(n)]


@pytest.mark.parametrize("kind", ["int", "mpz"])
def test_fr_mul_4096(benchmark: Any, kind: str) -> None:
    """4096 multiplications mod R: Python int vs gmpy2 mpz."""
    benchmark.group = "fr-mul-4096"
    a, b = random_scalars(SMALL, 1), random_scalars(SMALL, 2)
    modulus: Any = R
    if kind == "mpz":
        a, b, modulus = [gmpy2.mpz(x) for x in a], [gmpy2.mpz(x) for x in b], gmpy2.mpz(R)
    out = benchmark(lambda: [x * y % modulus for x, y in zip(a, b, strict=True)])
    assert out[0] == a[0] * b[0] % R


@pytest.mark.parametrize("method", ["batch_inverse", "pow_each", "gmpy2_invert_each"])
def test_inverse_4096(benchmark: Any, method: str) -> None:
    """Inverting 4096 elements: Montgomery's trick vs one inversion per element."""
    benchmark.group = "fr-inverse-4096"
    xs = [x or 1 for x in random_scalars(SMALL, 3)]
    if method == "batch_inverse":
        out = benchmark(batch_inverse, xs)
    elif method == "pow_each":
        out = benchmark(lambda: [pow(x, -1, R) for x in xs])
    else:
        mr = gmpy2.mpz(R)
        out = benchmark(lambda: [gmpy2.invert(x, mr) for x in xs])
    assert out[7] * xs[7] % R == 1


@pytest.mark.parametrize("impl", ["ours", "galois"])
@pytest.mark.parametrize("n", NTT_SIZES, ids=[str(n) for n in NTT_SIZES])
def test_ntt(benchmark: Any, GF: Any, n: int, impl: str) -> None:
    """Forward NTT of n random coefficients."""
    benchmark.group = f"ntt-{n}"
    k = n.bit_length() - 1
    coeffs = random_scalars(n, n)
    galois_ntt = lambda: np.fft.fft(GF(coeffs))  # noqa: E731 (np.fft.fft on a prebuilt field array)
    out = benchmark(ntt, coeffs, k) if impl == "ours" else benchmark(galois_ntt)
    assert int(out[0]) == sum(coeffs) % R


@pytest.mark.parametrize("n", NTT_SIZES, ids=[str(n) for n in NTT_SIZES])
def test_intt_and_coset_ntt(benchmark: Any, n: int) -> None:
    """Our inverse NTT followed by a coset NTT (the prover's coefficient -> coset path)."""
    benchmark.group = f"ntt-{n}"
    k = n.bit_length() - 1
    values = random_scalars(n, n + 1)
    out = benchmark(lambda: coset_ntt(intt(values, k), k))
    assert len(out) == n
