"""Fast BN254 G1 arithmetic on raw coordinates (gmpy2.mpz), the prover's hot path.

The curve is E: y^2 = x^3 + 3 over F_P (EIP-196), a = 0, prime order R, cofactor 1.

Two representations:

* affine ``(x, y)`` with ``(0, 0)`` meaning the point at infinity (EIP-196 convention; (0, 0)
  is not on E since 0 != 3, so there is no ambiguity);
* Jacobian ``(X, Y, Z)`` with x = X / Z^2, y = Y / Z^3, and infinity any triple with Z = 0
  (we produce ``(1, 1, 0)``).

Formulas (a = 0) are the ones catalogued in the Explicit-Formulas Database
(Bernstein–Lange, hyperelliptic.org/EFD/g1p/auto-shortw-jacobian-0.html): doubling
"dbl-2009-l", addition "add-1998-cmo-2", mixed addition "madd-2004-hmv"-style with Z2 = 1.
Each of them is *incomplete*: equal or opposite inputs and infinity are dispatched explicitly.

py_ecc's ``optimized_bn128`` (FQ field objects) is the reference these functions are tested
against; it is ~10x slower because every field operation allocates a Python object.
"""

from collections.abc import Sequence
from typing import Any, TypeAlias

import gmpy2

from verifier.constants import P, R

# A coordinate is a Python int or a gmpy2.mpz; both behave as integers.
Coord: TypeAlias = Any
Affine: TypeAlias = tuple[Coord, Coord]
Jacobian: TypeAlias = tuple[Coord, Coord, Coord]

P_MPZ = gmpy2.mpz(P)
_ZERO = gmpy2.mpz(0)
_ONE = gmpy2.mpz(1)

AFFINE_INFINITY: Affine = (_ZERO, _ZERO)
JACOBIAN_INFINITY: Jacobian = (_ONE, _ONE, _ZERO)

_invert = gmpy2.invert


def is_affine_infinity(a: Affine) -> bool:
    """True iff ``a`` is the EIP-196 encoding (0, 0) of the point at infinity."""
    return bool(a[0] == 0 and a[1] == 0)


def to_mpz_affine(a: Affine) -> Affine:
    """The same affine point with gmpy2.mpz coordinates."""
    return (gmpy2.mpz(a[0]), gmpy2.mpz(a[1]))


def affine_to_jacobian(a: Affine) -> Jacobian:
    """(x, y) -> (x, y, 1); (0, 0) -> (1, 1, 0)."""
    if a[0] == 0 and a[1] == 0:
        return JACOBIAN_INFINITY
    return (gmpy2.mpz(a[0]), gmpy2.mpz(a[1]), _ONE)


def affine_neg(a: Affine) -> Affine:
    """-(x, y) = (x, -y); infinity is its own negative."""
    x, y = a
    if x == 0 and y == 0:
        return AFFINE_INFINITY
    return (gmpy2.mpz(x), (P_MPZ - y) % P_MPZ)


def jacobian_neg(p: Jacobian) -> Jacobian:
    """-(X, Y, Z) = (X, -Y, Z)."""
    return (p[0], (-p[1]) % P_MPZ, p[2])


def jacobian_double(p: Jacobian) -> Jacobian:
    """2P, "dbl-2009-l" (a = 0): A = X^2, B = Y^2, C = B^2, D = 2((X+B)^2 - A - C), E = 3A,
    X3 = E^2 - 2D, Y3 = E(D - X3) - 8C, Z3 = 2YZ.  No point of order 2 exists (R is odd), so
    Y = 0 only at infinity."""
    X, Y, Z = p
    if Z == 0:
        return JACOBIAN_INFINITY
    A = X * X % P_MPZ
    B = Y * Y % P_MPZ
    C = B * B % P_MPZ
    t = X + B
    D = 2 * (t * t - A - C) % P_MPZ
    E = 3 * A
    X3 = (E * E - 2 * D) % P_MPZ
    Y3 = (E * (D - X3) - 8 * C) % P_MPZ
    Z3 = 2 * Y * Z % P_MPZ
    return (X3, Y3, Z3)


def jacobian_add(p: Jacobian, q: Jacobian) -> Jacobian:
    """P + Q in Jacobian coordinates ("add-1998-cmo-2"):
    U1 = X1 Z2^2, U2 = X2 Z1^2, S1 = Y1 Z2^3, S2 = Y2 Z1^3, H = U2 - U1, r = S2 - S1,
    X3 = r^2 - H^3 - 2 U1 H^2, Y3 = r (U1 H^2 - X3) - S1 H^3, Z3 = Z1 Z2 H.
    H = 0 means equal x: doubling if r = 0, else P = -Q and the sum is infinity."""
    X1, Y1, Z1 = p
    X2, Y2, Z2 = q
    if Z1 == 0:
        return q
    if Z2 == 0:
        return p
    Z1Z1 = Z1 * Z1 % P_MPZ
    Z2Z2 = Z2 * Z2 % P_MPZ
    U1 = X1 * Z2Z2 % P_MPZ
    U2 = X2 * Z1Z1 % P_MPZ
    S1 = Y1 * Z2 * Z2Z2 % P_MPZ
    S2 = Y2 * Z1 * Z1Z1 % P_MPZ
    H = (U2 - U1) % P_MPZ
    r = (S2 - S1) % P_MPZ
    if H == 0:
        if r == 0:
            return jacobian_double(p)
        return JACOBIAN_INFINITY
    HH = H * H % P_MPZ
    HHH = H * HH % P_MPZ
    V = U1 * HH % P_MPZ
    X3 = (r * r - HHH - 2 * V) % P_MPZ
    Y3 = (r * (V - X3) - S1 * HHH) % P_MPZ
    Z3 = Z1 * Z2 * H % P_MPZ
    return (X3, Y3, Z3)


def jacobian_add_affine(p: Jacobian, a: Affine) -> Jacobian:
    """P + A with A affine (Z2 = 1), the mixed addition: U2 = x Z1^2, S2 = y Z1^3,
    H = U2 - X1, r = S2 - Y1, X3 = r^2 - H^3 - 2 X1 H^2, Y3 = r (X1 H^2 - X3) - Y1 H^3,
    Z3 = Z1 H.  Infinity on either side and H = 0 (equal or opposite) are handled."""
    x, y = a
    if x == 0 and y == 0:
        return p
    X1, Y1, Z1 = p
    if Z1 == 0:
        return (gmpy2.mpz(x), gmpy2.mpz(y), _ONE)
    Z1Z1 = Z1 * Z1 % P_MPZ
    H = (x * Z1Z1 - X1) % P_MPZ
    r = (y * Z1 * Z1Z1 - Y1) % P_MPZ
    if H == 0:
        if r == 0:
            return jacobian_double(p)
        return JACOBIAN_INFINITY
    HH = H * H % P_MPZ
    HHH = H * HH % P_MPZ
    V = X1 * HH % P_MPZ
    X3 = (r * r - HHH - 2 * V) % P_MPZ
    Y3 = (r * (V - X3) - Y1 * HHH) % P_MPZ
    Z3 = Z1 * H % P_MPZ
    return (X3, Y3, Z3)


def jacobian_to_affine(p: Jacobian) -> Affine:
    """(X, Y, Z) -> (X / Z^2, Y / Z^3); Z = 0 -> (0, 0)."""
    X, Y, Z = p
    if Z == 0:
        return AFFINE_INFINITY
    zi = _invert(Z, P_MPZ)
    zi2 = zi * zi % P_MPZ
    return (X * zi2 % P_MPZ, Y * zi2 * zi % P_MPZ)


def batch_invert(values: Sequence[Coord]) -> list[Coord]:
    """Inverses mod P of non-zero ``values`` with one field inversion (Montgomery's trick):
    prefix products c_i = v_0 ... v_i, one inversion of c_{n-1}, then walk back with
    v_i^{-1} = c_{i-1} * (c_i)^{-1} and (c_{i-1})^{-1} = v_i * (c_i)^{-1}.
    Raises ZeroDivisionError if any value is 0 mod P."""
    n = len(values)
    if n == 0:
        return []
    prefix = [_ONE] * n
    acc = _ONE
    for i in range(n):
        prefix[i] = acc
        acc = acc * values[i] % P_MPZ
    inv = _invert(acc, P_MPZ)
    if inv == 0:
        raise ZeroDivisionError("batch_invert: a value is 0 mod P")
    out = [_ZERO] * n
    for i in range(n - 1, -1, -1):
        out[i] = inv * prefix[i] % P_MPZ
        inv = inv * values[i] % P_MPZ
    return out


def batch_to_affine(points: Sequence[Jacobian]) -> list[Affine]:
    """Affine forms of many Jacobian points with one inversion (Montgomery's trick over the
    non-zero Z's); points at infinity map to (0, 0)."""
    idx = [i for i, p in enumerate(points) if p[2] != 0]
    invs = batch_invert([points[i][2] for i in idx])
    out: list[Affine] = [AFFINE_INFINITY] * len(points)
    for i, zi in zip(idx, invs, strict=True):
        X, Y, _ = points[i]
        zi2 = zi * zi % P_MPZ
        out[i] = (X * zi2 % P_MPZ, Y * zi2 * zi % P_MPZ)
    return out


def batch_affine_add(
    x1s: Sequence[Coord], y1s: Sequence[Coord], x2s: Sequence[Coord], y2s: Sequence[Coord]
) -> tuple[list[Coord], list[Coord]]:
    """Sums (x1_i, y1_i) + (x2_i, y2_i) of many independent affine pairs, one inversion in all.

    Affine chord-and-tangent: lambda = (y2 - y1) / (x2 - x1), or 3 x1^2 / (2 y1) when the
    points are equal; x3 = lambda^2 - x1 - x2, y3 = lambda (x1 - x3) - y1.  The denominators
    of all pairs are inverted together (Montgomery batch inversion), so each sum costs about
    six multiplications instead of the ~11 of a mixed Jacobian addition.

    Inputs must be finite points (not (0, 0)); a pair P, -P yields (0, 0) in the output.
    """
    m = len(x1s)
    if not (len(y1s) == len(x2s) == len(y2s) == m):
        raise ValueError("batch_affine_add: the four coordinate lists differ in length")
    dens = [_ONE] * m
    kind = bytearray(m)  # 0 chord, 1 tangent, 2 result is infinity
    for i in range(m):
        d = x2s[i] - x1s[i]
        if d % P_MPZ == 0:
            if (y1s[i] - y2s[i]) % P_MPZ == 0:
                kind[i] = 1
                dens[i] = 2 * y1s[i] % P_MPZ
            else:
                kind[i] = 2
        else:
            dens[i] = d
    invs = batch_invert(dens)
    xs: list[Coord] = [_ZERO] * m
    ys: list[Coord] = [_ZERO] * m
    for i in range(m):
        x1 = x1s[i]
        y1 = y1s[i]
        k = kind[i]
        if k == 0:
            lam = (y2s[i] - y1) * invs[i] % P_MPZ
        elif k == 1:
            lam = 3 * x1 * x1 * invs[i] % P_MPZ
        else:
            continue
        x3 = (lam * lam - x1 - x2s[i]) % P_MPZ
        xs[i] = x3
        ys[i] = (lam * (x1 - x3) - y1) % P_MPZ
    return xs, ys


def affine_add(a: Affine, b: Affine) -> Affine:
    """a + b for affine points (one inversion); handles infinity, a = b and a = -b."""
    if is_affine_infinity(a):
        return (gmpy2.mpz(b[0]), gmpy2.mpz(b[1]))
    if is_affine_infinity(b):
        return (gmpy2.mpz(a[0]), gmpy2.mpz(a[1]))
    xs, ys = batch_affine_add([a[0]], [a[1]], [b[0]], [b[1]])
    return (xs[0], ys[0])


def scalar_mul_jacobian(a: Affine, k: int) -> Jacobian:
    """k * a as a Jacobian point, by a left-to-right signed binary (NAF) ladder with mixed
    additions.  G1 has prime order R, so k is first reduced mod R (negative k included)."""
    k %= R
    if k == 0 or is_affine_infinity(a):
        return JACOBIAN_INFINITY
    a = to_mpz_affine(a)
    na = affine_neg(a)
    # Non-adjacent form, least significant digit first.
    naf: list[int] = []
    while k:
        if k & 1:
            d = 2 - (k & 3)
            k -= d
        else:
            d = 0
        naf.append(d)
        k >>= 1
    acc = JACOBIAN_INFINITY
    for d in reversed(naf):
        acc = jacobian_double(acc)
        if d == 1:
            acc = jacobian_add_affine(acc, a)
        elif d == -1:
            acc = jacobian_add_affine(acc, na)
    return acc


def scalar_mul(a: Affine, k: int) -> Affine:
    """k * a for an affine point, returned affine ((0, 0) for infinity)."""
    return jacobian_to_affine(scalar_mul_jacobian(a, k))
