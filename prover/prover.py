"""The usage-batch prover: PROTOCOL §6, one method per round.

    round 1  witness columns, blinded, committed in the Lagrange basis  -> beta, gamma, delta
    round 2  logUp helpers h_range_j, h_table, h_agg and running sum phi -> alpha
    round 3  quotient t = sum_i alpha^i gate_i / Z_H on 2 cosets of H, split in 2 -> zeta
    round 4  evaluations at zeta and omega * zeta                       -> v
    round 5  the two batched KZG opening proofs                         -> u

Blinding (PLONK, Gabizon–Williamson–Ciobotaru 2019, §8): a column c opened at k points is
committed as c(X) + (r_0 + r_1 X + ... + r_k X^k) Z_H(X), which leaves its values on H
unchanged; the quotient chunks carry +-rho terms that cancel in t_0 + X^N t_1.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import gmpy2

from circuits.constants import R
from circuits.public_inputs import BatchHeader, PublicInputs
from circuits.usage_batch import QUOTIENT_CHUNKS
from prover import native
from prover.kzg import (
    add_points,
    blinded_coefficients,
    blinding_commitment,
    commit_monomial_many,
    opening_quotient,
)
from prover.msm import best_window, estimated_cost_us, fork_map, msm
from prover.ntt import evaluate, intt
from prover.proving_key import ProvingKey
from prover.quotient import coset_shifts, quotient_on_coset, split_quotient, unfold
from prover.rounds import Rounds, Weighted
from prover.timings import ProofTimings
from prover.witness import (
    BatchError,
    UsageArrays,
    UsageRow,
    Witness,
    build_witness,
    build_witness_from_arrays,
)
from verifier.curve import G1Affine
from verifier.fr import batch_inverse
from verifier.proof import QUOTIENT_COLUMNS, Proof
from verifier.transcript import Transcript
from verifier.usage_verifier import public_sum

Progress = Callable[[str], None]
Randomness = Callable[[], int]


class ProverError(RuntimeError):
    """The prover's own consistency check failed (a bug, or a witness that breaks a gate)."""


def secure_randomness() -> int:
    """A uniform element of Fr from the operating system's CSPRNG."""
    return secrets.randbelow(R)


@dataclass
class ProvingResult:
    public: PublicInputs
    proof: Proof
    blinding: dict[str, list[int]]  # the random coefficients of each column's Z_H multiple
    timings: ProofTimings


def prove_batch(
    pk: ProvingKey,
    header: BatchHeader,
    rows: Sequence[UsageRow] | UsageArrays,
    *,
    processes: int = 2,
    randomness: Randomness = secure_randomness,
    progress: Progress | None = None,
) -> ProvingResult:
    """Prove that ``rows`` add up to their per-channel aggregates (PROTOCOL §2).

    Rows are validated and sorted first (BatchError names any row that cannot be proven);
    both ``UsageArrays`` (receipts as NumPy columns) and ``UsageRow`` objects are laid out as
    columns, without a Python loop over the receipts (``witness_from_rows``).
    """
    timings = ProofTimings()
    start = time.perf_counter()
    with timings.measure("witness"):
        if isinstance(rows, UsageArrays):
            witness = build_witness_from_arrays(rows, pk.layout.k)
        else:
            witness = witness_from_rows(rows, pk.layout.k)
    public = PublicInputs(header, pk.layout.k, witness.aggregates)
    return prove_witness(
        pk,
        public,
        witness,
        processes=processes,
        randomness=randomness,
        progress=progress,
        timings=timings,
        started=start,
    )


def witness_from_rows(rows: Sequence[UsageRow], k: int | None = None) -> Witness:
    """The witness of ``rows`` by way of their columns (``UsageArrays.from_rows``, then the
    NumPy layout of ``build_witness_from_arrays``): the witness ``build_witness`` makes row by
    row (tested), in 0.12 s instead of 0.23-0.26 s at 2^16. A batch the columns refuse is
    checked again row by row, so that the error names the row as ``build_witness``'s does."""
    try:
        return build_witness_from_arrays(UsageArrays.from_rows(rows), k)
    except BatchError:
        build_witness(rows, k)  # raises the error that names the row
        raise


def prove_witness(
    pk: ProvingKey,
    public: PublicInputs,
    witness: Witness,
    *,
    processes: int = 2,
    randomness: Randomness = secure_randomness,
    progress: Progress | None = None,
    timings: ProofTimings | None = None,
    started: float | None = None,
    self_check: bool = True,
) -> ProvingResult:
    """Run the five rounds on a built witness for the given public inputs.

    With ``self_check`` (the default) the prover refuses to output a proof when the running
    sum does not close or the quotient is not a polynomial. Tests turn it off to play a
    cheating prover that publishes whatever the rounds produce.
    """
    timings = timings or ProofTimings()
    start = time.perf_counter() if started is None else started
    rounds: Rounds
    if native.use_native():
        # Columns stay in the native core; no worker processes (arkworks runs on rayon).
        from prover.native_prover import NativeRounds

        rounds = NativeRounds(
            pk,
            public,
            witness,
            randomness,
            progress or (lambda _message: None),
            timings,
            self_check,
            ProverError,
        )
        memory: AbstractContextManager[None] = native.freed_memory_reused()
    else:
        rounds = PythonRounds(
            pk, public, witness, processes, randomness, progress, timings, self_check
        )
        memory = nullcontext()
    with memory:
        proof = rounds.run()
    timings.total = time.perf_counter() - start
    timings.seconds["other"] = timings.total - sum(
        v for k, v in timings.seconds.items() if k != "other"
    )
    return ProvingResult(public, proof, rounds.blinding, timings)


class PythonRounds(Rounds):
    """The rounds in pure Python (gmpy2 arithmetic, MSMs and NTTs in forked workers): the
    reference the native rounds are held to."""

    def __init__(
        self,
        pk: ProvingKey,
        public: PublicInputs,
        witness: Witness,
        processes: int,
        randomness: Randomness,
        progress: Progress | None,
        timings: ProofTimings,
        self_check: bool = True,
    ) -> None:
        self.self_check = self_check
        self.pk = pk
        self.layout = pk.layout
        self.public = public
        self.witness = witness
        self.processes = processes
        self.randomness = randomness
        self.report = progress or (lambda _message: None)
        self.timings = timings
        self.transcript = Transcript()
        self.values: dict[str, list[int]] = dict(witness.columns)  # evaluations on H
        self.coeffs: dict[str, list[Any]] = {"T": pk.table_coeffs}  # blinded coefficients
        self.commitments: dict[str, G1Affine] = {}
        self.blinding: dict[str, list[int]] = {}
        self.A_over_N = 0  # A / N, set in round 2

    # -- commitments -------------------------------------------------------------------

    def _commit_columns(self, names: Sequence[str]) -> None:
        """Blind each column, commit to it, absorb the commitments in order.

        [c + b Z_H]_1 = sum_i c_i [L_i(tau)]_1 + sum_j r_j ([tau^(N+j)]_1 - [tau^j]_1): the
        column's (often small) values go through the Lagrange-basis MSM, whose window
        follows their bit length; the few random r_j through a separate small MSM. The
        MSM and the inverse NTT of each column run together in forked workers, columns
        dealt costliest first (longest-processing-time), results sent back as bytes.
        """
        n = self.layout.size
        k = self.layout.k
        blinding = {
            name: [self.randomness() for _ in range(self.layout.blinding_coeffs(name))]
            for name in names
        }
        lagrange, values = self.pk.lagrange_points, self.values

        def work(share: list[str]) -> list[tuple[G1Affine, bytes, dict[str, float]]]:
            out = []
            for name in share:
                spent = ProofTimings()
                with spent.measure("msm"):
                    commitment = msm(lagrange, values[name])
                with spent.measure("ntt"):
                    coeffs = _to_bytes(intt(values[name], k))
                out.append((commitment, coeffs, spent.seconds))
            return out

        shares = _deal(list(names), [self._column_cost(c) for c in names], self.processes)
        started = time.perf_counter()
        outcome = fork_map(work, shares)
        self.timings.add_parallel(
            time.perf_counter() - started, [spent for part in outcome for *_, spent in part]
        )
        for share, results in zip(shares, outcome, strict=True):
            for name, (commitment, coeff_bytes, _spent) in zip(share, results, strict=True):
                r = blinding[name]
                self.coeffs[name] = blinded_coefficients(_from_bytes(coeff_bytes), n, r)
                with self.timings.measure("msm"):
                    blind_part = blinding_commitment(self.pk.srs.g1_powers, n, r)
                self.commitments[name] = add_points(commitment, blind_part)
        self.blinding.update(blinding)
        for name in names:
            self.transcript.absorb_g1(self.commitments[name])

    def _column_cost(self, name: str) -> float:
        """Estimated microseconds of a column's MSM plus its inverse NTT."""
        n = self.layout.size
        bits = max(self.values[name]).bit_length()
        msm_cost = estimated_cost_us(n, bits, best_window(n, bits)) if bits > 1 else n * 0.5
        return msm_cost + NTT_COST_US_PER_BUTTERFLY * n * self.layout.k

    def _commit_monomial(self, polys: Sequence[Sequence[Any]]) -> list[G1Affine]:
        with self.timings.measure("msm"):
            return commit_monomial_many(polys, self.pk.monomial_points, self.processes)

    # -- round 2 -----------------------------------------------------------------------

    def _round_2(self, beta: int, gamma: int, delta: int) -> None:
        """h_range_j = 1/(beta - limb_j), h_table = m/(beta-T), h_agg, and phi.

        Inverses of beta - t are computed once per table value t < 2^b (one batch
        inversion); inverses of gamma - key once per channel.
        """
        layout, values = self.layout, self.values
        n = layout.size
        limbs = [values[name] for name in layout.limb_columns]
        # 1/(beta - t) once per distinct value: the table's, and any limb outside it (only a
        # cheating witness has those; it gets its inverses too and fails the lookup later).
        distinct = sorted(set(range(1 << layout.limb_bits)).union(*map(set, limbs)))
        inv_beta = dict(
            zip(distinct, batch_inverse([(beta - t) % R for t in distinct]), strict=True)
        )
        contribution = [0] * n
        for helper, limb in zip(layout.range_helper_columns, limbs, strict=True):
            column = [inv_beta[x] for x in limb]
            values[helper] = column
            for i in range(n):
                contribution[i] += column[i]
        h_table = [
            m * inv_beta[t] % R for m, t in zip(values["m"], self.pk.table_values, strict=True)
        ]
        values["h_table"] = h_table

        delta2 = delta * delta % R
        delta3 = delta2 * delta % R
        keys = values["key"]
        distinct = sorted(set(keys))
        inv_gamma = dict(
            zip(distinct, batch_inverse([(gamma - key) % R for key in distinct]), strict=True)
        )
        tokens = [0] * n
        for j, limb in enumerate(limbs):
            shift = layout.limb_bits * j
            for i in range(n):
                tokens[i] += limb[i] << shift
        q, s, nonce = values["q"], values["s"], values["nonce"]
        h_agg = [
            (q[i] * (1 + delta * tokens[i]) + s[i] * (delta2 * nonce[i] + delta3))
            * inv_gamma[keys[i]]
            % R
            for i in range(n)
        ]
        values["h_agg"] = h_agg

        A_over_N = public_sum(self.public, gamma, delta) * pow(n, -1, R) % R
        self.A_over_N = A_over_N  # the running sum's per-row offset, used again in round 3
        phi = [0] * n
        acc = 0
        for i in range(n - 1):
            acc = (acc + contribution[i] - h_table[i] + h_agg[i] - A_over_N) % R
            phi[i + 1] = acc
        closing = (acc + contribution[n - 1] - h_table[n - 1] + h_agg[n - 1] - A_over_N) % R
        if closing != 0 and self.self_check:
            raise ProverError("the running sum does not close: the witness breaks the lookups")
        values["phi"] = phi

    # -- round 3 -----------------------------------------------------------------------

    def _round_3(self, beta: int, gamma: int, delta: int, alpha: int) -> None:
        """t = (sum_i alpha^i gate_i) / Z_H from its values on 2 cosets of H (prover.quotient,
        PROTOCOL §6 step 4). The cosets are independent work, spread over forked workers."""
        layout = self.layout
        n = layout.size
        scalars = {
            "beta": beta,
            "gamma": gamma,
            "delta": delta,
            "alpha": alpha,
            "A_over_N": self.A_over_N,
        }
        shifts = coset_shifts(layout.k, QUOTIENT_CHUNKS)
        coeffs = self.coeffs

        def work(cosets: list[int]) -> list[tuple[bytes, dict[str, float]]]:
            out = []
            for c in cosets:
                spent = ProofTimings()
                folded = quotient_on_coset(layout, coeffs, scalars, shifts[c], spent)
                out.append((_to_bytes(folded), spent.seconds))
            return out

        cosets = list(range(QUOTIENT_CHUNKS))
        shares = _deal(cosets, [1.0] * len(cosets), self.processes)
        started = time.perf_counter()
        outcome = fork_map(work, shares)
        self.timings.add_parallel(
            time.perf_counter() - started, [spent for part in outcome for _, spent in part]
        )
        folded: dict[int, list[Any]] = {}
        for share, results in zip(shares, outcome, strict=True):
            for c, (raw, _spent) in zip(share, results, strict=True):
                folded[c] = _from_bytes(raw)
        t = unfold([folded[c] for c in cosets], [pow(shifts[c], n, R) for c in cosets], n)
        bound = layout.quotient_degree_bound()
        if any(t[bound + 1 :]) and self.self_check:
            raise ProverError("the quotient is not a polynomial: the witness breaks a gate")
        rho = [self.randomness() for _ in range(QUOTIENT_CHUNKS - 1)]
        self.blinding["t"] = rho
        chunks = split_quotient(t, n, bound, rho)
        for name, chunk, commitment in zip(
            QUOTIENT_COLUMNS, chunks, self._commit_monomial(chunks), strict=True
        ):
            self.coeffs[name] = chunk
            self.commitments[name] = commitment
            self.transcript.absorb_g1(commitment)

    # -- rounds 4 and 5 ----------------------------------------------------------------

    def _evaluate_many(self, names: Sequence[str], point: int) -> list[int]:
        return [int(evaluate(self.coeffs[name], point)) for name in names]

    def _openings(self, claims: Sequence[tuple[Weighted, int]]) -> list[G1Affine]:
        """Each opening quotient by synthetic division, then their commitments in one go
        (``_commit_monomial``: the MSMs share the worker processes)."""
        return self._commit_monomial([opening_quotient(polys, z) for polys, z in claims])


# Measured cost of one radix-2 butterfly of our NTT, for load balancing only.
NTT_COST_US_PER_BUTTERFLY = 0.35


def _deal(items: list[Any], costs: list[float], parts: int) -> list[list[Any]]:
    """Longest-processing-time-first: each item, costliest first, to the lightest share."""
    parts = max(1, min(parts, len(items)))
    shares: list[list[Any]] = [[] for _ in range(parts)]
    loads = [0.0] * parts
    for index in sorted(range(len(items)), key=lambda i: -costs[i]):
        lightest = loads.index(min(loads))
        shares[lightest].append(items[index])
        loads[lightest] += costs[index]
    return [share for share in shares if share]


def _to_bytes(values: Sequence[Any]) -> bytes:
    """Field elements as 32-byte big-endian words (much cheaper to pipe than pickled mpz)."""
    return b"".join(int(v).to_bytes(32, "big") for v in values)


def _from_bytes(raw: bytes) -> list[Any]:
    mpz = gmpy2.mpz
    return [mpz(int.from_bytes(raw[i : i + 32], "big")) for i in range(0, len(raw), 32)]
