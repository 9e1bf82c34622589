"""KZG commitments and opening proofs on BN254: the prover side of ``verifier/kzg.py``.

Kate, Zaverucha, Goldberg 2010 (PolyCommit_DL); batching as in PLONK (GWC19 §3).
Polynomials are lists of coefficients in Fr, lowest degree first (``coeffs[i]`` multiplies
``X^i``), or, for ``commit_lagrange``, their values on a subgroup H of size N.

* ``C = [p(tau)]_1 = sum_i p_i [tau^i]_1`` (an MSM over the SRS powers);
* in the Lagrange basis ``C = sum_i p(omega^i) [L_i(tau)]_1``, the same point;
* an opening of ``y = p(z)`` is ``W = [q(tau)]_1``, ``q(X) = (p(X) - y) / (X - z)``, which has
  no remainder precisely because ``p(z) = y``;
* a blinded column (PROTOCOL §6 steps 2-3) is ``c(X) + r(X) Z_H(X)``, ``r(X) = sum_j r_j X^j``,
  committed as ``sum_i c_i [L_i(tau)]_1 + sum_j r_j ([tau^(N+j)]_1 - [tau^j]_1)``.

This is the one commit/open path: the prover's rounds, the archive audit and the tests use it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prover import ntt
from prover.g1 import affine_add
from prover.msm import Bases, msm, msm_many
from prover.srs import SRS
from verifier.constants import R
from verifier.curve import G1Affine
from verifier.kzg import KZGVerifierKey


class KZGProverError(ValueError):
    """An input to a KZG prover function is unusable (degree too high, sizes differ, ...)."""


class DegreeTooHighError(KZGProverError):
    """The polynomial's degree exceeds the SRS's ``max_degree``."""


class NonCanonicalCoefficientError(KZGProverError):
    """A coefficient, value, point or challenge is not in [0, R)."""


def verifier_key(srs: SRS) -> KZGVerifierKey:
    """The KZG verifier key ``([1]_1, [1]_2, [tau]_2)`` of an SRS."""
    return KZGVerifierKey(g1=srs.g1_powers[0], g2=srs.g2_one, g2_tau=srs.g2_tau)


def commit_monomial(coeffs: Sequence[int], srs: SRS, processes: int = 1) -> G1Affine:
    """``[p(tau)]_1 = sum_i coeffs[i]·[tau^i]_1``; trailing zero coefficients are ignored, and
    ``DegreeTooHighError`` is raised if ``deg p > srs.max_degree``. ``processes`` is passed to
    ``prover.msm.msm``."""
    _check_scalars(coeffs, "coefficient")
    d = _degree(coeffs)
    if d > srs.max_degree:
        raise DegreeTooHighError(
            f"polynomial of degree {d} exceeds the SRS's max degree {srs.max_degree}"
        )
    if d < 0:
        return (0, 0)
    return _plain(msm(srs.g1_powers[: d + 1], list(coeffs[: d + 1]), processes=processes))


def commit_lagrange(
    values: Sequence[int], lagrange_points: Sequence[G1Affine] | Bases, processes: int = 1
) -> G1Affine:
    """``sum_i values[i]·[L_i(tau)]_1``: the commitment to the polynomial of degree < N taking
    ``values[i]`` at ``omega^i`` (``lagrange_points`` from ``prover.srs.lagrange_basis``,
    optionally prepared once with ``prover.msm.prepare_bases``). Small values (flags, limbs)
    make the MSM cheap: its window follows the largest scalar's bit length."""
    if len(values) != len(lagrange_points):
        raise KZGProverError(
            f"{len(values)} values for a Lagrange basis of {len(lagrange_points)} points"
        )
    _check_scalars(values, "value")
    return _plain(msm(lagrange_points, list(values), processes=processes))


def blinding_commitment(g1_powers: Sequence[G1Affine], n: int, r: Sequence[int]) -> G1Affine:
    """``[r(tau) Z_H(tau)]_1 = sum_j r_j ([tau^(N+j)]_1 - [tau^j]_1)`` for ``Z_H = X^N - 1``."""
    _check_scalars(r, "blinding factor")
    points = [g1_powers[n + j] for j in range(len(r))] + [g1_powers[j] for j in range(len(r))]
    return _plain(msm(points, [*r, *((R - r_j) % R for r_j in r)]))


def commit_blinded_lagrange(
    values: Sequence[int],
    lagrange_points: Sequence[G1Affine] | Bases,
    g1_powers: Sequence[G1Affine],
    r: Sequence[int],
) -> G1Affine:
    """``[c + r Z_H]_1``: the commitment to the column taking ``values`` on H, blinded by
    ``r(X) Z_H(X)`` (PROTOCOL §6 step 3)."""
    unblinded = commit_lagrange(values, lagrange_points)
    return add_points(unblinded, blinding_commitment(g1_powers, len(values), r))


def blinded_coefficients(coeffs: Sequence[Any], n: int, r: Sequence[int]) -> list[Any]:
    """The coefficients of ``c(X) + r(X)(X^N - 1)`` from those of ``c`` (degree < N)."""
    out = [*coeffs, *([0] * (n + len(r) - len(coeffs)))]
    for j, r_j in enumerate(r):
        out[j] = (out[j] - r_j) % R
        out[n + j] = (out[n + j] + r_j) % R
    return out


def commit_monomial_many(
    polys: Sequence[Sequence[Any]], bases: Bases, processes: int = 1
) -> list[G1Affine]:
    """``[p_k(tau)]_1`` for each polynomial, all over the same prepared monomial bases
    (``msm_many`` spreads whole MSMs over ``processes``). DegreeTooHighError if a polynomial
    has more coefficients than there are bases."""
    width = len(bases)
    padded = []
    for poly in polys:
        if len(poly) > width:
            raise DegreeTooHighError(f"polynomial of degree {len(poly) - 1} exceeds the SRS")
        padded.append([int(c) for c in poly] + [0] * (width - len(poly)))
    return [_plain(p) for p in msm_many(bases, padded, processes)]


def opening_quotient(terms: Sequence[tuple[Sequence[Any], int]], z: int) -> list[Any]:
    """``(P(X) - P(z)) / (X - z)`` for ``P = sum_k weight_k p_k``: division is linear, so the
    polynomials are combined first and divided once (GWC19 §3)."""
    length = max(len(poly) for poly, _ in terms)
    combined = [0] * length
    for poly, weight in terms:
        for i, c in enumerate(poly):
            combined[i] += c * weight
    return quotient_by_linear([c % R for c in combined], z)


def add_points(a: G1Affine, b: G1Affine) -> G1Affine:
    """a + b in G1 (affine, plain ints)."""
    return _plain(affine_add(a, b))


def evaluate(coeffs: Sequence[int], z: int) -> int:
    """``p(z) mod R`` (Horner's rule, ``prover.ntt.evaluate``) as a plain int."""
    return int(ntt.evaluate(coeffs, z))


def quotient_by_linear(coeffs: Sequence[int], z: int) -> list[int]:
    """``(p(X) - p(z)) / (X - z)`` by synthetic division (``prover.ntt.divide_by_linear``)."""
    q, _remainder = ntt.divide_by_linear(coeffs, z)
    return [int(c) for c in q]


def open_at(coeffs: Sequence[int], z: int, srs: SRS, processes: int = 1) -> tuple[int, G1Affine]:
    """``(y, W)`` with ``y = p(z)`` and ``W = [(p(X) - y)/(X - z)](tau)]_1``."""
    _check_scalars(coeffs, "coefficient")
    _check_scalars([z], "point z")
    y = evaluate(coeffs, z)
    return y, commit_monomial(quotient_by_linear(coeffs, z), srs, processes)


def open_batch(
    polys: Sequence[Sequence[int]], z: int, v: int, srs: SRS, processes: int = 1
) -> tuple[list[int], G1Affine]:
    """``([p_i(z)]_i, W)`` with ``W = [sum_i v^i (p_i(X) - p_i(z))/(X - z)]_1`` (i from 0),
    the one-point batched opening checked by ``verifier.kzg.verify_batch_one_point`` and, per
    point, by ``verify_batch_two_points``. Division is linear, so ``W`` is the opening of
    ``sum_i v^i p_i``: the polynomials are combined first and divided once."""
    if not polys:
        raise KZGProverError("open_batch needs at least one polynomial")
    _check_scalars([z, v], "point or challenge")
    for p in polys:
        _check_scalars(p, "coefficient")
    ys = [evaluate(p, z) for p in polys]
    weights = [pow(v, i, R) for i in range(len(polys))]
    quotient = opening_quotient(list(zip(polys, weights, strict=True)), z)
    return ys, commit_monomial(quotient, srs, processes)


def _degree(coeffs: Sequence[int]) -> int:
    d = len(coeffs) - 1
    while d >= 0 and coeffs[d] == 0:
        d -= 1
    return d


def _check_scalars(values: Sequence[int], what: str) -> None:
    for i, x in enumerate(values):
        if not 0 <= x < R:
            raise NonCanonicalCoefficientError(f"{what} {i} = {x} is not in [0, R)")


def _plain(p: G1Affine) -> G1Affine:
    return (int(p[0]), int(p[1]))
