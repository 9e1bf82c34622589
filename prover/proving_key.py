"""The proving key: everything about one domain size that does not depend on the batch.

Built once per (SRS, log_size) and reused for every proof: the monomial and Lagrange G1
bases prepared for MSMs, the fixed table column T (values and coefficients), and the
verification key.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from circuits.usage_batch import Layout, UnsupportedDomainError
from prover import native
from prover.kzg import commit_lagrange, commit_monomial
from prover.msm import prepare_bases
from prover.ntt import intt
from prover.srs import SRS, ProgressCallback, lagrange_basis
from verifier.domain import Domain
from verifier.keys import VerificationKey


class ProvingKeyError(ValueError):
    """The SRS cannot serve the requested domain size."""


@dataclass
class ProvingKey:
    layout: Layout
    srs: SRS
    lagrange_points: Any  # [L_i(tau)]_1, i < N: G1Points (native) or prepared Bases
    monomial_points: Any  # [tau^i]_1, i < Layout.srs_powers, likewise
    table_values: list[int]
    vk: VerificationKey

    @classmethod
    def build(cls, srs: SRS, k: int, progress: ProgressCallback | None = None) -> ProvingKey:
        layout = _checked_layout(srs, k)
        lagrange: Any = lagrange_basis(srs, k, progress=progress)
        monomial: Any = srs.g1_powers[: layout.srs_powers]
        table_values = layout.table_values()
        if native.use_native():
            # The bases stay bytes with a native handle (prover.srs.G1Points); T's values are
            # below 2^16: a small-scalar MSM.
            table_commitment = native.msm_small(native.bases_for(lagrange), table_values)
        else:
            lagrange, monomial = prepare_bases(lagrange), prepare_bases(monomial)
            table_commitment = commit_lagrange(table_values, lagrange)
        vk = VerificationKey(k, table_commitment, srs.g2_tau)
        return cls(layout, srs, lagrange, monomial, table_values, vk)

    @property
    def domain(self) -> Domain:
        return Domain(self.layout.k)

    @cached_property
    def table_coeffs(self) -> list[int]:
        """T's coefficients, the interpolant of ``table_values`` on H, made on first use (the
        pure-Python rounds use them; the native ones interpolate T natively)."""
        return [int(c) for c in intt(self.table_values, self.layout.k)]


def verification_key(srs: SRS, k: int) -> VerificationKey:
    """The verification key of 2^log_size-row batches alone: [T]_1 from the table's
    coefficients and the monomial powers (one MSM of N points), without the Lagrange basis
    and prepared bases a proving key needs; the same key as `ProvingKey.build(...).vk`."""
    layout = _checked_layout(srs, k)
    table_coeffs = [int(c) for c in intt(layout.table_values(), k)]
    return VerificationKey(k, commit_monomial(table_coeffs, srs), srs.g2_tau)


def _checked_layout(srs: SRS, k: int) -> Layout:
    try:
        layout = Layout(k)
    except UnsupportedDomainError as error:
        raise ProvingKeyError(str(error)) from None
    if srs.n_powers < layout.srs_powers:
        raise ProvingKeyError(
            f"the SRS has {srs.n_powers} G1 powers; a 2^{k}-row domain needs "
            f"{layout.srs_powers} (make one with `zkmeter srs new --log-size {k}`)"
        )
    return layout
