"""NTTs, coset NTTs, vanishing division and polynomial helpers against naive O(n^2) oracles."""

import random
from typing import Any

import galois
import gmpy2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prover.ntt import (
    NTTSizeError,
    VanishingOnCosetError,
    coset_intt,
    coset_ntt,
    divide_by_linear,
    divide_by_vanishing_on_coset,
    evaluate,
    intt,
    ntt,
    vanishing_on_coset_inverses,
)
from verifier.constants import COSET_SHIFT, MULTIPLICATIVE_GENERATOR, R
from verifier.fr import root_of_unity

SIZES = range(0, 9)  # 2^0 .. 2^8


def rand_vec(n: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    return [rng.randrange(R) for _ in range(n)]


def naive_eval(coeffs: list[int], x: int) -> int:
    return sum(c * pow(x, j, R) for j, c in enumerate(coeffs)) % R


def naive_evals_on(coeffs: list[int], k: int, shift: int = 1) -> list[int]:
    """[p(shift * omega^i)] by Horner at each point: O(n^2)."""
    w = root_of_unity(k)
    out = []
    x = shift % R
    for _ in range(1 << k):
        acc = 0
        for c in reversed(coeffs):
            acc = (acc * x + c) % R
        out.append(acc)
        x = x * w % R
    return out


def naive_poly_mul(a: list[int], b: list[int]) -> list[int]:
    out = [0] * (len(a) + len(b) - 1)
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            out[i + j] = (out[i + j] + x * y) % R
    return out


def naive_divmod_vanishing(f: list[int], n: int) -> tuple[list[int], list[int]]:
    """Long division of f by X^n - 1: returns (quotient, remainder) coefficient lists."""
    rem = list(f)
    quot = [0] * max(len(f) - n, 0)
    for d in range(len(f) - 1, n - 1, -1):
        c = rem[d]
        if c:
            quot[d - n] = c
            rem[d] = 0
            rem[d - n] = (rem[d - n] + c) % R  # c X^d = c X^(d-n) (X^n - 1) + c X^(d-n)
    return quot, rem[:n]


@pytest.fixture(scope="module")
def GF() -> Any:
    return galois.GF(R, primitive_element=MULTIPLICATIVE_GENERATOR, verify=False)


@pytest.mark.parametrize("k", SIZES)
def test_ntt_matches_naive_evaluation(k: int) -> None:
    coeffs = rand_vec(1 << k, k)
    expected = naive_evals_on(coeffs, k)
    assert ntt(coeffs, k) == expected
    if k > 0:
        tampered = list(coeffs)
        tampered[-1] = (tampered[-1] + 1) % R
        assert ntt(tampered, k) != expected


@pytest.mark.parametrize("k", SIZES)
def test_intt_matches_naive_interpolation(k: int) -> None:
    values = rand_vec(1 << k, 100 + k)
    coeffs = intt(values, k)
    assert len(coeffs) == 1 << k
    assert naive_evals_on([int(c) for c in coeffs], k) == values


@pytest.mark.parametrize("k", [1, 4, 6, 10])
def test_ntt_matches_galois_fft(k: int, GF: Any) -> None:
    # galois' np.fft.fft on GF(R) with primitive element 5 uses omega = 5^((R-1)/n), as we do.
    coeffs = rand_vec(1 << k, 200 + k)
    assert ntt(coeffs, k) == [int(v) for v in np.fft.fft(GF(coeffs))]
    assert intt(coeffs, k) == [int(v) for v in np.fft.ifft(GF(coeffs))]


@pytest.mark.parametrize("k", SIZES)
def test_round_trips(k: int) -> None:
    a = rand_vec(1 << k, 300 + k)
    assert intt(ntt(a, k), k) == a
    assert ntt(intt(a, k), k) == a
    assert coset_intt(coset_ntt(a, k), k) == a
    assert coset_ntt(coset_intt(a, k), k) == a


@pytest.mark.parametrize("k", [0, 1, 3, 6])
@pytest.mark.parametrize("shift", [COSET_SHIFT, 7, 0xDEADBEEF])
def test_coset_ntt_matches_naive(k: int, shift: int) -> None:
    coeffs = rand_vec(1 << k, 400 + k)
    expected = naive_evals_on(coeffs, k, shift)
    assert coset_ntt(coeffs, k, shift) == expected
    assert coset_intt(expected, k, shift) == coeffs
    if k > 0:
        assert coset_ntt(coeffs, k, shift + 1) != expected


def test_short_input_is_zero_padded() -> None:
    coeffs = rand_vec(5, 7)
    assert ntt(coeffs, 4) == ntt([*coeffs, *[0] * 11], 4) == naive_evals_on(coeffs, 4)
    assert coset_ntt(coeffs, 4) == naive_evals_on(coeffs, 4, COSET_SHIFT)
    assert ntt([], 2) == [0, 0, 0, 0]


def test_input_types_and_output_type() -> None:
    coeffs = rand_vec(8, 8)
    as_mpz = [gmpy2.mpz(c) for c in coeffs]
    out = ntt(as_mpz, 3)
    assert out == ntt(coeffs, 3)
    assert all(type(v) is type(gmpy2.mpz(0)) for v in out)
    assert ntt([c - R for c in coeffs], 3) == out  # any representative mod R
    assert ntt([c + 5 * R for c in coeffs], 3) == out


def test_too_long_input_is_rejected() -> None:
    with pytest.raises(NTTSizeError, match="9 coefficients do not fit"):
        ntt([1] * 9, 3)
    with pytest.raises(NTTSizeError, match="do not fit"):
        coset_ntt([1] * 9, 3)


@pytest.mark.parametrize("length", [0, 7, 9])
def test_inverse_transforms_need_exactly_n_values(length: int) -> None:
    with pytest.raises(NTTSizeError, match=f"expected 8 evaluations.*got {length}"):
        intt([1] * length, 3)
    with pytest.raises(NTTSizeError, match="expected 8 evaluations"):
        coset_intt([1] * length, 3)


@pytest.mark.parametrize("k", [-1, 29])
def test_log_size_out_of_range(k: int) -> None:
    for f in (ntt, intt, coset_ntt, coset_intt):
        with pytest.raises(NTTSizeError, match=r"k \(log2 of the size\) must be in 0\.\.28"):
            f([1], k)


def test_vanishing_on_coset_inverses_matches_naive() -> None:
    n_log, ext_log = 2, 5
    n = 1 << n_log
    w_ext = root_of_unity(ext_log)
    got = vanishing_on_coset_inverses(n_log, ext_log, COSET_SHIFT)
    expected = [
        pow(pow(COSET_SHIFT * pow(w_ext, i, R), n, R) - 1, -1, R) for i in range(1 << ext_log)
    ]
    assert got == expected
    assert vanishing_on_coset_inverses(n_log, ext_log, 7) != expected
    assert vanishing_on_coset_inverses(3, 3, 7) == [pow(pow(7, 8, R) - 1, -1, R)] * 8


@pytest.mark.parametrize("shift", [1, root_of_unity(3), root_of_unity(5)])
def test_vanishing_on_coset_rejects_shift_meeting_h(shift: int) -> None:
    # shift = 1 or a 2^k-th root of unity: the coset shift*H_ext contains a point of H.
    with pytest.raises(VanishingOnCosetError, match="Z_H vanishes"):
        vanishing_on_coset_inverses(2, 5, shift)


def test_vanishing_on_coset_rejects_small_extension() -> None:
    with pytest.raises(NTTSizeError, match="smaller than"):
        vanishing_on_coset_inverses(4, 3)


@pytest.mark.parametrize(("n_log", "ext_log"), [(0, 2), (2, 4), (3, 5)])
def test_divide_by_vanishing_equals_polynomial_division(n_log: int, ext_log: int) -> None:
    n, ext = 1 << n_log, 1 << ext_log
    q = rand_vec(ext - n, 500 + n_log)
    f = naive_poly_mul(q, [R - 1, *[0] * (n - 1), 1])  # f = q * (X^n - 1), degree < ext
    quot, rem = naive_divmod_vanishing(f, n)
    assert quot == q and not any(rem)
    t_evals = divide_by_vanishing_on_coset(coset_ntt(f, ext_log), n_log, ext_log)
    assert coset_intt(t_evals, ext_log) == [*q, *[0] * n]


def test_divide_by_vanishing_detects_non_divisible() -> None:
    n_log, ext_log = 2, 4
    q = rand_vec(12, 9)
    f = naive_poly_mul(q, [R - 1, 0, 0, 0, 1])
    f[1] = (f[1] + 1) % R  # f no longer divisible by Z_H
    quot, _ = naive_divmod_vanishing(f, 4)
    t = coset_intt(divide_by_vanishing_on_coset(coset_ntt(f, ext_log), n_log, ext_log), ext_log)
    assert t != [*quot, 0, 0, 0, 0]
    assert any(t[12:])  # the "quotient" is not a polynomial of degree < 12


def test_divide_by_vanishing_length_checked() -> None:
    with pytest.raises(NTTSizeError, match="expected 16 evaluations"):
        divide_by_vanishing_on_coset([1] * 8, 2, 4)


def test_evaluate_matches_naive() -> None:
    coeffs = rand_vec(17, 11)
    z = random.Random(12).randrange(R)
    assert evaluate(coeffs, z) == naive_eval(coeffs, z)
    assert evaluate(coeffs, z + 1) != naive_eval(coeffs, z)
    assert evaluate([], z) == 0
    assert evaluate([5], z) == 5
    assert evaluate(coeffs, z - R) == evaluate(coeffs, z)


@pytest.mark.parametrize("length", [0, 1, 2, 9])
def test_divide_by_linear(length: int) -> None:
    p = rand_vec(length, 13 + length)
    z = random.Random(14).randrange(R)
    q, r = divide_by_linear(p, z)
    assert len(q) == max(length - 1, 0)
    assert r == naive_eval(p, z)
    if q:  # p == q (X - z) + r
        back = naive_poly_mul([int(c) for c in q], [R - z, 1])
        back[0] = (back[0] + r) % R
    else:
        back = [int(r)] * length
    assert back == p
    if length > 1:
        q2, r2 = divide_by_linear(p, z + 1)
        assert (q2, r2) != (q, r)


def test_divide_by_linear_exact_root() -> None:
    # (X - 3)(X - 5) = X^2 - 8X + 15: dividing by X - 3 leaves X - 5 and no remainder.
    q, r = divide_by_linear([15, R - 8, 1], 3)
    assert (q, r) == ([R - 5, 1], 0)


field_elems = st.integers(min_value=0, max_value=R - 1)


@settings(max_examples=25, deadline=None)
@given(
    st.integers(min_value=0, max_value=5).flatmap(
        lambda k: st.tuples(
            st.just(k),
            st.lists(field_elems, min_size=1 << k, max_size=1 << k),
            st.lists(field_elems, min_size=1 << k, max_size=1 << k),
        )
    )
)
def test_ntt_is_linear_and_invertible(case: tuple[int, list[int], list[int]]) -> None:
    k, a, b = case
    fa, fb = ntt(a, k), ntt(b, k)
    assert ntt([(x + y) % R for x, y in zip(a, b, strict=True)], k) == [
        (x + y) % R for x, y in zip(fa, fb, strict=True)
    ]
    assert intt(fa, k) == a
    assert coset_intt(coset_ntt(b, k), k) == b
