"""The five rounds of PROTOCOL §6 with every column kept in the native core.

The same rounds as ``prover.prover.PythonRounds`` (the pure-Python reference, which stays the
oracle: with the same randomness both produce byte-identical proofs), with the columns held
as ``zkmeter_native.FrVec`` handles from the witness to the openings. Python draws the
randomness, keeps the transcript and decides what happens in which order; the native core
does the arithmetic on whole columns:

    round 1  columns -> FrVec; each limb's bucket sums B_t = sum_(limb_i = t) [L_i] (kept
             for round 2), [limb_j] = sum_t t B_t; the other columns by runs / small-scalar
             MSMs over the Lagrange basis; plus the blinding's few monomial terms; inverse
             FFT and blinding in one buffer
    round 2  logUp helpers and running sum (``native.logup_round2``); [h_range_j] =
             sum_t 1/(beta - t) B_t from the limb's buckets; [h_agg] by runs of keys and
             [phi] over the suffix sums of the basis by buckets of limb values
             (``native.round2_commitments``); [h_table] by an MSM of its <= 256 nonzero rows
    round 3  on one coset: columns on the coset, the gate program generated from the
             expression tree (``Layout.vector_program``), division by Z_H, inverse NTT;
             t's five coefficients above N from the top of the gates
             (``prover.quotient.top_coefficients``); the split
             (``native.quotient_one_coset``); checked at zeta after round 4
    round 4  evaluations at zeta and omega * zeta (the powers of each point once, then a
             dot product per column)
    round 5  the two batched openings: combination, division by X - z and one MSM each

No worker processes: arkworks runs on the native core's own thread pool (rayon).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from circuits.constants import R
from circuits.public_inputs import PublicInputs
from circuits.usage_batch import QUOTIENT_CHUNKS
from prover import native
from prover.kzg import add_points, blinding_commitment
from prover.proving_key import ProvingKey
from prover.quotient import coset_shifts, top_coefficients, top_window
from prover.rounds import Rounds, Weighted
from prover.timings import ProofTimings
from prover.witness import Witness
from verifier.curve import G1Affine
from verifier.domain import Domain
from verifier.fr import batch_inverse
from verifier.proof import QUOTIENT_COLUMNS
from verifier.transcript import Transcript
from verifier.usage_verifier import public_sum

# Where an input register of the gate program is loaded from (``native/src/rounds.rs``).
SOURCE_COLUMN = 0  # a column at the point
SOURCE_NEXT = 1  # a column at the next point (rotation by omega)
SOURCE_L0 = 2  # L_0(x), computed natively
SOURCE_X_MINUS_LAST = 3  # x - omega^(N-1), computed natively
SOURCE_SCALAR = 4  # a challenge, a public value or a constant

DERIVED_SOURCES = {"L0": SOURCE_L0, "X_minus_last": SOURCE_X_MINUS_LAST}


class NativeRounds(Rounds):
    """One proof's state: columns as ``FrVec`` handles, commitments, transcript."""

    def __init__(
        self,
        pk: ProvingKey,
        public: PublicInputs,
        witness: Witness,
        randomness: Any,
        progress: Any,
        timings: ProofTimings,
        self_check: bool,
        error: type[Exception],
    ) -> None:
        self.pk = pk
        self.layout = pk.layout
        self.public = public
        self.randomness = randomness
        self.report = progress
        self.timings = timings
        self.self_check = self_check
        self.error = error
        self.transcript = Transcript()
        self.lagrange = native.bases_for(pk.lagrange_points)
        self.monomial = native.bases_for(pk.monomial_points)
        with timings.measure("witness"):
            self.values: dict[str, Any] = {
                name: native.column(witness.columns[name]) for name in self.layout.round1_columns
            }
        self.coeffs: dict[str, Any] = {"T": _table_coefficients(pk)}
        self.commitments: dict[str, G1Affine] = {}
        self.unblinded: dict[str, G1Affine] = {}  # commitments computed with their column
        self.buckets: dict[str, Any] = {}  # limb name -> its bucket sums (G1Bases)
        self.blinding: dict[str, list[int]] = {}
        self.A_over_N = 0
        self.structure = ""  # how [h_agg] and [phi] were computed (runs or values)
        self.scalars: dict[str, int] = {}  # challenges and A/N, for the check at zeta

    def _commit_columns(self, names: Sequence[str]) -> None:
        """[c + r Z_H]_1 = sum_i c_i [L_i(tau)]_1 + sum_j r_j ([tau^(N+j)]_1 - [tau^j]_1)
        (PROTOCOL §6 step 3), and the blinded coefficients for round 3."""
        n, k = self.layout.size, self.layout.k
        blinding = {
            name: [self.randomness() for _ in range(self.layout.blinding_coeffs(name))]
            for name in names
        }
        self._limb_commitments([name for name in names if name in self.layout.limb_columns])
        for name in names:
            r = blinding[name]
            with self.timings.measure("msm"):
                commitment = self.unblinded.get(name) or native.msm_column(
                    self.lagrange, self.values[name]
                )
                blind_part = blinding_commitment(self.pk.srs.g1_powers, n, r)
            with self.timings.measure("ntt"):
                self.coeffs[name] = native.interpolate_blinded(self.values[name], k, r)
            self.commitments[name] = add_points(commitment, blind_part)
        self.blinding.update(blinding)
        for name in names:
            self.transcript.absorb_g1(self.commitments[name])

    def _limb_commitments(self, limbs: Sequence[str]) -> None:
        """[limb_j] = sum_t t B_t from the limb's bucket sums B_t (PROTOCOL §6 step 3), which
        round 2 reuses for [h_range_j]; a limb outside 0 .. 2^b - 1 (a cheating witness) has
        no buckets and is committed from its values."""
        span = 1 << self.layout.limb_bits
        with self.timings.measure("msm"):
            for name in limbs:
                buckets = native.limb_buckets(self.lagrange, self.values[name], span)
                if buckets is not None:
                    self.buckets[name] = buckets
                    self.unblinded[name] = native.msm_full(buckets, _table_scalars(span))

    def _round_2(self, beta: int, gamma: int, delta: int) -> None:
        """The logUp helpers and the running sum (PROTOCOL §3), natively."""
        layout, values = self.layout, self.values
        n = layout.size
        with self.timings.measure("witness"):
            A_over_N = public_sum(self.public, gamma, delta) * pow(n, -1, R) % R
            self.A_over_N = A_over_N
            h_range, h_table, h_agg, phi, closing = native.logup_round2(
                [values[name] for name in layout.limb_columns],
                values["m"],
                _table_values(self.pk),
                values["key"],
                values["nonce"],
                values["q"],
                values["s"],
                layout.limb_bits,
                (beta, gamma, delta),
                A_over_N,
            )
        if closing != 0 and self.self_check:
            raise self.error("the running sum does not close: the witness breaks the lookups")
        for name, column in zip(layout.range_helper_columns, h_range, strict=True):
            values[name] = column
        values["h_table"], values["h_agg"], values["phi"] = h_table, h_agg, phi
        with self.timings.measure("msm"):
            agg, running, self.structure = native.round2_commitments(
                self.lagrange,
                _suffix(self.pk, self.lagrange),
                values,
                layout.limb_columns,
                layout.limb_bits,
                values,
                (beta, gamma, delta),
                A_over_N,
            )
        self.unblinded["h_agg"], self.unblinded["phi"] = agg, running
        # [h_range_j] = sum_t 1/(beta - t) B_t over the limb's buckets: an MSM of 2^b points.
        span = 1 << layout.limb_bits
        inverses = None
        with self.timings.measure("msm"):
            for helper, limb in zip(layout.range_helper_columns, layout.limb_columns, strict=True):
                buckets = self.buckets.get(limb)
                if buckets is None:
                    continue  # committed from its values in _commit_columns
                if inverses is None:
                    inverses = native.column(batch_inverse([(beta - t) % R for t in range(span)]))
                self.unblinded[helper] = native.msm_full(buckets, inverses)

    def _round_3(self, beta: int, gamma: int, delta: int, alpha: int) -> None:
        """t = G / Z_H (PROTOCOL §6 step 4) from ONE coset, natively: deg t <= N + 4, so on the
        coset s_0 H the folded quotient is F[j] = t_j + s_0^N t_(N+j), and t's five
        coefficients above N are the top coefficients of G = t (X^N - 1), G_(2N+k) = t_(N+k),
        which depend only on the columns' coefficients N - 2 .. N + 2
        (``prover.quotient.top_coefficients``). Half the coset work of the two cosets the
        pure-Python reference takes, and the same t for every witness that satisfies the
        gates; whether it does is checked after round 4, as the verifier checks it:
        G(zeta) = t(zeta) Z_H(zeta)."""
        layout = self.layout
        n, k = layout.size, layout.k
        program = layout.vector_program()
        scalars = {
            "beta": beta,
            "gamma": gamma,
            "delta": delta,
            "alpha": alpha,
            "A_over_N": self.A_over_N,
        }
        self.scalars = scalars
        names, sources, scalar_values = program_sources(
            program.parameters, program.constants, scalars
        )
        shift = coset_shifts(k, 1)[0]
        coeffs = [self.coeffs[name] for name in names]
        with self.timings.measure("gates"):
            folded = native.quotient_on_coset(
                coeffs,
                sources,
                scalar_values,
                program.code,
                program.registers,
                program.output,
                k,
                shift,
            )
            lo, hi = top_window(layout)
            windows = {name: _window(self.coeffs[name], lo, hi) for name in names}
            top = top_coefficients(layout, windows, scalars)
        rho = [self.randomness() for _ in range(QUOTIENT_CHUNKS - 1)]
        self.blinding["t"] = rho
        with self.timings.measure("ntt"):
            chunks = native.quotient_one_coset(folded, pow(shift, n, R), top, rho[0])
        for name, chunk in zip(QUOTIENT_COLUMNS, chunks, strict=True):
            with self.timings.measure("msm"):
                commitment = native.msm_full(self.monomial, chunk)
            self.coeffs[name] = chunk
            self.commitments[name] = commitment
            self.transcript.absorb_g1(commitment)

    def _round_4(self, zeta: int) -> tuple[dict[str, int], dict[str, int]]:
        """The evaluations (``Rounds._round_4``), then the self-check of round 3: the gates at
        zeta equal t(zeta) Z_H(zeta), exactly the verifier's identity (a witness that breaks a
        gate fails it except with probability ~2N/R)."""
        evals_zeta, evals_omega_zeta = super()._round_4(zeta)
        if self.self_check:
            domain = Domain(self.layout.k)
            zeta_n = pow(zeta, self.layout.size, R)
            t_at_zeta = sum(
                value * pow(zeta_n, c, R)
                for c, value in enumerate(self._evaluate_many(QUOTIENT_COLUMNS, zeta))
            )
            values: dict[str, int] = dict(evals_zeta)
            values.update({f"{name}_next": v for name, v in evals_omega_zeta.items()})
            values.update(self.scalars, L0=domain.lagrange_first_at(zeta))
            gates = self.layout.compiled().evaluate(values)
            if gates != t_at_zeta * domain.vanishing_at(zeta) % R:
                raise self.error("the quotient is not a polynomial: the witness breaks a gate")
        return evals_zeta, evals_omega_zeta

    def _evaluate_many(self, names: Sequence[str], point: int) -> list[int]:
        """All of them in one native call: the powers of ``point`` once, a dot product each."""
        return native.evaluate_columns([self.coeffs[name] for name in names], point)

    def _openings(self, claims: Sequence[tuple[Weighted, int]]) -> list[G1Affine]:
        """Each claim's weighted sum, divided by X - z, and its one MSM, natively."""
        with self.timings.measure("msm"):
            return [
                native.open_combination(
                    self.monomial, [poly for poly, _ in polys], [w for _, w in polys], z
                )
                for polys, z in claims
            ]


def program_sources(
    parameters: Sequence[str], constants: Sequence[int], scalars: dict[str, int]
) -> tuple[list[str], list[tuple[int, int]], list[int]]:
    """Where the gate program's inputs are loaded from (``native/src/rounds.rs``): the
    columns it reads (each once, in first-use order), a (source, index) pair per parameter
    and then per constant, and the scalar values (challenges, public values, constants)."""
    names: list[str] = []
    sources: list[tuple[int, int]] = []
    values: list[int] = []
    for parameter in parameters:
        if parameter in scalars:
            sources.append((SOURCE_SCALAR, len(values)))
            values.append(scalars[parameter])
        elif parameter in DERIVED_SOURCES:
            sources.append((DERIVED_SOURCES[parameter], 0))
        else:
            base = parameter.removesuffix("_next")
            if base not in names:
                names.append(base)
            kind = SOURCE_NEXT if parameter.endswith("_next") else SOURCE_COLUMN
            sources.append((kind, names.index(base)))
    for constant in constants:
        sources.append((SOURCE_SCALAR, len(values)))
        values.append(constant)
    return names, sources, values


_TABLE_ATTRIBUTE = "_native_table"


def _window(coeffs: Any, lo: int, hi: int) -> list[int]:
    """Coefficients lo .. hi of a native polynomial (0 beyond its length)."""
    return [
        native.scalar_from_word(coeffs.word(i)) if i < len(coeffs) else 0 for i in range(lo, hi + 1)
    ]


def _table_scalars(span: int) -> Any:
    """0, 1, ..., span - 1 as a native column (the scalars of [limb] over its buckets)."""
    return native.column(list(range(span)))


def _table_values(pk: ProvingKey) -> Any:
    """T on H as a native column, made once per proving key."""
    return _cached(pk, "values", lambda: native.column(pk.table_values))


def _table_coefficients(pk: ProvingKey) -> Any:
    """T's coefficients as a native column (its values interpolated natively, no blinding:
    T is fixed), made once per proving key."""
    return _cached(
        pk, "coeffs", lambda: native.interpolate_blinded(_table_values(pk), pk.layout.k, [])
    )


def _suffix(pk: ProvingKey, lagrange: Any) -> Any:
    """The suffix sums of the Lagrange basis (``[phi]``'s bases), made once per key."""
    return _cached(pk, "suffix", lambda: native.suffix_bases(lagrange))


def _cached(pk: ProvingKey, what: str, make: Any) -> Any:
    cache: dict[str, Any] = pk.__dict__.setdefault(_TABLE_ATTRIBUTE, {})
    if what not in cache:
        cache[what] = make()
    return cache[what]


__all__ = ["NativeRounds", "program_sources"]
