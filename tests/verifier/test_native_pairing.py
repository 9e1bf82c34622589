"""zkmeter_native pairing-product check against py_ecc (verifier.curve's reference path):
bilinear instances and their negative twins, infinity, and the point checks (G1 curve, G2
twist and subgroup) on untrusted encodings."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from py_ecc.optimized_bn128.optimized_curve import G1, G2, Z1, Z2, multiply, neg

from prover import native
from tests.verifier.test_curve import twist_point_outside_g2
from verifier.backend import use_backend
from verifier.constants import P, R
from verifier.curve import (
    InvalidPointError,
    g1_to_affine,
    g2_to_bytes,
    pairing_product_is_one,
    pairing_product_is_one_native,
    pairing_product_is_one_py_ecc,
)

pytestmark = pytest.mark.skipif(
    not native.available(), reason=f"zkmeter_native not built: {native.unavailable_reason()}"
)


def _instance(a: int, b: int, c: int) -> list[tuple[object, object]]:
    """e(a G1, b G2) * e(-c G1, G2): the product is 1 iff a b = c (mod R)."""
    return [(multiply(G1, a), multiply(G2, b)), (neg(multiply(G1, c)), G2)]


@settings(max_examples=6, deadline=None)
@given(st.integers(1, R - 1), st.integers(1, R - 1), st.booleans())
def test_native_matches_py_ecc(a: int, b: int, honest: bool) -> None:
    c = a * b % R if honest else (a * b + 1) % R
    pairs = _instance(a, b, c)
    assert pairing_product_is_one_native(pairs) is honest
    assert pairing_product_is_one_py_ecc(pairs) is honest


def test_edge_scalars_and_infinity() -> None:
    assert pairing_product_is_one_native(_instance(R - 1, R - 1, 1))
    assert not pairing_product_is_one_native(_instance(R - 1, 1, 1))
    assert pairing_product_is_one_native([])
    assert pairing_product_is_one_native([(Z1, G2), (G1, Z2)])
    assert pairing_product_is_one_native([(Z1, G2), *_instance(2, 3, 6)])
    assert not pairing_product_is_one_native([(G1, G2)])


def test_verifier_dispatch_follows_the_backend() -> None:
    honest, forged = _instance(3, 5, 15), _instance(3, 5, 16)
    for choice in ("native", "python"):
        with use_backend(choice):  # type: ignore[arg-type]
            assert pairing_product_is_one(honest)
            assert not pairing_product_is_one(forged)


def test_bytes_level_check_through_prover_native() -> None:
    a, b = 7, 11
    pairs = [
        (g1_to_affine(multiply(G1, a)), g2_to_bytes(multiply(G2, b))),
        (g1_to_affine(neg(multiply(G1, a * b))), g2_to_bytes(G2)),
    ]
    assert native.pairing_product_is_one(pairs)
    pairs[1] = (g1_to_affine(neg(multiply(G1, a * b + 1))), pairs[1][1])
    assert not native.pairing_product_is_one(pairs)


def test_g2_outside_subgroup_is_refused() -> None:
    import zkmeter_native

    outside = twist_point_outside_g2(seed=3)
    encoded = g2_to_bytes(outside)
    with pytest.raises(ValueError, match="not in the order-R subgroup"):
        zkmeter_native.g2_check(encoded)
    with pytest.raises(ValueError, match=r"g2\[0\].*subgroup"):
        native.pairing_product_is_one([((1, 2), encoded)])
    with pytest.raises(InvalidPointError, match="subgroup"):
        pairing_product_is_one_native([(G1, outside)])
    zkmeter_native.g2_check(g2_to_bytes(G2))  # the generator passes


def test_malformed_g2_encodings_are_refused() -> None:
    import zkmeter_native

    good = bytearray(g2_to_bytes(multiply(G2, 9)))
    off = bytearray(good)
    off[127] ^= 1
    with pytest.raises(ValueError, match="not on the twist"):
        zkmeter_native.g2_check(bytes(off))
    big = bytearray(good)
    big[0:32] = P.to_bytes(32, "big")
    with pytest.raises(ValueError, match="not below the base-field modulus"):
        zkmeter_native.g2_check(bytes(big))
    with pytest.raises(ValueError, match="128 bytes"):
        zkmeter_native.g2_check(bytes(good[:-1]))
    zkmeter_native.g2_check(bytes(128))  # infinity


def test_off_curve_g1_is_refused_as_invalid_point() -> None:
    off_curve = (1, 3)
    with pytest.raises(ValueError, match=r"g1\[0\].*not on the curve"):
        native.pairing_product_is_one([(off_curve, g2_to_bytes(G2))])
    with pytest.raises(ValueError, match="one of each per pair"):
        import zkmeter_native

        zkmeter_native.pairing_product_is_one(native.g1_to_buffer([(1, 2)]), b"")


def test_many_random_pairs_against_py_ecc() -> None:
    """Four pairs whose logs sum to 0 in the exponent, and one perturbed copy."""
    rng = random.Random(8)
    a = [rng.randrange(1, R) for _ in range(3)]
    b = [rng.randrange(1, R) for _ in range(3)]
    total = sum(x * y for x, y in zip(a, b, strict=True)) % R
    pairs = [(multiply(G1, x), multiply(G2, y)) for x, y in zip(a, b, strict=True)]
    pairs.append((neg(multiply(G1, total)), G2))
    assert pairing_product_is_one_native(pairs) and pairing_product_is_one_py_ecc(pairs)
    pairs[0] = (multiply(G1, a[0] + 1), pairs[0][1])
    assert not pairing_product_is_one_native(pairs)
    assert not pairing_product_is_one_py_ecc(pairs)


def test_g2_subgroup_check_dispatch_matches_py_ecc() -> None:
    """verifier.curve.g2_is_in_subgroup on arkworks' test and on R * Q = O agree, and the
    point outside G2 is refused by both (negative twin)."""
    from verifier.curve import g2_is_in_subgroup, g2_is_in_subgroup_py_ecc

    inside, outside = multiply(G2, 12345), twist_point_outside_g2(seed=5)
    with use_backend("native"):
        assert g2_is_in_subgroup(inside) and not g2_is_in_subgroup(outside)
    assert g2_is_in_subgroup_py_ecc(inside) and not g2_is_in_subgroup_py_ecc(outside)


@settings(max_examples=5, deadline=None)
@given(st.lists(st.tuples(st.integers(0, R - 1), st.integers(0, R - 1)), min_size=1, max_size=6))
def test_linear_combination_native_matches_py_ecc(terms: list[tuple[int, int]]) -> None:
    """sum_k s_k P_k by one arkworks MSM equals py_ecc's term-by-term sum (P_k = p_k G1,
    zero scalars and the point at infinity included)."""
    from verifier.kzg import linear_combination, linear_combination_py_ecc

    points = [(g1_to_affine(multiply(G1, p)), s) for p, s in terms]
    with use_backend("native"):
        ours = g1_to_affine(linear_combination(points))
    assert ours == g1_to_affine(linear_combination_py_ecc(points))
