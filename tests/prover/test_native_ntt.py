"""zkmeter_native NTTs against the pure-Python transforms of prover.ntt (the reference),
the protocol's root of unity and coset shifts, and prover.ntt's dispatch."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from circuits.usage_batch import EXTENSION_FACTOR_LOG
from prover import native
from prover import ntt as ntt_module
from prover.ntt import (
    NTTSizeError,
    VanishingOnCosetError,
    coset_intt_python,
    coset_ntt_python,
    intt_python,
    ntt_python,
)
from verifier.backend import use_backend
from verifier.constants import COSET_SHIFT, MULTIPLICATIVE_GENERATOR, TWO_ADICITY, R
from verifier.fr import root_of_unity

pytestmark = pytest.mark.skipif(
    not native.available(), reason=f"zkmeter_native not built: {native.unavailable_reason()}"
)

element = st.one_of(st.integers(0, R - 1), st.sampled_from([0, 1, R - 1]))


def buf(values: list[int]) -> bytes:
    return native.scalars_to_buffer(values)


def ints(raw: bytes) -> list[int]:
    return native.scalars_from_buffer(raw)


@pytest.mark.parametrize("k", range(TWO_ADICITY + 1))
def test_root_of_unity_is_the_protocols(k: int) -> None:
    """omega = g^((R-1)/2^28)^(2^(28-k)), g = 5 (PROTOCOL §1): arkworks' domain generator."""
    import zkmeter_native

    omega = native.scalar_from_word(zkmeter_native.root_of_unity(k))
    expected = pow(pow(MULTIPLICATIVE_GENERATOR, (R - 1) >> 28, R), 1 << (28 - k), R)
    assert omega == expected == root_of_unity(k)


@pytest.mark.parametrize("k", [TWO_ADICITY + 1, -1, 1 << 40])
def test_domain_sizes_outside_the_two_adicity_are_refused(k: int) -> None:
    with pytest.raises(ValueError, match=r"k must be in 0\.\.=28"):
        native.ntt(b"", k)
    with pytest.raises(ValueError, match=r"k must be in 0\.\.=28"):
        native.intt(b"", k)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(0, 7).flatmap(lambda k: st.tuples(st.just(k), st.lists(element, max_size=1 << k)))
)
def test_ntt_and_coset_ntt_match_python(case: tuple[int, list[int]]) -> None:
    """Any length up to n (zero-padded), edge values included."""
    k, coeffs = case
    assert ints(native.ntt(buf(coeffs), k)) == ntt_python(coeffs, k)
    assert ints(native.coset_ntt(buf(coeffs), k)) == coset_ntt_python(coeffs, k)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(0, 7).flatmap(
        lambda k: st.tuples(st.just(k), st.lists(element, min_size=1 << k, max_size=1 << k))
    )
)
def test_intt_and_coset_intt_match_python_and_invert(case: tuple[int, list[int]]) -> None:
    k, values = case
    coeffs = ints(native.intt(buf(values), k))
    assert coeffs == intt_python(values, k)
    assert ints(native.ntt(buf(coeffs), k)) == values
    coset_coeffs = ints(native.coset_intt(buf(values), k))
    assert coset_coeffs == coset_intt_python(values, k)
    assert ints(native.coset_ntt(buf(coset_coeffs), k)) == values


@pytest.mark.parametrize("k", range(3))
def test_quotient_coset_shifts_match_python(k: int) -> None:
    """The prover's cosets s_c H, s_c = COSET_SHIFT * omega_4N^c (PROTOCOL §6 step 4)."""
    k = 6
    shift = COSET_SHIFT * pow(root_of_unity(k + EXTENSION_FACTOR_LOG), k, R) % R
    rng = random.Random(k)
    coeffs = [rng.randrange(R) for _ in range(1 << k)]
    evals = ints(native.coset_ntt(buf(coeffs), k, shift))
    assert evals == coset_ntt_python(coeffs, k, shift)
    assert ints(native.coset_intt(buf(evals), k, shift)) == coeffs


def test_size_2_pow_14_matches_python() -> None:
    rng = random.Random(14)
    coeffs = [rng.randrange(R) for _ in range(1 << 14)]
    assert ints(native.ntt(buf(coeffs), 14)) == ntt_python(coeffs, 14)


@pytest.mark.parametrize("k", [0, 1, 2, 11, 13, 15])
def test_our_fft_and_arkworks_agree_both_ways(k: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """native/src/fft.rs (the default) against arkworks' FFT as the oracle (ZKMETER_NTT),
    through every transform of the binding, below and above its parallel threshold."""
    rng = random.Random(k)
    values = buf([rng.randrange(R) for _ in range(1 << k)])
    shift = 5
    results = {}
    for algorithm in native.NTT_ALGORITHMS:
        monkeypatch.setenv("ZKMETER_NTT", algorithm)
        results[algorithm] = (
            native.ntt(values, k),
            native.intt(values, k),
            native.coset_ntt(values, k, shift),
            native.coset_intt(values, k, shift),
        )
    assert results["ours"] == results["arkworks"]


def test_unknown_ntt_algorithm_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZKMETER_NTT", "radix3")
    with pytest.raises(ValueError, match='ZKMETER_NTT: unknown NTT "radix3"'):
        native.ntt(buf([1, 2]), 1)
    with pytest.raises(ValueError, match="unknown NTT"):
        native.ntt_seconds(buf([1, 2]), 1, "radix3")


def test_ntt_seconds_times_both_algorithms() -> None:
    values = buf(list(range(1 << 10)))
    for algorithm in native.NTT_ALGORITHMS:
        for inverse in (False, True):
            seconds = native.ntt_seconds(values, 10, algorithm, repeats=2, inverse=inverse)
            assert len(seconds) == 2 and all(s > 0 for s in seconds)
    with pytest.raises(ValueError, match="repeats"):
        native.ntt_seconds(values, 10, "ours", repeats=0)


def test_native_length_and_shift_errors() -> None:
    with pytest.raises(ValueError, match="do not fit a domain of size 2\\^1"):
        native.ntt(buf([1, 2, 3]), 1)
    with pytest.raises(ValueError, match="expected 4 values"):
        native.intt(buf([1, 2, 3]), 2)
    with pytest.raises(ValueError, match="shift must be non-zero"):
        native.coset_ntt(buf([1]), 0, shift=R)
    with pytest.raises(ValueError, match="not below"):
        native.ntt(R.to_bytes(32, "little"), 0)


# -------------------------------------------------------------- dispatch in prover.ntt


def test_prover_ntt_dispatch_gives_the_same_mpz_lists() -> None:
    """prover.ntt reads any integers mod R (the prover passes unreduced sums): both backends
    agree on them, and both return gmpy2.mpz."""
    rng = random.Random(9)
    k = 5
    coeffs = [rng.randrange(-(R**2), R**2) for _ in range(20)]
    values = [rng.randrange(3 * R) for _ in range(1 << k)]
    results = {}
    for choice in ("native", "python"):
        with use_backend(choice):  # type: ignore[arg-type]
            results[choice] = (
                ntt_module.ntt(coeffs, k),
                ntt_module.intt(values, k),
                ntt_module.coset_ntt(coeffs, k, 7),
                ntt_module.coset_intt(values, k, -3),
            )
    assert results["native"] == results["python"]
    assert all(type(x).__name__ == "mpz" for out in results["native"] for x in out)


def test_prover_ntt_dispatch_keeps_its_errors() -> None:
    with use_backend("native"):
        with pytest.raises(NTTSizeError):
            ntt_module.ntt([1, 2, 3], 1)
        with pytest.raises(NTTSizeError):
            ntt_module.intt([1, 2, 3], 2)
        with pytest.raises(NTTSizeError):
            ntt_module.ntt([1], TWO_ADICITY + 1)
        with pytest.raises(VanishingOnCosetError):
            ntt_module.coset_ntt([1, 2], 1, shift=2 * R)
        with pytest.raises(VanishingOnCosetError):
            ntt_module.coset_intt([1, 2], 1, shift=0)
