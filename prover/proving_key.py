"""The proving key: everything about one domain size that does not depend on the batch.

Built once per (SRS, log_size) and reused for every proof: the monomial and Lagrange G1
bases prepared for MSMs, the fixed table column T in every form the prover needs, the
fixed polynomials L_0(X) and X - omega^(N-1) on the quotient coset, the inverses of
Z_H(X) = X^N - 1 on that coset, and the verification key.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from circuits.constants import COSET_SHIFT, R
from circuits.usage_batch import EXTENSION_FACTOR_LOG, Layout
from prover.msm import msm, prepare_bases
from prover.ntt import coset_ntt, intt, vanishing_on_coset_inverses
from prover.srs import SRS, ProgressCallback, lagrange_basis
from verifier.domain import Domain
from verifier.fr import batch_inverse
from verifier.keys import VerificationKey

# Highest degree the prover commits to: blinded columns reach N - 1 + 3 = N + 2.
SRS_HEADROOM = 3


class ProvingKeyError(ValueError):
    """The SRS cannot serve the requested domain size."""


@dataclass
class ProvingKey:
    layout: Layout
    srs: SRS
    lagrange_points: Any  # prepared bases [L_i(tau)]_1, i < N
    monomial_points: Any  # prepared bases [tau^i]_1, i < N + SRS_HEADROOM
    table_values: list[int]
    table_coeffs: list[int]
    vk: VerificationKey

    @classmethod
    def build(cls, srs: SRS, log_size: int, progress: ProgressCallback | None = None) -> ProvingKey:
        layout = Layout(log_size)
        needed = layout.size + SRS_HEADROOM
        if srs.n_powers < needed:
            raise ProvingKeyError(
                f"the SRS has {srs.n_powers} G1 powers; a 2^{log_size}-row domain needs "
                f"{needed} (make one with `zkmeter srs new --log-size {log_size}`)"
            )
        lagrange = prepare_bases(lagrange_basis(srs, log_size, progress=progress))
        monomial = prepare_bases(srs.g1_powers[:needed])
        table_values = layout.table_values()
        table_coeffs = [int(c) for c in intt(table_values, log_size)]
        table_commitment = msm(lagrange, table_values)
        vk = VerificationKey(log_size, table_commitment, srs.g2_tau)
        return cls(layout, srs, lagrange, monomial, table_values, table_coeffs, vk)

    @property
    def domain(self) -> Domain:
        return Domain(self.layout.log_size)

    @property
    def extended_log_size(self) -> int:
        return self.layout.log_size + EXTENSION_FACTOR_LOG

    @cached_property
    def table_on_coset(self) -> list[Any]:
        return coset_ntt(self.table_coeffs, self.extended_log_size, COSET_SHIFT)

    @cached_property
    def coset_points(self) -> list[int]:
        """x_i = COSET_SHIFT * omega_4N^i, i < 4N."""
        omega = Domain(self.extended_log_size).omega
        points = [0] * (1 << self.extended_log_size)
        x = COSET_SHIFT
        for i in range(len(points)):
            points[i] = x
            x = x * omega % R
        return points

    @cached_property
    def first_lagrange_on_coset(self) -> list[int]:
        """L_0(x) = (x^N - 1) / (N (x - 1)) on the coset."""
        n = self.layout.size
        vanishing = [
            (pow(COSET_SHIFT, n, R) * pow(Domain(self.extended_log_size).omega, n * k, R) - 1) % R
            for k in range(1 << EXTENSION_FACTOR_LOG)
        ]
        denominators = batch_inverse([n * (x - 1) % R for x in self.coset_points])
        period = len(vanishing)
        return [vanishing[i % period] * inv % R for i, inv in enumerate(denominators)]

    @cached_property
    def not_last_on_coset(self) -> list[int]:
        """x - omega^(N-1) on the coset."""
        last = self.domain.omega_inv
        return [(x - last) % R for x in self.coset_points]

    @cached_property
    def vanishing_inverses_on_coset(self) -> list[Any]:
        return vanishing_on_coset_inverses(
            self.layout.log_size, self.extended_log_size, COSET_SHIFT
        )
