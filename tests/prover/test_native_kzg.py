"""zkmeter_native KZG helpers against the pure-Python ones (prover.ntt.evaluate and
divide_by_linear, prover.kzg commitments) and the verifier's opening check; the native
Lagrange basis (G1 inverse FFT) against prover.srs's and against L_i(tau) directly."""

from __future__ import annotations

import random
import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prover import native
from prover.kzg import commit_monomial, open_at, verifier_key
from prover.ntt import divide_by_linear, evaluate
from prover.srs import (
    SRS,
    InsecureSRSWarning,
    _inverse_dft_g1,
    fixed_base_multiples,
    insecure_development_with_tau,
    lagrange_basis,
    lagrange_basis_from_tau,
)
from verifier.backend import use_backend
from verifier.constants import R
from verifier.fr import root_of_unity
from verifier.kzg import verify_opening

pytestmark = pytest.mark.skipif(
    not native.available(), reason=f"zkmeter_native not built: {native.unavailable_reason()}"
)

N_POWERS = 40


@pytest.fixture(scope="module")
def srs_tau() -> tuple[SRS, int]:
    with warnings.catch_warnings(), use_backend("python"):
        warnings.simplefilter("ignore", InsecureSRSWarning)
        return insecure_development_with_tau(N_POWERS, seed=21)


element = st.one_of(st.integers(0, R - 1), st.sampled_from([0, 1, R - 1]))


@settings(max_examples=60, deadline=None)
@given(st.lists(element, max_size=50), element)
def test_evaluate_and_divide_match_python(coeffs: list[int], z: int) -> None:
    buf = native.scalars_to_buffer(coeffs)
    assert native.evaluate(buf, z) == evaluate(coeffs, z)
    q, remainder = native.divide_by_linear(buf, z)
    q_python, remainder_python = divide_by_linear(coeffs, z)
    assert native.scalars_from_buffer(q) == q_python
    assert remainder == remainder_python


def test_commit_and_open_match_python_and_verify(srs_tau: tuple[SRS, int]) -> None:
    srs = srs_tau[0]
    handle = native.g1_bases(srs.g1_powers)
    rng = random.Random(5)
    coeffs = [rng.randrange(R) for _ in range(N_POWERS)]
    buf = native.scalars_to_buffer(coeffs)
    with use_backend("python"):
        commitment = commit_monomial(coeffs, srs)
        y_python, w_python = open_at(coeffs, 12345, srs)
    assert native.commit_monomial(handle, buf) == commitment
    y, w = native.open_at(handle, buf, 12345)
    assert (y, w) == (y_python, w_python)
    vk = verifier_key(srs)
    assert verify_opening(vk, commitment, 12345, y, w)
    assert not verify_opening(vk, commitment, 12345, (y + 1) % R, w)  # negative twin


def test_commit_refuses_degree_above_srs(srs_tau: tuple[SRS, int]) -> None:
    handle = native.g1_bases(srs_tau[0].g1_powers)
    fits = native.scalars_to_buffer([1] * N_POWERS + [0, 0])  # trailing zeros are ignored
    assert native.commit_monomial(handle, fits) != (0, 0)
    with pytest.raises(ValueError, match=f"degree {N_POWERS} exceeds the SRS's max degree"):
        native.commit_monomial(handle, native.scalars_to_buffer([1] * (N_POWERS + 1)))
    assert native.commit_monomial(handle, native.scalars_to_buffer([0, 0])) == (0, 0)


def lagrange_at(i: int, tau: int, k: int) -> int:
    """L_i(tau) = omega^i (tau^N - 1) / (N (tau - omega^i))."""
    n = 1 << k
    wi = pow(root_of_unity(k), i, R)
    return wi * (pow(tau, n, R) - 1) * pow(n * (tau - wi), -1, R) % R


@pytest.mark.parametrize("k", [0, 1, 2, 5])
def test_lagrange_basis_matches_python_fft_and_tau(srs_tau: tuple[SRS, int], k: int) -> None:
    srs, tau = srs_tau
    n = 1 << k
    got = native.g1_from_buffer(
        native.lagrange_basis(native.g1_bases(srs.g1_powers), k).to_affine_bytes()
    )
    with use_backend("python"):
        assert got == _inverse_dft_g1(srs.g1_powers[:n], k)
        assert got == lagrange_basis_from_tau(tau, k)
    scalars = [lagrange_at(i, tau, k) for i in range(n)]
    assert got == native.g1_from_buffer(
        native.generator_multiples(native.scalars_to_buffer(scalars))
    )


def test_lagrange_basis_needs_enough_powers(srs_tau: tuple[SRS, int]) -> None:
    with pytest.raises(ValueError, match="needs 64 monomial points, got 40"):
        native.lagrange_basis(native.g1_bases(srs_tau[0].g1_powers), 6)


def test_prover_srs_dispatches_lagrange_basis_and_generator_multiples(
    srs_tau: tuple[SRS, int],
) -> None:
    srs, tau = srs_tau
    with use_backend("native"):
        on_native = lagrange_basis(srs, 3, use_disk_cache=False)
        multiples_native = fixed_base_multiples((1, 2), [0, 5, R - 1, tau])
    with use_backend("python"):
        multiples_python = fixed_base_multiples((1, 2), [0, 5, R - 1, tau])
        assert on_native == lagrange_basis_from_tau(tau, 3)
    assert multiples_native == multiples_python
