"""The proving key: everything about one domain size that does not depend on the batch.

Built once per (SRS, log_size) and reused for every proof: the monomial and Lagrange G1
bases prepared for MSMs, the fixed table column T (values and coefficients), and the
verification key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from circuits.usage_batch import Layout
from prover.msm import msm, prepare_bases
from prover.ntt import intt
from prover.srs import SRS, ProgressCallback, lagrange_basis
from verifier.domain import Domain
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
