"""Fiat–Shamir for the usage-batch proof: what is absorbed, in which order (PROTOCOL §5).

    1. public inputs: chain_id, settlement, operator, batch_seq, log_size,
       [T]_1 (x, y), [tau]_2 (x_im, x_re, y_im, y_re), the number of aggregates C,
       then per aggregate: key, first_nonce, count, tokens
    2. round-1 commitments (layout.round1_columns)   -> beta, gamma, delta
    3. round-2 commitments (layout.round2_columns)   -> alpha
    4. quotient chunks t_0, t_1                      -> zeta
    5. evaluations at zeta, then at omega * zeta      -> v
    6. W_zeta, W_omega_zeta                           -> u

The prover drives the same :class:`Transcript` through the same steps as it goes; the
verifier replays them all at once from the proof with :func:`proof_challenges`.
"""

from __future__ import annotations

from dataclasses import dataclass

from circuits.public_inputs import PublicInputs
from verifier.keys import VerificationKey
from verifier.proof import QUOTIENT_COLUMNS, Proof
from verifier.transcript import Transcript


@dataclass(frozen=True)
class Challenges:
    beta: int  # logUp range-lookup challenge
    gamma: int  # aggregate-lookup challenge (keys)
    delta: int  # separates count, tokens, first nonce and start inside one fraction
    alpha: int  # folds the gates into one polynomial
    zeta: int  # evaluation point
    v: int  # batches the openings at each point
    u: int  # combines the two opening points


def absorb_public_inputs(transcript: Transcript, vk: VerificationKey, public: PublicInputs) -> None:
    """Step 1: the public inputs, the domain size and the verification key."""
    header = public.header
    transcript.absorb_words(
        [header.chain_id, header.settlement, header.operator, header.batch_seq, public.k]
    )
    transcript.absorb_g1(vk.table_commitment)
    transcript.absorb_words(vk.g2_tau_words())
    transcript.absorb_word(len(public.aggregates))
    for agg in public.aggregates:
        transcript.absorb_words([agg.key, agg.first_nonce, agg.count, agg.tokens])


def proof_challenges(vk: VerificationKey, public: PublicInputs, proof: Proof) -> Challenges:
    """Replay the transcript of ``proof`` and return its challenges."""
    layout = proof.layout
    transcript = Transcript()
    absorb_public_inputs(transcript, vk, public)
    for name in layout.round1_columns:
        transcript.absorb_g1(proof.commitments[name])
    beta, gamma, delta = transcript.challenges(3)
    for name in layout.round2_columns:
        transcript.absorb_g1(proof.commitments[name])
    alpha = transcript.challenge()
    for name in QUOTIENT_COLUMNS:
        transcript.absorb_g1(proof.commitments[name])
    zeta = transcript.challenge()
    transcript.absorb_scalars(proof.evals_zeta[name] for name in layout.opened_at_zeta)
    transcript.absorb_scalars(proof.evals_omega_zeta[name] for name in layout.opened_at_omega_zeta)
    v = transcript.challenge()
    transcript.absorb_g1(proof.w_zeta)
    transcript.absorb_g1(proof.w_omega_zeta)
    u = transcript.challenge()
    return Challenges(beta, gamma, delta, alpha, zeta, v, u)
