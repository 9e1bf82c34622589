"""prover.g1: the fast Jacobian/affine arithmetic against py_ecc's optimized_bn128."""

import random

import gmpy2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from py_ecc.optimized_bn128.optimized_curve import G1, Z1, add, double, multiply, neg

from prover.g1 import (
    AFFINE_INFINITY,
    JACOBIAN_INFINITY,
    Affine,
    Jacobian,
    affine_add,
    affine_neg,
    affine_to_jacobian,
    batch_affine_add,
    batch_invert,
    batch_to_affine,
    jacobian_add,
    jacobian_add_affine,
    jacobian_double,
    jacobian_to_affine,
    scalar_mul,
    scalar_mul_jacobian,
)
from verifier.constants import P, R
from verifier.curve import g1_is_on_curve_affine, g1_to_affine

RNG = random.Random(2024)
LOGS = [RNG.randrange(1, R) for _ in range(6)]
# py_ecc reference points and their affine forms.
REF = [multiply(G1, k) for k in LOGS]
AFF = [g1_to_affine(p) for p in REF]


def rescaled(a: Affine, lam: int) -> Jacobian:
    """The Jacobian representative (x lam^2, y lam^3, lam) of affine a: same point."""
    return (
        gmpy2.mpz(a[0] * lam * lam % P),
        gmpy2.mpz(a[1] * pow(lam, 3, P) % P),
        gmpy2.mpz(lam),
    )


def aff(j: Jacobian) -> tuple[int, int]:
    x, y = jacobian_to_affine(j)
    return (int(x), int(y))


@pytest.mark.parametrize("i,j", [(0, 1), (2, 3), (4, 5), (1, 0)])
def test_jacobian_add_matches_py_ecc(i: int, j: int) -> None:
    got = jacobian_add(rescaled(AFF[i], 12345), rescaled(AFF[j], 777))
    assert aff(got) == g1_to_affine(add(REF[i], REF[j]))


def test_jacobian_add_wrong_input_differs() -> None:
    """Negative twin: adding a different point does not give the reference sum."""
    got = jacobian_add(rescaled(AFF[0], 5), rescaled(AFF[2], 9))
    assert aff(got) != g1_to_affine(add(REF[0], REF[1]))


@pytest.mark.parametrize("impl", ["jacobian", "mixed", "affine"])
def test_add_equal_points_is_doubling(impl: str) -> None:
    expected = g1_to_affine(double(REF[0]))
    if impl == "jacobian":
        got = aff(jacobian_add(rescaled(AFF[0], 3), rescaled(AFF[0], 11)))
    elif impl == "mixed":
        got = aff(jacobian_add_affine(rescaled(AFF[0], 3), AFF[0]))
    else:
        x, y = affine_add(AFF[0], AFF[0])
        got = (int(x), int(y))
    assert got == expected
    assert aff(jacobian_double(rescaled(AFF[0], 99))) == expected


@pytest.mark.parametrize("impl", ["jacobian", "mixed", "affine"])
def test_add_opposite_points_is_infinity(impl: str) -> None:
    minus = affine_neg(AFF[1])
    assert (int(minus[0]), int(minus[1])) == g1_to_affine(neg(REF[1]))
    if impl == "jacobian":
        got = aff(jacobian_add(rescaled(AFF[1], 3), rescaled(minus, 11)))
    elif impl == "mixed":
        got = aff(jacobian_add_affine(rescaled(AFF[1], 3), minus))
    else:
        x, y = affine_add(AFF[1], minus)
        got = (int(x), int(y))
    assert got == (0, 0)


def test_infinity_is_neutral() -> None:
    a = AFF[2]
    assert aff(jacobian_add(JACOBIAN_INFINITY, rescaled(a, 5))) == a
    assert aff(jacobian_add(rescaled(a, 5), JACOBIAN_INFINITY)) == a
    assert aff(jacobian_add_affine(JACOBIAN_INFINITY, a)) == a
    assert aff(jacobian_add_affine(rescaled(a, 5), AFFINE_INFINITY)) == a
    assert aff(jacobian_double(JACOBIAN_INFINITY)) == (0, 0)
    assert affine_add(AFFINE_INFINITY, a) == a
    assert affine_neg(AFFINE_INFINITY) == (0, 0)
    assert jacobian_to_affine(JACOBIAN_INFINITY) == (0, 0)
    assert affine_to_jacobian((0, 0))[2] == 0


def test_batch_affine_add_mixed_cases() -> None:
    minus = affine_neg(AFF[3])
    pairs = [(AFF[0], AFF[1]), (AFF[2], AFF[2]), (AFF[3], minus), (AFF[4], AFF[5])]
    xs, ys = batch_affine_add(
        [p[0][0] for p in pairs],
        [p[0][1] for p in pairs],
        [p[1][0] for p in pairs],
        [p[1][1] for p in pairs],
    )
    got = [(int(x), int(y)) for x, y in zip(xs, ys, strict=True)]
    assert got == [
        g1_to_affine(add(REF[0], REF[1])),
        g1_to_affine(double(REF[2])),
        (0, 0),
        g1_to_affine(add(REF[4], REF[5])),
    ]


def test_batch_affine_add_rejects_ragged_input() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        batch_affine_add([1, 2], [2, 3], [1], [2])


def test_batch_invert() -> None:
    vals = [RNG.randrange(1, P) for _ in range(9)]
    assert [int(v) for v in batch_invert(vals)] == [pow(v, -1, P) for v in vals]
    assert batch_invert([]) == []
    with pytest.raises(ZeroDivisionError):
        batch_invert([3, P, 5])


def test_batch_to_affine_with_infinity() -> None:
    pts = [rescaled(AFF[0], 7), JACOBIAN_INFINITY, rescaled(AFF[1], 1234567)]
    got = [(int(x), int(y)) for x, y in batch_to_affine(pts)]
    assert got == [AFF[0], (0, 0), AFF[1]]
    assert batch_to_affine([]) == []


@pytest.mark.parametrize("k", [0, 1, 2, 3, R - 1, R, R + 5, -1, -7, 2**253 + 99])
def test_scalar_mul_matches_py_ecc(k: int) -> None:
    expected = g1_to_affine(multiply(G1, k % R))
    x, y = scalar_mul((1, 2), k)
    assert (int(x), int(y)) == expected


def test_scalar_mul_of_infinity() -> None:
    assert scalar_mul((0, 0), 12345) == (0, 0)


def test_scalar_mul_wrong_scalar_differs() -> None:
    x, y = scalar_mul((1, 2), LOGS[0] + 1)
    assert (int(x), int(y)) != AFF[0]


@settings(max_examples=20, deadline=None)
@given(st.integers(min_value=0, max_value=R - 1), st.integers(min_value=0, max_value=R - 1))
def test_scalar_mul_is_linear(a: int, b: int) -> None:
    lhs = aff(scalar_mul_jacobian(AFF[0], a + b))
    rhs = aff(jacobian_add(scalar_mul_jacobian(AFF[0], a), scalar_mul_jacobian(AFF[0], b)))
    assert lhs == rhs
    x, y = scalar_mul(AFF[0], a)
    assert g1_is_on_curve_affine((x, y))


@settings(max_examples=10, deadline=None)
@given(st.integers(min_value=0, max_value=R - 1))
def test_scalar_mul_property_vs_py_ecc(k: int) -> None:
    x, y = scalar_mul((1, 2), k)
    assert (int(x), int(y)) == g1_to_affine(multiply(G1, k))


def test_g1_is_on_curve_affine() -> None:
    assert g1_is_on_curve_affine((1, 2))
    assert g1_is_on_curve_affine((0, 0))
    assert not g1_is_on_curve_affine((1, 3))
    assert not g1_is_on_curve_affine((1, 2 + P))
    assert g1_to_affine(Z1) == (0, 0)
