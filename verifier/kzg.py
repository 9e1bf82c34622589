"""KZG polynomial-commitment verification on BN254 (pure: no I/O).

Kate, Zaverucha, Goldberg, "Constant-Size Commitments to Polynomials and Their Applications",
ASIACRYPT 2010, §3.2 (PolyCommit_DL); batched openings at two points as in Gabizon,
Williamson, Ciobotaru, "PLONK", ePrint 2019/953, §3 (the "batched version of [KZG10]").

Notation: ``[a]_1 = a·G1``, ``[a]_2 = a·G2`` (EIP-196/197 generators), ``tau`` the SRS
trapdoor. A commitment to ``p(X)`` is ``C = [p(tau)]_1``; an opening proof of ``y = p(z)`` is
``W = [q(tau)]_1`` with ``q(X) = (p(X) - y) / (X - z)``. All checks end in one product of two
pairings, computed by ``verifier.curve.pairing_product_is_one`` (the EIP-197 precompile's
semantics), so the Solidity verifier performs the very same check.

Inputs are validated before any arithmetic: G1 points must be affine ints on the curve
(``(0, 0)`` is the point at infinity), scalars canonical (``0 <= x < R``); violations raise
``InvalidG1PointError`` / ``ScalarOutOfRangeError`` rather than returning False, so a caller
can tell a malformed proof from a false one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from py_ecc.optimized_bn128.optimized_curve import (
    Z1,
    add,
    b2,
    is_inf,
    is_on_curve,
    multiply,
    neg,
)

from verifier import backend
from verifier.constants import P, R
from verifier.curve import (
    G1Affine,
    G2Point,
    InvalidPointError,
    g1_from_affine,
    g1_from_bytes,
    g1_is_on_curve_affine,
    g1_to_affine,
    g1_to_bytes,
    g2_is_in_subgroup,
    pairing_product_is_one,
)
from verifier.fr import check_scalar


class KZGError(ValueError):
    """Base class of KZG input errors."""


class InvalidG1PointError(KZGError, InvalidPointError):
    """A G1 input is not a pair of ints on y^2 = x^3 + 3 (nor (0, 0), infinity)."""


class InvalidG2PointError(KZGError, InvalidPointError):
    """A G2 input of the verifier key is not on the twist or not in the order-R subgroup."""


class ClaimCountError(KZGError):
    """A batched check was given no claims."""


@dataclass(frozen=True)
class KZGVerifierKey:
    """What KZG verification needs from the SRS: ``g1 = [1]_1``, ``g2 = [1]_2``,
    ``g2_tau = [tau]_2``. The G2 points are checked (twist membership and subgroup) on
    construction; ``g1`` must be on the curve."""

    g1: G1Affine
    g2: G2Point
    g2_tau: G2Point

    def __post_init__(self) -> None:
        check_g1(self.g1, "vk.g1")
        if _is_infinity(self.g1):
            raise InvalidG1PointError("vk.g1 is the point at infinity")
        _check_g2(self.g2, "vk.g2")
        _check_g2(self.g2_tau, "vk.g2_tau")


def check_g1(point: G1Affine, name: str = "point") -> None:
    """Raise ``InvalidG1PointError`` unless ``point`` is (0, 0) or a canonical affine point of
    E(F_P): y^2 = x^3 + 3 with 0 <= x, y < P."""
    if not isinstance(point, tuple) or len(point) != 2:
        raise InvalidG1PointError(f"{name} must be a pair (x, y), got {type(point).__name__}")
    x, y = point
    try:
        x, y = int(x), int(y)
    except (TypeError, ValueError) as exc:
        raise InvalidG1PointError(f"{name} coordinates must be integers") from exc
    if not (0 <= x < P and 0 <= y < P):
        raise InvalidG1PointError(f"{name} has a coordinate outside [0, P)")
    if not g1_is_on_curve_affine((x, y)):
        raise InvalidG1PointError(f"{name} = ({x}, {y}) is not on the curve y^2 = x^3 + 3")


def verify_opening(
    vk: KZGVerifierKey, commitment: G1Affine, z: int, y: int, proof: G1Affine
) -> bool:
    """Accept iff ``proof`` = W shows that the polynomial committed in C has p(z) = y.

    From ``p(X) - y = q(X)(X - z)`` at ``X = tau``: ``C - [y]_1 = tau·W - z·W``, i.e.
    ``C - y·[1]_1 + z·W = tau·W``, checked as

        e(C - y·[1]_1 + z·W, [1]_2) · e(-W, [tau]_2) == 1.
    """
    check_g1(commitment, "commitment")
    check_g1(proof, "proof")
    check_scalar(z, "z")
    check_scalar(y, "y")
    lhs = linear_combination([(commitment, 1), (vk.g1, (R - y) % R), (proof, z)])
    return pairing_product_is_one([(lhs, vk.g2), (neg(g1_from_affine(proof)), vk.g2_tau)])


def verify_batch_one_point(
    vk: KZGVerifierKey,
    claims: Sequence[tuple[G1Affine, int]],
    z: int,
    proof: G1Affine,
    v: int,
) -> bool:
    """Accept iff ``proof`` opens every ``(C_i, y_i)`` of ``claims`` at the same point z.

    The prover commits ``W = [sum_i v^i (p_i(X) - y_i) / (X - z)]_1`` (i from 0); this is a
    single opening of ``F = sum_i v^i C_i`` to ``y = sum_i v^i y_i``:

        e(F - y·[1]_1 + z·W, [1]_2) · e(-W, [tau]_2) == 1.

    ``v`` must be drawn (Fiat–Shamir) after the C_i, y_i and z are fixed; a false claim then
    passes with probability at most (len(claims) - 1)/R plus the KZG binding error.
    """
    F, y = _combine(claims, v, "claims")
    check_scalar(z, "z")
    check_g1(proof, "proof")
    return verify_opening(vk, F, z, y, proof)


def verify_batch_two_points(
    vk: KZGVerifierKey,
    claims_z: Sequence[tuple[G1Affine, int]],
    z: int,
    proof_z: G1Affine,
    claims_z2: Sequence[tuple[G1Affine, int]],
    z2: int,
    proof_z2: G1Affine,
    v: int,
    u: int,
) -> bool:
    """Accept iff ``proof_z`` = W opens every ``(C_i, y_i)`` at z and ``proof_z2`` = W' opens
    every ``(C'_j, y'_j)`` at z2 (PLONK, GWC19 §3), with one product of two pairings.

    With ``F = sum_i v^i C_i + u·sum_j v^j C'_j`` and
    ``E = (sum_i v^i y_i + u·sum_j v^j y'_j)·[1]_1``, the two single checks
    ``F_z - E_z + z·W = tau·W`` and ``F_z2 - E_z2 + z2·W' = tau·W'`` are combined with the
    random ``u``:

        e(W + u·W', [tau]_2) == e(z·W + u·z2·W' + F - E, [1]_2),

    checked as ``e(W + u·W', [tau]_2) · e(-(z·W + u·z2·W' + F - E), [1]_2) == 1``.
    ``v`` is drawn after all claims and points; ``u`` after W and W'.
    """
    if not claims_z or not claims_z2:
        raise ClaimCountError("verify_batch_two_points needs at least one claim per point")
    check_scalar(z, "z")
    check_scalar(z2, "z2")
    check_scalar(u, "u")
    check_g1(proof_z, "proof_z")
    check_g1(proof_z2, "proof_z2")
    F1, y1 = _combine(claims_z, v, "claims_z")
    F2, y2 = _combine(claims_z2, v, "claims_z2")
    e = (y1 + u * y2) % R
    # right = z·W + u·z2·W' + F - E
    right = linear_combination(
        [(proof_z, z), (proof_z2, u * z2 % R), (F1, 1), (F2, u), (vk.g1, (R - e) % R)]
    )
    left = linear_combination([(proof_z, 1), (proof_z2, u)])
    return pairing_product_is_one([(left, vk.g2_tau), (neg(right), vk.g2)])


# ---- helpers ---------------------------------------------------------------------------------


def _combine(claims: Sequence[tuple[G1Affine, int]], v: int, name: str) -> tuple[G1Affine, int]:
    """``(sum_i v^i C_i, sum_i v^i y_i mod R)`` after validating every claim and v."""
    if not claims:
        raise ClaimCountError(f"{name} is empty")
    check_scalar(v, "v")
    terms: list[tuple[G1Affine, int]] = []
    y = 0
    vi = 1
    for i, (c, yi) in enumerate(claims):
        check_g1(c, f"{name}[{i}] commitment")
        check_scalar(yi, f"{name}[{i}] value")
        terms.append((c, vi))
        y = (y + vi * yi) % R
        vi = vi * v % R
    return g1_to_affine(linear_combination(terms)), y


def _is_infinity(p: G1Affine) -> bool:
    return int(p[0]) == 0 and int(p[1]) == 0


def linear_combination(terms: Sequence[tuple[G1Affine, int]]) -> tuple[Any, Any, Any]:
    """``sum_k s_k·P_k`` as a py_ecc point (a handful of terms; not the prover's hot path).
    The points have been validated by ``check_g1``.

    On the native backend one arkworks MSM over the terms (``zkmeter_native.g1_msm``, which
    checks every point on the curve again); otherwise py_ecc's double-and-add per term
    (``linear_combination_py_ecc``, the reference, ~5 ms a term)."""
    core = backend.native_module()
    if core is None:
        return linear_combination_py_ecc(terms)
    points = b"".join(g1_to_bytes(point) for point, _ in terms)
    scalars = b"".join((scalar % R).to_bytes(32, "little") for _, scalar in terms)
    encoded = core.g1_msm(core.G1Bases.from_affine_bytes(points), scalars)
    return g1_from_affine(g1_from_bytes(encoded))


def linear_combination_py_ecc(terms: Sequence[tuple[G1Affine, int]]) -> tuple[Any, Any, Any]:
    """``linear_combination`` with py_ecc: ``sum_k s_k·P_k`` term by term."""
    acc = Z1
    for point, scalar in terms:
        if scalar % R == 0 or _is_infinity(point):
            continue
        acc = add(acc, multiply(g1_from_affine(point), scalar % R))
    return acc


def _check_g2(point: G2Point, name: str) -> None:
    """On the twist y^2 = x^3 + 3/(9 + u), not infinity, and of order R (R·Q = O)."""
    try:
        on_curve = is_on_curve(point, b2)
    except (TypeError, AttributeError, IndexError) as exc:
        raise InvalidG2PointError(f"{name} is not a py_ecc G2 point") from exc
    if not on_curve:
        raise InvalidG2PointError(f"{name} is not on the G2 twist curve")
    if is_inf(point):
        raise InvalidG2PointError(f"{name} is the point at infinity")
    if not g2_is_in_subgroup(point):
        raise InvalidG2PointError(f"{name} is not in the order-R subgroup of the twist")
