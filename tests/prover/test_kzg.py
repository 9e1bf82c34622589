"""KZG commit/open/verify: prover side (prover.kzg) against the verifier (verifier.kzg).

The SRS is a seeded development SRS whose tau the tests know, so commitments and proofs are
also checked against the direct values [p(tau)]_1 computed with py_ecc.
"""

from __future__ import annotations

import random
import warnings
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from py_ecc import optimized_bn128 as bn

from prover.kzg import (
    DegreeTooHighError,
    KZGProverError,
    NonCanonicalCoefficientError,
    commit_lagrange,
    commit_monomial,
    evaluate,
    open_at,
    open_batch,
    quotient_by_linear,
    verifier_key,
)
from prover.msm import prepare_bases
from prover.srs import SRS, InsecureSRSWarning, insecure_development_with_tau, lagrange_basis
from verifier.constants import P, R
from verifier.fr import ScalarOutOfRangeError, root_of_unity
from verifier.kzg import (
    ClaimCountError,
    InvalidG1PointError,
    InvalidG2PointError,
    KZGVerifierKey,
    verify_batch_one_point,
    verify_batch_two_points,
    verify_opening,
)

N_POWERS = 32 + 8

Batch = dict[str, Any]


@pytest.fixture(scope="module")
def srs_tau() -> tuple[SRS, int]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureSRSWarning)
        return insecure_development_with_tau(N_POWERS, seed=7)


@pytest.fixture(scope="module")
def srs(srs_tau: tuple[SRS, int]) -> SRS:
    return srs_tau[0]


@pytest.fixture(scope="module")
def vk(srs: SRS) -> KZGVerifierKey:
    return verifier_key(srs)


def g1_mul(k: int) -> tuple[int, int]:
    """k·G1 with py_ecc, affine ints (the oracle)."""
    pt = bn.multiply(bn.G1, k % R)
    if bn.is_inf(pt):
        return (0, 0)
    x, y = bn.normalize(pt)
    return (int(x), int(y))


def rand_poly(rng: random.Random, n: int) -> list[int]:
    return [rng.randrange(R) for _ in range(n)]


def not_on_curve() -> tuple[int, int]:
    return (1, 3)


# ---- prover against direct computation with the known tau ------------------------------------


def test_commit_monomial_is_p_of_tau(srs_tau: tuple[SRS, int]) -> None:
    srs, tau = srs_tau
    p = rand_poly(random.Random(1), 10)
    assert commit_monomial(p, srs) == g1_mul(evaluate(p, tau))


def test_commit_monomial_of_zero_is_infinity(srs: SRS) -> None:
    assert commit_monomial([0, 0, 0], srs) == (0, 0)
    assert commit_monomial([], srs) == (0, 0)


def test_commit_monomial_degree_too_high(srs: SRS) -> None:
    p = [1] * (srs.max_degree + 2)
    with pytest.raises(DegreeTooHighError):
        commit_monomial(p, srs)
    # trailing zeros do not count towards the degree
    assert commit_monomial([5] + [0] * (srs.max_degree + 5), srs) == g1_mul(5)


def test_commit_rejects_non_canonical(srs: SRS) -> None:
    with pytest.raises(NonCanonicalCoefficientError):
        commit_monomial([1, R], srs)
    with pytest.raises(NonCanonicalCoefficientError):
        commit_monomial([-1], srs)


def test_quotient_is_exact(srs_tau: tuple[SRS, int]) -> None:
    rng = random.Random(2)
    p = rand_poly(rng, 9)
    z = rng.randrange(R)
    q = quotient_by_linear(p, z)
    y = evaluate(p, z)
    x = rng.randrange(R)
    assert (evaluate(q, x) * (x - z) - (evaluate(p, x) - y)) % R == 0


def test_open_at_matches_quotient(srs_tau: tuple[SRS, int]) -> None:
    srs, tau = srs_tau
    p = rand_poly(random.Random(3), 12)
    z = 12345
    y, W = open_at(p, z, srs)
    assert y == evaluate(p, z)
    q_tau = (evaluate(p, tau) - y) * pow(tau - z, -1, R) % R
    assert g1_mul(q_tau) == W


def naive_interpolate(values: list[int], k: int) -> list[int]:
    """Coefficients of the degree-<N polynomial with p(omega^i) = values[i] (O(N^2))."""
    n = 1 << k
    w_inv = pow(root_of_unity(k), -1, R)
    n_inv = pow(n, -1, R)
    return [
        n_inv * sum(v * pow(w_inv, i * j, R) for i, v in enumerate(values)) % R for j in range(n)
    ]


@pytest.mark.parametrize("k", [2, 4])
def test_commit_lagrange_equals_commit_monomial(srs: SRS, k: int, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ZKMETER_CACHE", str(tmp_path))
    rng = random.Random(k)
    n = 1 << k
    values = [rng.randrange(R) for _ in range(n)]
    basis = lagrange_basis(srs, k)
    assert commit_lagrange(values, basis) == commit_monomial(naive_interpolate(values, k), srs)
    # the same through bases prepared once, and a changed value changes the commitment
    prepared = prepare_bases(basis)
    assert commit_lagrange(values, prepared) == commit_lagrange(values, basis)
    tampered = [*values[:-1], (values[-1] + 1) % R]
    assert commit_lagrange(tampered, prepared) != commit_lagrange(values, basis)
    # small values (flags, limbs) take the same path
    small = [rng.randrange(2) for _ in range(n)]
    assert commit_lagrange(small, basis) == commit_monomial(naive_interpolate(small, k), srs)


def test_blinded_column_commitment_is_the_commitment_of_its_blinded_coefficients(
    srs: SRS, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """[c + r Z_H]_1 by the prover's route (Lagrange MSM plus the blinding term) equals the
    monomial commitment of c + r(X)(X^N - 1); both keep c's values on H."""
    from prover.kzg import blinded_coefficients, commit_blinded_lagrange

    monkeypatch.setenv("ZKMETER_CACHE", str(tmp_path))
    k, rng = 3, random.Random(7)
    n = 1 << k
    values = [rng.randrange(1 << 8) for _ in range(n)]
    r = [rng.randrange(R) for _ in range(3)]
    coeffs = blinded_coefficients(naive_interpolate(values, k), n, r)
    assert len(coeffs) == n + 3
    basis = lagrange_basis(srs, k)
    blinded = commit_blinded_lagrange(values, basis, srs.g1_powers, r)
    assert blinded == commit_monomial(coeffs, srs)
    omega = root_of_unity(k)
    assert [evaluate(coeffs, pow(omega, i, R)) for i in range(n)] == values
    # the twin: another blinding factor gives another commitment of the same values
    assert commit_blinded_lagrange(values, basis, srs.g1_powers, [r[0] + 1, *r[1:]]) != blinded


def test_commit_lagrange_length_mismatch(
    srs: SRS, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZKMETER_CACHE", str(tmp_path))
    basis = lagrange_basis(srs, 2)
    with pytest.raises(KZGProverError):
        commit_lagrange([1, 2, 3], basis)


def test_open_batch_is_opening_of_combination(srs: SRS) -> None:
    rng = random.Random(4)
    polys = [rand_poly(rng, 5), rand_poly(rng, 8), rand_poly(rng, 3)]
    z, v = rng.randrange(R), rng.randrange(R)
    ys, W = open_batch(polys, z, v, srs)
    assert ys == [evaluate(p, z) for p in polys]
    combined = [0] * 8
    for i, p in enumerate(polys):
        for k, c in enumerate(p):
            combined[k] = (combined[k] + pow(v, i, R) * c) % R
    assert open_at(combined, z, srs)[1] == W


def test_open_batch_rejects_empty(srs: SRS) -> None:
    with pytest.raises(KZGProverError):
        open_batch([], 1, 2, srs)


@settings(max_examples=15, deadline=None)
@given(
    coeffs=st.lists(st.integers(min_value=0, max_value=R - 1), min_size=1, max_size=12),
    z=st.integers(min_value=0, max_value=R - 1),
)
def test_opening_equation_holds_in_the_exponent(
    srs_tau: tuple[SRS, int], coeffs: list[int], z: int
) -> None:
    """C - y·G + z·W == tau·W, checked with the known tau (no pairing needed)."""
    srs, tau = srs_tau
    C = commit_monomial(coeffs, srs)
    y, W = open_at(coeffs, z, srs)
    assert g1_mul(evaluate(coeffs, tau)) == C
    w_log = evaluate(quotient_by_linear(coeffs, z), tau)
    assert g1_mul(w_log) == W
    assert g1_mul((evaluate(coeffs, tau) - y + z * w_log) % R) == g1_mul(tau * w_log)


# ---- verifier: one opening, with a negative twin per way of cheating -------------------------


@pytest.fixture(scope="module")
def opening(srs: SRS) -> Batch:
    rng = random.Random(5)
    p = rand_poly(rng, 16)
    p_other = rand_poly(rng, 16)
    z = rng.randrange(R)
    y, W = open_at(p, z, srs)
    _, W_other = open_at(p_other, z, srs)
    return {
        "C": commit_monomial(p, srs),
        "C_other": commit_monomial(p_other, srs),
        "z": z,
        "y": y,
        "W": W,
        "W_other": W_other,
    }


def test_verify_opening_accepts(vk: KZGVerifierKey, opening: Batch) -> None:
    o = opening
    assert verify_opening(vk, o["C"], o["z"], o["y"], o["W"])


def test_verify_opening_rejects_wrong_value(vk: KZGVerifierKey, opening: Batch) -> None:
    o = opening
    assert not verify_opening(vk, o["C"], o["z"], (o["y"] + 1) % R, o["W"])


def test_verify_opening_rejects_wrong_point(vk: KZGVerifierKey, opening: Batch) -> None:
    o = opening
    assert not verify_opening(vk, o["C"], (o["z"] + 1) % R, o["y"], o["W"])


def test_verify_opening_rejects_wrong_commitment(vk: KZGVerifierKey, opening: Batch) -> None:
    o = opening
    assert not verify_opening(vk, o["C_other"], o["z"], o["y"], o["W"])


def test_verify_opening_rejects_swapped_proof(vk: KZGVerifierKey, opening: Batch) -> None:
    o = opening
    assert not verify_opening(vk, o["C"], o["z"], o["y"], o["W_other"])


def test_verify_opening_rejects_point_not_on_curve(vk: KZGVerifierKey, opening: Batch) -> None:
    o = opening
    with pytest.raises(InvalidG1PointError):
        verify_opening(vk, not_on_curve(), o["z"], o["y"], o["W"])
    with pytest.raises(InvalidG1PointError):
        verify_opening(vk, o["C"], o["z"], o["y"], not_on_curve())
    x, y = o["W"]
    with pytest.raises(InvalidG1PointError):  # non-canonical coordinate (y + P)
        verify_opening(vk, o["C"], o["z"], o["y"], (x, y + P))


@pytest.mark.parametrize("which", ["z", "y"])
def test_verify_opening_rejects_scalar_not_below_R(
    vk: KZGVerifierKey,
    opening: Batch,
    which: str,
) -> None:
    o = dict(opening)
    o[which] = o[which] + R
    with pytest.raises(ScalarOutOfRangeError):
        verify_opening(vk, o["C"], o["z"], o["y"], o["W"])


def fq2_sqrt(a: bn.FQ2) -> bn.FQ2 | None:
    """A square root in F_P^2 = F_P[i]/(i^2 + 1), P = 3 mod 4 (norm method), or None."""
    a0, a1 = (int(c) for c in a.coeffs)
    norm = (a0 * a0 + a1 * a1) % P
    s = pow(norm, (P + 1) // 4, P)
    if s * s % P != norm:
        return None
    inv2 = pow(2, -1, P)
    for cand in ((a0 + s) * inv2 % P, (a0 - s) * inv2 % P):
        x0 = pow(cand, (P + 1) // 4, P)
        if x0 * x0 % P == cand and x0 != 0:
            x1 = a1 * pow(2 * x0, -1, P) % P
            root = bn.FQ2([x0, x1])
            if root * root == a:
                return root
    return None


def twist_point_outside_subgroup() -> tuple[bn.FQ2, bn.FQ2, bn.FQ2]:
    """A point on the G2 twist curve that is not of order R (the twist has a large cofactor)."""
    for x0 in range(1, 100):
        x = bn.FQ2([x0, 1])
        y = fq2_sqrt(x**3 + bn.b2)
        if y is None:
            continue
        q = (x, y, bn.FQ2.one())
        assert bn.is_on_curve(q, bn.b2)
        if not bn.is_inf(bn.multiply(q, R)):
            return q
    raise AssertionError("no twist point found")


def test_verifier_key_rejects_g2_outside_subgroup(srs: SRS) -> None:
    bad = twist_point_outside_subgroup()
    with pytest.raises(InvalidG2PointError):
        KZGVerifierKey(g1=(1, 2), g2=srs.g2_one, g2_tau=bad)
    with pytest.raises(InvalidG2PointError):
        KZGVerifierKey(g1=(1, 2), g2=bad, g2_tau=srs.g2_tau)


def test_verifier_key_rejects_g2_off_curve(srs: SRS) -> None:
    x, y, z = srs.g2_tau
    with pytest.raises(InvalidG2PointError):
        KZGVerifierKey(g1=(1, 2), g2=srs.g2_one, g2_tau=(x, y + bn.FQ2.one(), z))


def test_verifier_key_rejects_bad_g1() -> None:
    with pytest.raises(InvalidG1PointError):
        KZGVerifierKey(g1=(1, 3), g2=bn.G2, g2_tau=bn.G2)
    with pytest.raises(InvalidG1PointError):
        KZGVerifierKey(g1=(0, 0), g2=bn.G2, g2_tau=bn.G2)


# ---- batched verification ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_point_batch(srs: SRS) -> Batch:
    rng = random.Random(6)
    polys_z = [rand_poly(rng, 20), rand_poly(rng, 7), rand_poly(rng, 33)]
    polys_z2 = [rand_poly(rng, 20), rand_poly(rng, 4)]
    z = rng.randrange(R)
    z2 = z * root_of_unity(5) % R  # the shifted point omega·zeta, as in PLONK
    v, u = rng.randrange(R), rng.randrange(R)
    ys, W = open_batch(polys_z, z, v, srs)
    ys2, W2 = open_batch(polys_z2, z2, v, srs)
    return {
        "claims_z": [(commit_monomial(p, srs), y) for p, y in zip(polys_z, ys, strict=True)],
        "claims_z2": [(commit_monomial(p, srs), y) for p, y in zip(polys_z2, ys2, strict=True)],
        "z": z,
        "z2": z2,
        "W": W,
        "W2": W2,
        "v": v,
        "u": u,
    }


def run_two(vk: KZGVerifierKey, b: Batch, **changes: Any) -> bool:
    a = {**b, **changes}
    return verify_batch_two_points(
        vk, a["claims_z"], a["z"], a["W"], a["claims_z2"], a["z2"], a["W2"], a["v"], a["u"]
    )


def test_batch_two_points_accepts(vk: KZGVerifierKey, two_point_batch: Batch) -> None:
    assert run_two(vk, two_point_batch)


def test_batch_two_points_rejects_wrong_value(vk: KZGVerifierKey, two_point_batch: Batch) -> None:
    claims = list(two_point_batch["claims_z2"])
    c, y = claims[1]
    claims[1] = (c, (y + 1) % R)
    assert not run_two(vk, two_point_batch, claims_z2=claims)


def test_batch_two_points_rejects_swapped_proofs(
    vk: KZGVerifierKey, two_point_batch: Batch
) -> None:
    b = two_point_batch
    assert not run_two(vk, b, W=b["W2"], W2=b["W"])


def test_batch_two_points_rejects_other_challenge(
    vk: KZGVerifierKey, two_point_batch: dict
) -> None:
    b = two_point_batch
    assert not run_two(vk, b, v=(b["v"] + 1) % R)


def test_batch_two_points_validates_inputs(vk: KZGVerifierKey, two_point_batch: Batch) -> None:
    b = two_point_batch
    with pytest.raises(ScalarOutOfRangeError):
        run_two(vk, b, u=R)
    with pytest.raises(ScalarOutOfRangeError):
        run_two(vk, b, z2=R + 3)
    with pytest.raises(InvalidG1PointError):
        run_two(vk, b, W2=not_on_curve())
    bad_claims = [(not_on_curve(), 0), *b["claims_z"][1:]]
    with pytest.raises(InvalidG1PointError):
        run_two(vk, b, claims_z=bad_claims)
    with pytest.raises(ClaimCountError):
        run_two(vk, b, claims_z2=[])


def test_batch_one_point_accepts_and_rejects(vk: KZGVerifierKey, two_point_batch: Batch) -> None:
    b = two_point_batch
    assert verify_batch_one_point(vk, b["claims_z"], b["z"], b["W"], b["v"])
    claims = list(b["claims_z"])
    claims[0], claims[1] = claims[1], claims[0]  # order matters (powers of v)
    assert not verify_batch_one_point(vk, claims, b["z"], b["W"], b["v"])


# ---- with the transcript: the PLONK-style flow of commitments and challenges ------------------


def fiat_shamir_flow(srs: SRS, polys: list[list[int]], tamper: bool) -> bool:
    """Commit, draw zeta, open all at zeta and one at omega·zeta, draw v and u from the
    transcript, verify with one two-pairing product (the order docs/PROTOCOL.md will fix)."""
    from verifier.transcript import Transcript

    prover_t, verifier_t = Transcript(), Transcript()
    commitments = [commit_monomial(p, srs) for p in polys]
    for t in (prover_t, verifier_t):
        for c in commitments:
            t.absorb_g1(c)
    zeta = prover_t.challenge()
    zeta_w = zeta * root_of_unity(5) % R
    ys = [evaluate(p, zeta) for p in polys]
    y_shift = evaluate(polys[0], zeta_w)
    prover_t.absorb_scalars([*ys, y_shift])
    v = prover_t.challenge()
    _, W = open_batch(polys, zeta, v, srs)
    _, W2 = open_batch(polys[:1], zeta_w, v, srs)
    prover_t.absorb_g1(W)
    prover_t.absorb_g1(W2)
    prover_t.challenge()  # u, drawn by the prover only to mirror the verifier's transcript
    # the verifier replays the transcript from the proof's contents
    if tamper:
        ys = [(ys[0] + 1) % R, *ys[1:]]
    assert verifier_t.challenge() == zeta
    verifier_t.absorb_scalars([*ys, y_shift])
    v_check = verifier_t.challenge()
    verifier_t.absorb_g1(W)
    verifier_t.absorb_g1(W2)
    u_check = verifier_t.challenge()
    return verify_batch_two_points(
        verifier_key(srs),
        list(zip(commitments, ys, strict=True)),
        zeta,
        W,
        [(commitments[0], y_shift)],
        zeta_w,
        W2,
        v_check,
        u_check,
    )


def test_fiat_shamir_flow_accepts(srs: SRS) -> None:
    rng = random.Random(9)
    assert fiat_shamir_flow(srs, [rand_poly(rng, 32), rand_poly(rng, 16)], tamper=False)


def test_fiat_shamir_flow_rejects_tampered_evaluation(srs: SRS) -> None:
    rng = random.Random(9)
    assert not fiat_shamir_flow(srs, [rand_poly(rng, 32), rand_poly(rng, 16)], tamper=True)


def test_verification_key_alone_equals_the_proving_keys_and_needs_no_lagrange_basis(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`verification_key` (monomial route, what `zkmeter verify --srs` and `keys export` use)
    gives the key `ProvingKey.build` derives through the Lagrange basis, without building it."""
    import prover.proving_key as proving_key_module
    from prover.proving_key import ProvingKey, ProvingKeyError, verification_key

    monkeypatch.setenv("ZKMETER_CACHE", str(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureSRSWarning)
        srs = SRS.insecure_development(256 + 3, seed=3)
    expected = ProvingKey.build(srs, 8).vk

    def no_basis(*_: object, **__: object) -> None:
        raise AssertionError("the verification key must not need the Lagrange basis")

    monkeypatch.setattr(proving_key_module, "lagrange_basis", no_basis)
    assert verification_key(srs, 8) == expected
    with pytest.raises(ProvingKeyError, match="needs 515"):  # twin: an SRS too short for 2^9
        verification_key(srs, 9)
