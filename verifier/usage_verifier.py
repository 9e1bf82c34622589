"""The Python verifier of the usage-batch proof, step by step as in docs/PROTOCOL.md §7.

1. check the public inputs (ranges, keys strictly increasing) and the domain size;
2. the proof's points are on the curve and its evaluations below R (decoding);
3. replay the transcript: beta, gamma, delta, alpha, zeta, v, u;
4. compute the public sum A = sum_c (count + delta*tokens + delta^2*firstNonce + delta^3)
   / (gamma - key) from the aggregates;
5. evaluate the folded gates G(zeta) from the claimed evaluations and compute
   t(zeta) = G(zeta) / Z_H(zeta) -- never taken from the proof;
6. [t]_1 = [t_0]_1 + zeta^N [t_1]_1;
7. one batched KZG check of every claimed evaluation at zeta (t first, then the columns
   and T) and at omega * zeta, with one two-pairing product.
"""

from __future__ import annotations

from dataclasses import dataclass

from py_ecc.optimized_bn128.optimized_curve import G2 as G2_GENERATOR

from circuits.constants import R
from circuits.public_inputs import PublicInputError, PublicInputs, check_public_inputs
from verifier.challenges import Challenges, proof_challenges
from verifier.curve import (
    G1_GENERATOR_AFFINE,
    InvalidPointError,
    g1_from_affine,
    g1_to_affine,
)
from verifier.domain import Domain
from verifier.fr import batch_inverse, inverse
from verifier.keys import VerificationKey
from verifier.kzg import KZGVerifierKey, linear_combination, verify_batch_two_points
from verifier.proof import QUOTIENT_COLUMNS, Proof


class VerificationError(Exception):
    """The proof was rejected; ``check`` names the step that failed."""

    def __init__(self, check: str, message: str) -> None:
        super().__init__(f"{check}: {message}")
        self.check = check


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    check: str  # "ok" or the name of the failed check
    message: str


def public_sum(public: PublicInputs, gamma: int, delta: int) -> int:
    """A = sum over aggregates of (count + delta*tokens + delta^2*firstNonce + delta^3)
    / (gamma - key), in Fr.  Raises ZeroDivisionError if gamma equals a key."""
    delta2 = delta * delta % R
    delta3 = delta2 * delta % R
    denominators = [(gamma - agg.key) % R for agg in public.aggregates]
    inverses = batch_inverse(denominators)
    total = 0
    for agg, inv in zip(public.aggregates, inverses, strict=True):
        numerator = (agg.count + delta * agg.tokens + delta2 * agg.first_nonce + delta3) % R
        total = (total + numerator * inv) % R
    return total


def gate_inputs(
    public: PublicInputs, proof: Proof, challenges: Challenges
) -> tuple[dict[str, int], int]:
    """The values the folded gates take at zeta, and Z_H(zeta)."""
    layout = proof.layout
    domain = Domain(layout.k)
    zeta = challenges.zeta
    vanishing = domain.vanishing_at(zeta)
    if vanishing == 0:
        raise VerificationError("zeta", "zeta lies in the domain H")
    try:
        A = public_sum(public, challenges.gamma, challenges.delta)
    except ZeroDivisionError:
        raise VerificationError("public sum", "gamma equals a channel key") from None
    values = dict(proof.evals_zeta)
    values.update({f"{name}_next": value for name, value in proof.evals_omega_zeta.items()})
    values.update(
        beta=challenges.beta,
        gamma=challenges.gamma,
        delta=challenges.delta,
        alpha=challenges.alpha,
        A_over_N=A * domain.size_inv % R,
        L0=domain.lagrange_first_at(zeta),
    )
    return values, vanishing


def check_batch_proof(vk: VerificationKey, public: PublicInputs, proof: Proof) -> None:
    """Accept silently or raise VerificationError naming the failed check."""
    try:
        check_public_inputs(public)
    except (PublicInputError, ValueError) as error:
        raise VerificationError("public inputs", str(error)) from None
    if not public.k == proof.k == vk.k:
        raise VerificationError(
            "domain size",
            f"public inputs say 2^{public.k}, proof 2^{proof.k}, key 2^{vk.k}",
        )
    try:
        for point in [*proof.commitments.values(), proof.w_zeta, proof.w_omega_zeta]:
            g1_from_affine(point)
    except InvalidPointError as error:
        raise VerificationError("encoding", str(error)) from None
    scalars = [*proof.evals_zeta.values(), *proof.evals_omega_zeta.values()]
    if any(not 0 <= value < R for value in scalars):
        raise VerificationError("encoding", "an evaluation is not a canonical scalar")

    challenges = proof_challenges(vk, public, proof)
    values, vanishing = gate_inputs(public, proof, challenges)
    gates_at_zeta = proof.layout.compiled().evaluate(values)
    quotient_at_zeta = gates_at_zeta * inverse(vanishing) % R

    n = proof.layout.size
    zeta = challenges.zeta
    zeta_n = pow(zeta, n, R)
    quotient_commitment = g1_to_affine(
        linear_combination(
            [
                (proof.commitments[name], pow(zeta_n, c, R))
                for c, name in enumerate(QUOTIENT_COLUMNS)
            ]
        )
    )
    layout = proof.layout
    commitments = dict(proof.commitments)
    commitments["T"] = vk.table_commitment
    claims_zeta = [(quotient_commitment, quotient_at_zeta)]
    claims_zeta += [(commitments[name], proof.evals_zeta[name]) for name in layout.opened_at_zeta]
    claims_omega_zeta = [
        (commitments[name], proof.evals_omega_zeta[name]) for name in layout.opened_at_omega_zeta
    ]
    omega_zeta = Domain(layout.k).omega * zeta % R
    accepted = verify_batch_two_points(
        KZGVerifierKey(G1_GENERATOR_AFFINE, G2_GENERATOR, vk.g2_tau),
        claims_zeta,
        zeta,
        proof.w_zeta,
        claims_omega_zeta,
        omega_zeta,
        proof.w_omega_zeta,
        challenges.v,
        challenges.u,
    )
    if not accepted:
        raise VerificationError(
            "opening",
            "the batched KZG openings do not verify (a commitment, evaluation or "
            "quotient is inconsistent)",
        )


def verify_batch_proof(vk: VerificationKey, public: PublicInputs, proof: Proof) -> Verdict:
    """The verdict of :func:`check_batch_proof` as a value."""
    try:
        check_batch_proof(vk, public, proof)
    except VerificationError as error:
        return Verdict(False, error.check, str(error))
    return Verdict(True, "ok", "proof accepted")
