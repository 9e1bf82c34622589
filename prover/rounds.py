"""The order of PROTOCOL §6's five rounds, shared by both provers.

    round 1  witness columns, blinded, committed in the Lagrange basis  -> beta, gamma, delta
    round 2  logUp helpers h_range_j, h_table, h_agg and running sum phi -> alpha
    round 3  quotient t = sum_i alpha^i gate_i / Z_H on 2 cosets of H, split in 2 -> zeta
    round 4  evaluations at zeta and omega * zeta                       -> v
    round 5  the two batched KZG opening proofs                         -> u

``Rounds.run`` is the one place that fixes what is absorbed and drawn when; rounds 4 and 5
(which evaluations, in which order, with which opening weights) are written here once too.
The pure-Python rounds (``prover.prover.PythonRounds``, the reference) and the native ones
(``prover.native_prover.NativeRounds``) supply the arithmetic: committing columns, round 2,
round 3, evaluating a polynomial, and opening a weighted sum of polynomials at a point.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

from circuits.constants import R
from circuits.public_inputs import PublicInputs
from circuits.usage_batch import QUOTIENT_CHUNKS, Layout
from prover.proving_key import ProvingKey
from prover.timings import ProofTimings
from verifier.challenges import absorb_public_inputs
from verifier.curve import G1Affine
from verifier.proof import QUOTIENT_COLUMNS, Proof
from verifier.transcript import Transcript

# A polynomial (coefficients, in whatever form the prover keeps them) and its weight in a
# batched opening.
Weighted = list[tuple[Any, int]]


class Rounds(ABC):
    """One proof's state and the transcript order; subclasses do the arithmetic."""

    pk: ProvingKey
    layout: Layout
    public: PublicInputs
    report: Callable[[str], None]
    transcript: Transcript
    timings: ProofTimings
    coeffs: dict[str, Any]  # blinded coefficients of every committed polynomial
    commitments: dict[str, G1Affine]
    blinding: dict[str, list[int]]

    def run(self) -> Proof:
        """PROTOCOL §6: the public inputs, then each round's commitments and challenge."""
        absorb_public_inputs(self.transcript, self.pk.vk, self.public)
        self.report("round 1/5: committing to the witness columns")
        self._commit_columns(self.layout.round1_columns)
        beta, gamma, delta = self.transcript.challenges(3)
        self.report("round 2/5: logUp helpers and running sum")
        self._round_2(beta, gamma, delta)
        self._commit_columns(self.layout.round2_columns)
        alpha = self.transcript.challenge()
        self.report(f"round 3/5: quotient on {QUOTIENT_CHUNKS} cosets of H")
        self._round_3(beta, gamma, delta, alpha)
        zeta = self.transcript.challenge()
        self.report("round 4/5: evaluations")
        evals_zeta, evals_omega_zeta = self._round_4(zeta)
        v = self.transcript.challenge()
        self.report("round 5/5: opening proofs")
        w_zeta, w_omega_zeta = self._round_5(zeta, v)
        self.transcript.challenge()  # u: completes the transcript as the verifier replays it
        return Proof(
            self.layout.k,
            dict(self.commitments),
            evals_zeta,
            evals_omega_zeta,
            w_zeta,
            w_omega_zeta,
        )

    def _round_4(self, zeta: int) -> tuple[dict[str, int], dict[str, int]]:
        """The openings' claimed values: each column of ``opened_at_zeta`` at zeta, then each
        of ``opened_at_omega_zeta`` at omega * zeta, absorbed in that order (PROTOCOL §6
        step 5)."""
        layout = self.layout
        omega_zeta = self.pk.domain.omega * zeta % R
        with self.timings.measure("other"):
            at_zeta, at_omega_zeta = layout.opened_at_zeta, layout.opened_at_omega_zeta
            evals_zeta = dict(zip(at_zeta, self._evaluate_many(at_zeta, zeta), strict=True))
            evals_omega_zeta = dict(
                zip(at_omega_zeta, self._evaluate_many(at_omega_zeta, omega_zeta), strict=True)
            )
        self.transcript.absorb_scalars(evals_zeta[name] for name in layout.opened_at_zeta)
        self.transcript.absorb_scalars(
            evals_omega_zeta[name] for name in layout.opened_at_omega_zeta
        )
        return evals_zeta, evals_omega_zeta

    def _round_5(self, zeta: int, v: int) -> tuple[G1Affine, G1Affine]:
        """W_zeta = (P(X) - P(zeta)) / (X - zeta) for P = t_0 + zeta^N t_1 +
        sum_i v^(i+1) c_i over the columns opened at zeta, and W_omega_zeta likewise for
        sum_i v^i c_i over the columns opened at omega * zeta (PROTOCOL §6 step 6)."""
        layout = self.layout
        zeta_n = pow(zeta, layout.size, R)
        at_zeta: Weighted = [
            (self.coeffs[name], pow(zeta_n, c, R)) for c, name in enumerate(QUOTIENT_COLUMNS)
        ]
        weight = 1
        for name in layout.opened_at_zeta:
            weight = weight * v % R
            at_zeta.append((self.coeffs[name], weight))
        at_omega_zeta: Weighted = []
        weight = 1
        for name in layout.opened_at_omega_zeta:
            at_omega_zeta.append((self.coeffs[name], weight))
            weight = weight * v % R
        omega_zeta = self.pk.domain.omega * zeta % R
        w_zeta, w_omega_zeta = self._openings([(at_zeta, zeta), (at_omega_zeta, omega_zeta)])
        self.transcript.absorb_g1(w_zeta)
        self.transcript.absorb_g1(w_omega_zeta)
        return w_zeta, w_omega_zeta

    # -- the arithmetic, per prover -----------------------------------------------------

    @abstractmethod
    def _commit_columns(self, names: Sequence[str]) -> None:
        """Blind, commit to and absorb the named columns; keep their blinded coefficients."""

    @abstractmethod
    def _round_2(self, beta: int, gamma: int, delta: int) -> None:
        """The logUp helpers and the running sum phi (PROTOCOL §6 step 3)."""

    @abstractmethod
    def _round_3(self, beta: int, gamma: int, delta: int, alpha: int) -> None:
        """The quotient's chunks t_0, t_1: coefficients, commitments, absorbed."""

    @abstractmethod
    def _evaluate_many(self, names: Sequence[str], point: int) -> list[int]:
        """The blinded polynomials ``names`` at ``point``, in order."""

    @abstractmethod
    def _openings(self, claims: Sequence[tuple[Weighted, int]]) -> list[G1Affine]:
        """For each (weighted polynomials, z): [(P(X) - P(z)) / (X - z)]_1 with P their
        weighted sum."""


__all__ = ["Rounds", "Weighted"]
