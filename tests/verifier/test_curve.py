"""verifier.curve: EIP-196/197 encodings with their rejections, and the pairing product."""

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from py_ecc.fields import optimized_bn128_FQ2 as FQ2
from py_ecc.optimized_bn128.optimized_curve import (
    G1,
    G2,
    Z1,
    Z2,
    b2,
    eq,
    is_inf,
    is_on_curve,
    multiply,
    neg,
)

from verifier.constants import P, R
from verifier.curve import (
    G1_GENERATOR_AFFINE,
    InvalidPointError,
    g1_from_affine,
    g1_from_bytes,
    g1_to_affine,
    g1_to_bytes,
    g2_from_bytes,
    g2_is_in_subgroup,
    g2_to_bytes,
    pairing_product_is_one,
)

# #E'(F_p^2) = R * (2p - R): the cofactor of G2 in the twist.
G2_COFACTOR = 2 * P - R


def _fp_sqrt(a: int) -> int | None:
    """A square root mod P (P = 3 mod 4), or None."""
    r = pow(a, (P + 1) // 4, P)
    return r if r * r % P == a % P else None


def _fp2_sqrt(a0: int, a1: int) -> tuple[int, int] | None:
    """A square root of a0 + a1 u in F_p[u]/(u^2 + 1), by the norm method, or None."""
    n = _fp_sqrt((a0 * a0 + a1 * a1) % P)
    if n is None:
        return None
    inv2 = pow(2, -1, P)
    for cand in ((a0 + n) * inv2 % P, (a0 - n) * inv2 % P):
        x0 = _fp_sqrt(cand)
        if x0 is None or x0 == 0:
            continue
        x1 = a1 * pow(2 * x0, -1, P) % P
        if ((x0 * x0 - x1 * x1) % P, 2 * x0 * x1 % P) == (a0 % P, a1 % P):
            return x0, x1
    return None


def twist_point_outside_g2(seed: int) -> tuple[FQ2, FQ2, FQ2]:
    """A point on the twist y^2 = x^3 + 3/(9+u) found by trying x = (i, seed); with
    overwhelming probability (1 - 1/cofactor) it is not in the order-R subgroup."""
    for i in range(1, 1000):
        x = FQ2([i, seed])
        rhs = x * x * x + b2
        root = _fp2_sqrt(int(rhs.coeffs[0]), int(rhs.coeffs[1]))
        if root is not None:
            point = (x, FQ2(list(root)), FQ2.one())
            assert is_on_curve(point, b2)
            return point
    raise AssertionError("no twist point found")


# ------------------------------------------------------------------------------ G1


def test_g1_generator_affine() -> None:
    assert g1_to_affine(G1) == G1_GENERATOR_AFFINE == (1, 2)
    assert eq(g1_from_affine(G1_GENERATOR_AFFINE), G1)


@pytest.mark.parametrize("k", [0, 1, 2, 7, R - 1, 2**200 + 12345])
def test_g1_bytes_round_trip(k: int) -> None:
    xy = g1_to_affine(multiply(G1, k))
    data = g1_to_bytes(xy)
    assert len(data) == 64
    assert g1_from_bytes(data) == xy
    assert eq(g1_from_affine(g1_from_bytes(data)), multiply(G1, k))


def test_g1_infinity_is_zero_bytes() -> None:
    assert g1_to_affine(Z1) == (0, 0)
    assert g1_to_bytes((0, 0)) == bytes(64)
    assert g1_from_bytes(bytes(64)) == (0, 0)
    assert is_inf(g1_from_affine((0, 0)))


def test_g1_encoding_is_eip196_big_endian() -> None:
    data = g1_to_bytes((1, 2))
    assert data == (1).to_bytes(32, "big") + (2).to_bytes(32, "big")


@pytest.mark.parametrize("length", [0, 63, 65, 128])
def test_g1_from_bytes_rejects_wrong_length(length: int) -> None:
    with pytest.raises(InvalidPointError, match="expected 64 bytes"):
        g1_from_bytes(bytes(length))


def test_g1_from_bytes_rejects_off_curve() -> None:
    data = g1_to_bytes((1, 2))
    tampered = data[:-1] + bytes([data[-1] ^ 1])  # (1, 3): 9 != 1 + 3
    with pytest.raises(InvalidPointError, match="not on the curve"):
        g1_from_bytes(tampered)


def test_g1_from_bytes_rejects_coordinate_not_below_p() -> None:
    # (1, 2 + P) satisfies the curve equation mod P but is not canonical.
    data = (1).to_bytes(32, "big") + (2 + P).to_bytes(32, "big")
    with pytest.raises(InvalidPointError, match=r"not in \[0, P\)"):
        g1_from_bytes(data)
    data = (P).to_bytes(32, "big") + (0).to_bytes(32, "big")
    with pytest.raises(InvalidPointError, match=r"not in \[0, P\)"):
        g1_from_bytes(data)


def test_g1_from_affine_rejects_off_curve() -> None:
    with pytest.raises(InvalidPointError, match="not on the curve"):
        g1_from_affine((1, 3))
    with pytest.raises(InvalidPointError, match=r"not in \[0, P\)"):
        g1_from_affine((1, 2 - P))
    with pytest.raises(InvalidPointError, match=r"not in \[0, P\)"):
        g1_to_bytes((P, 2))


@settings(max_examples=15, deadline=None)
@given(st.integers(min_value=0, max_value=R - 1))
def test_g1_round_trip_property(k: int) -> None:
    xy = g1_to_affine(multiply(G1, k))
    assert g1_from_bytes(g1_to_bytes(xy)) == xy


# ------------------------------------------------------------------------------ G2


@pytest.mark.parametrize("k", [1, 2, 5, R - 1])
def test_g2_bytes_round_trip(k: int) -> None:
    q = multiply(G2, k)
    data = g2_to_bytes(q)
    assert len(data) == 128
    assert eq(g2_from_bytes(data), q)


def test_g2_encoding_is_eip197_order() -> None:
    data = g2_to_bytes(G2)
    x_re, x_im = (int(c) for c in G2[0].coeffs)
    y_re, y_im = (int(c) for c in G2[1].coeffs)
    words = [int.from_bytes(data[32 * k : 32 * (k + 1)], "big") for k in range(4)]
    assert words == [x_im, x_re, y_im, y_re]
    # The EIP-197 test vector's generator begins with x_im = 0x198e9393...
    assert data[:4] == bytes.fromhex("198e9393")


def test_g2_infinity() -> None:
    assert g2_to_bytes(Z2) == bytes(128)
    assert is_inf(g2_from_bytes(bytes(128)))


@pytest.mark.parametrize("length", [0, 64, 127, 129])
def test_g2_from_bytes_rejects_wrong_length(length: int) -> None:
    with pytest.raises(InvalidPointError, match="expected 128 bytes"):
        g2_from_bytes(bytes(length))


def test_g2_from_bytes_rejects_coordinate_not_below_p() -> None:
    data = bytearray(g2_to_bytes(G2))
    x_im = int.from_bytes(data[:32], "big")
    data[:32] = (x_im + P).to_bytes(32, "big")
    with pytest.raises(InvalidPointError, match=r"not in \[0, P\)"):
        g2_from_bytes(bytes(data))


def test_g2_from_bytes_rejects_off_twist() -> None:
    data = bytearray(g2_to_bytes(G2))
    data[-1] ^= 1  # y_re + 1 or - 1
    with pytest.raises(InvalidPointError, match="not on the twist"):
        g2_from_bytes(bytes(data))


@pytest.mark.parametrize("seed", [1, 2])
def test_g2_from_bytes_rejects_twist_point_outside_subgroup(seed: int) -> None:
    q = twist_point_outside_g2(seed)
    assert not g2_is_in_subgroup(q)
    with pytest.raises(InvalidPointError, match="subgroup"):
        g2_from_bytes(g2_to_bytes(q))
    # Its twin: clearing the cofactor lands in G2, and that point decodes.
    cleared = multiply(q, G2_COFACTOR)
    assert g2_is_in_subgroup(cleared)
    assert eq(g2_from_bytes(g2_to_bytes(cleared)), cleared)


# ------------------------------------------------------------------------- pairing


def test_pairing_product_bilinearity() -> None:
    rng = random.Random(7)
    a, b = rng.randrange(1, R), rng.randrange(1, R)
    lhs = (multiply(G1, a), multiply(G2, b))
    assert pairing_product_is_one([lhs, (multiply(G1, (-a * b) % R), G2)])
    assert pairing_product_is_one([lhs, (neg(multiply(G1, a * b % R)), G2)])


def test_pairing_product_rejects_wrong_exponent() -> None:
    rng = random.Random(7)
    a, b = rng.randrange(1, R), rng.randrange(1, R)
    lhs = (multiply(G1, a), multiply(G2, b))
    assert not pairing_product_is_one([lhs, (multiply(G1, (-a * b + 1) % R), G2)])


def test_pairing_product_single_pairs() -> None:
    assert pairing_product_is_one([])
    assert pairing_product_is_one([(Z1, G2), (G1, Z2)])
    assert not pairing_product_is_one([(G1, G2)])


def test_pairing_product_rejects_off_curve_g1() -> None:
    x, y, z = g1_from_affine((1, 2))
    bad = (x, y * 2, z)
    with pytest.raises(InvalidPointError, match="not on the curve"):
        pairing_product_is_one([(bad, G2)])


def test_pairing_product_rejects_off_twist_g2() -> None:
    x, y, z = G2
    with pytest.raises(InvalidPointError, match="not on the twist"):
        pairing_product_is_one([(G1, (x, y + FQ2.one(), z))])
