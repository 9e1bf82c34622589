"""BN254 (alt_bn128) G1 and G2 at the interface: point types, EIP-196/197 encodings with
full validation, and the pairing-product check of the EIP-197 precompile.

Points inside the verifier are py_ecc ``optimized_bn128`` points: projective triples
(X, Y, Z) of FQ (G1) or FQ2 (G2), with Z = 0 the point at infinity.  Encodings, proofs and the
prover's fast path use the plain affine form ``G1Affine = (x, y)`` of Python ints, with
(0, 0) meaning infinity (EIP-196: (0, 0) is not on the curve, so it is free to mean O).

Curves (EIP-196, EIP-197):
    G1:  E(F_p):    y^2 = x^3 + 3,               #E(F_p) = R (prime, cofactor 1);
    G2:  E'(F_p^2): y^2 = x^3 + 3 / (9 + u),      F_p^2 = F_p[u] / (u^2 + 1),
         the order-R subgroup of the sextic twist, whose cofactor is large
         (#E'(F_p^2) = R * (2p - R)), so on-twist does NOT imply in-G2.

Words are 32-byte big-endian.  A G2 point is encoded as in EIP-197:
x_im || x_re || y_im || y_re  (the imaginary coefficient first).
"""

from collections.abc import Sequence
from typing import Any, Final, TypeAlias

from py_ecc.fields import optimized_bn128_FQ as FQ
from py_ecc.fields import optimized_bn128_FQ2 as FQ2
from py_ecc.fields import optimized_bn128_FQ12 as FQ12
from py_ecc.optimized_bn128.optimized_curve import (
    Z1,
    Z2,
    b,
    b2,
    is_inf,
    is_on_curve,
    multiply,
    normalize,
)
from py_ecc.optimized_bn128.optimized_pairing import final_exponentiate, pairing

from verifier import backend
from verifier.constants import WORD_BYTES, P, R

# py_ecc ships no type information: its field elements are opaque here.
G1Point: TypeAlias = tuple[Any, Any, Any]  # (FQ, FQ, FQ), projective
G2Point: TypeAlias = tuple[Any, Any, Any]  # (FQ2, FQ2, FQ2), projective
G1Affine: TypeAlias = tuple[int, int]  # (0, 0) is the point at infinity (EIP-196)

G1_GENERATOR_AFFINE: Final[G1Affine] = (1, 2)
G1_INFINITY_AFFINE: Final[G1Affine] = (0, 0)
G1_BYTES: Final[int] = 2 * WORD_BYTES
G2_BYTES: Final[int] = 4 * WORD_BYTES


class InvalidPointError(ValueError):
    """An encoded or given point fails a check (length, coordinate range, curve, subgroup)."""


# ------------------------------------------------------------------------------ G1


def g1_is_on_curve_affine(xy: G1Affine) -> bool:
    """True iff (x, y) is (0, 0) or 0 <= x, y < P and y^2 = x^3 + 3 (mod P)."""
    x, y = xy
    if x == 0 and y == 0:
        return True
    return 0 <= x < P and 0 <= y < P and (y * y - x * x * x - 3) % P == 0


def _check_g1_affine(xy: G1Affine) -> None:
    x, y = xy
    if not (0 <= x < P and 0 <= y < P):
        raise InvalidPointError("G1 point: coordinate not in [0, P)")
    if not g1_is_on_curve_affine(xy):
        raise InvalidPointError("G1 point: not on the curve y^2 = x^3 + 3")


def g1_to_affine(point: G1Point) -> G1Affine:
    """The affine (x, y) of a py_ecc G1 point; infinity -> (0, 0)."""
    if is_inf(point):
        return G1_INFINITY_AFFINE
    x, y = normalize(point)
    return (int(x), int(y))


def g1_from_affine(xy: G1Affine) -> G1Point:
    """The py_ecc G1 point of an affine (x, y), validated: coordinates in [0, P) and on the
    curve ((0, 0) -> infinity).  G1 has cofactor 1, so every curve point is in G1.
    Raises InvalidPointError naming the failing check."""
    x, y = int(xy[0]), int(xy[1])
    _check_g1_affine((x, y))
    if x == 0 and y == 0:
        return Z1
    return (FQ(x), FQ(y), FQ.one())


def g1_to_bytes(xy: G1Affine) -> bytes:
    """EIP-196 encoding: x || y, 32-byte big-endian words (infinity is 64 zero bytes).
    Raises InvalidPointError if a coordinate is outside [0, P)."""
    x, y = int(xy[0]), int(xy[1])
    if not (0 <= x < P and 0 <= y < P):
        raise InvalidPointError("G1 point: coordinate not in [0, P)")
    return x.to_bytes(WORD_BYTES, "big") + y.to_bytes(WORD_BYTES, "big")


def g1_from_bytes(data: bytes) -> G1Affine:
    """Decode and validate an EIP-196 G1 point: length 64, each coordinate < P, and on the
    curve y^2 = x^3 + 3 ((0, 0) is infinity).  The cofactor of G1 is 1, so a point on the
    curve is in the order-R subgroup: no separate subgroup check is needed.
    Raises InvalidPointError naming the failing check."""
    if len(data) != G1_BYTES:
        raise InvalidPointError(f"G1 encoding: expected {G1_BYTES} bytes, got {len(data)}")
    x = int.from_bytes(data[:WORD_BYTES], "big")
    y = int.from_bytes(data[WORD_BYTES:], "big")
    _check_g1_affine((x, y))
    return (x, y)


# ------------------------------------------------------------------------------ G2


def g2_is_in_subgroup(point: G2Point) -> bool:
    """True iff R * Q is infinity, i.e. Q lies in the order-R subgroup G2 (Q on the twist).

    On the native backend, arkworks' endomorphism-based subgroup test on the point's EIP-197
    encoding (``zkmeter_native.g2_check``, ~0.1 ms); otherwise ``R * Q`` with py_ecc
    (``g2_is_in_subgroup_py_ecc``, the reference, ~100 ms)."""
    core = backend.native_module()
    if core is None:
        return g2_is_in_subgroup_py_ecc(point)
    try:
        core.g2_check(g2_to_bytes(point))
    except ValueError:
        return False
    return True


def g2_is_in_subgroup_py_ecc(point: G2Point) -> bool:
    """``g2_is_in_subgroup`` by py_ecc: ``R * Q == O``."""
    return bool(is_inf(multiply(point, R)))


def g2_to_bytes(point: G2Point) -> bytes:
    """EIP-197 encoding of a py_ecc G2 point: x_im || x_re || y_im || y_re, 32-byte
    big-endian words; infinity is 128 zero bytes."""
    if is_inf(point):
        return bytes(G2_BYTES)
    x, y = normalize(point)
    x_re, x_im = (int(c) for c in x.coeffs)
    y_re, y_im = (int(c) for c in y.coeffs)
    return b"".join(v.to_bytes(WORD_BYTES, "big") for v in (x_im, x_re, y_im, y_re))


def g2_from_coefficients(x_re: int, x_im: int, y_re: int, y_im: int) -> G2Point:
    """The py_ecc G2 point x = x_re + x_im u, y = y_re + y_im u, validated: coefficients in
    [0, P), on the twist y^2 = x^3 + 3/(9+u), and in the order-R subgroup (R Q = O).
    All zero -> infinity.  Raises InvalidPointError naming the failing check."""
    coeffs = (x_re, x_im, y_re, y_im)
    if not all(0 <= v < P for v in coeffs):
        raise InvalidPointError("G2 point: coordinate not in [0, P)")
    if not any(coeffs):
        return Z2
    point = (FQ2([x_re, x_im]), FQ2([y_re, y_im]), FQ2.one())
    if not is_on_curve(point, b2):
        raise InvalidPointError("G2 point: not on the twist y^2 = x^3 + 3/(9+u)")
    if not g2_is_in_subgroup(point):
        raise InvalidPointError("G2 point: not in the order-R subgroup (R * Q != O)")
    return point


def g2_from_bytes(data: bytes) -> G2Point:
    """Decode and validate an EIP-197 G2 point (x_im || x_re || y_im || y_re): length 128,
    coefficients < P, on the twist, and in the order-R subgroup.  py_ecc's ``pairing`` only
    checks the curve equation; the subgroup check matters because the twist has a large
    cofactor.  Raises InvalidPointError naming the failing check."""
    if len(data) != G2_BYTES:
        raise InvalidPointError(f"G2 encoding: expected {G2_BYTES} bytes, got {len(data)}")
    x_im, x_re, y_im, y_re = (
        int.from_bytes(data[k * WORD_BYTES : (k + 1) * WORD_BYTES], "big") for k in range(4)
    )
    return g2_from_coefficients(x_re, x_im, y_re, y_im)


# ------------------------------------------------------------------------- pairing


def pairing_product_is_one(pairs: Sequence[tuple[G1Point, G2Point]]) -> bool:
    """True iff prod_i e(P_i, Q_i) = 1 in GT, what the EIP-197 precompile checks.

    On the native backend (``verifier.backend``): arkworks' multi-pairing on the EIP-196/197
    encodings of the points (``pairing_product_is_one_native``); otherwise py_ecc
    (``pairing_product_is_one_py_ecc``, the reference).  Off-curve points raise
    InvalidPointError either way."""
    if backend.use_native():
        return pairing_product_is_one_native(pairs)
    return pairing_product_is_one_py_ecc(pairs)


def pairing_product_is_one_native(pairs: Sequence[tuple[G1Point, G2Point]]) -> bool:
    """``pairing_product_is_one`` on ``zkmeter_native`` (arkworks' ``Bn254::multi_pairing``:
    one multi-Miller loop, one final exponentiation).  The points are normalised and encoded
    (EIP-196 / EIP-197) and decoded again natively with the curve checks and, for G2, the
    subgroup check, so this is stricter than the py_ecc path, never looser."""
    import zkmeter_native

    g1 = b"".join(g1_to_bytes(g1_to_affine(p1)) for p1, _ in pairs)
    g2 = b"".join(g2_to_bytes(q2) for _, q2 in pairs)
    try:
        return bool(zkmeter_native.pairing_product_is_one(g1, g2))
    except ValueError as exc:
        raise InvalidPointError(f"pairing: {exc}") from exc


def pairing_product_is_one_py_ecc(pairs: Sequence[tuple[G1Point, G2Point]]) -> bool:
    """``pairing_product_is_one`` with py_ecc's optimized_bn128 pairing.

    Computes the Miller loop of each pair without the final exponentiation, multiplies the
    results, and raises the product to (p^12 - 1) / R once: one final exponentiation in all
    instead of one per pair.  Pairs with a point at infinity contribute 1.  The points must
    already be validated (``g1_from_affine``/``g2_from_bytes``): the curve equations are
    re-checked here (InvalidPointError), G2 subgroup membership is not (it costs a scalar
    multiplication by R; ``g2_from_bytes`` does it once per decoded point)."""
    f = FQ12.one()
    for p1, q2 in pairs:
        if is_inf(p1) or is_inf(q2):
            continue
        if not is_on_curve(p1, b):
            raise InvalidPointError("pairing: G1 point not on the curve")
        if not is_on_curve(q2, b2):
            raise InvalidPointError("pairing: G2 point not on the twist")
        f = f * pairing(q2, p1, final_exponentiate=False)
    return bool(final_exponentiate(f) == FQ12.one())
