"""The usage-batch prover: PROTOCOL §6, one method per round.

    round 1  witness columns, blinded, committed in the Lagrange basis  -> beta, gamma, delta
    round 2  logUp helpers h_range_j, h_table, h_agg and running sum phi -> alpha
    round 3  quotient t = sum_i alpha^i gate_i / Z_H on a coset of 4N, split in 3 -> zeta
    round 4  evaluations at zeta and omega * zeta                       -> v
    round 5  the two batched KZG opening proofs                         -> u

Blinding (PLONK, Gabizon–Williamson–Ciobotaru 2019, §8): a column c opened at k points is
committed as c(X) + (r_0 + r_1 X + ... + r_k X^k) Z_H(X), which leaves its values on H
unchanged; the quotient chunks carry +-rho terms that cancel in t_0 + X^N t_1 + X^2N t_2.
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import gmpy2

from circuits.constants import COSET_SHIFT, R
from circuits.public_inputs import BatchHeader, PublicInputs
from circuits.usage_batch import EXTENSION_FACTOR_LOG, QUOTIENT_CHUNKS
from prover.g1 import affine_add
from prover.msm import best_window, estimated_cost_us, fork_map, msm, msm_many
from prover.ntt import divide_by_linear, evaluate, intt, ntt
from prover.proving_key import ProvingKey
from prover.witness import UsageRow, Witness, build_witness
from verifier.challenges import absorb_public_inputs
from verifier.curve import G1Affine
from verifier.domain import Domain
from verifier.fr import batch_inverse, powers, root_of_unity
from verifier.proof import QUOTIENT_COLUMNS, Proof
from verifier.transcript import Transcript
from verifier.usage_verifier import aggregate_sum

Progress = Callable[[str], None]
Randomness = Callable[[], int]


class ProverError(RuntimeError):
    """The prover's own consistency check failed (a bug, or a witness that breaks a gate)."""


def secure_randomness() -> int:
    """A uniform element of Fr from the operating system's CSPRNG."""
    return secrets.randbelow(R)


@dataclass
class ProofTimings:
    """Seconds spent per kind of work, for the benchmark breakdown."""

    seconds: dict[str, float] = field(
        default_factory=lambda: {
            "witness": 0.0,
            "msm": 0.0,
            "ntt": 0.0,
            "gates": 0.0,
            "other": 0.0,
        }
    )
    total: float = 0.0

    def add_parallel(self, wall: float, spent: Sequence[dict[str, float]]) -> None:
        """Attribute ``wall`` seconds of a parallel phase to kinds of work in proportion to
        the process-seconds the workers measured, so the breakdown sums to wall time."""
        total = sum(sum(s.values()) for s in spent)
        if total <= 0:
            self.seconds["other"] += wall
            return
        for kinds in spent:
            for kind, seconds in kinds.items():
                self.seconds[kind] += wall * seconds / total

    @contextmanager
    def measure(self, kind: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[kind] += time.perf_counter() - start


@dataclass
class ProvingResult:
    public: PublicInputs
    proof: Proof
    blinding: dict[str, list[int]]  # the random coefficients of each column's Z_H multiple
    timings: ProofTimings


def prove_batch(
    pk: ProvingKey,
    header: BatchHeader,
    rows: Sequence[UsageRow],
    *,
    processes: int = 2,
    randomness: Randomness = secure_randomness,
    progress: Progress | None = None,
) -> ProvingResult:
    """Prove that ``rows`` add up to their per-channel aggregates (PROTOCOL §2).

    Rows are validated and sorted first (BatchError names any row that cannot be proven).
    """
    timings = ProofTimings()
    start = time.perf_counter()
    with timings.measure("witness"):
        witness = build_witness(rows, pk.layout.log_size)
    public = PublicInputs(header, pk.layout.log_size, witness.aggregates)
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
    rounds = _Rounds(pk, public, witness, processes, randomness, progress, timings, self_check)
    proof = rounds.run()
    timings.total = time.perf_counter() - start
    timings.seconds["other"] = timings.total - sum(
        v for k, v in timings.seconds.items() if k != "other"
    )
    return ProvingResult(public, proof, rounds.blinding, timings)


class _Rounds:
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
        self.a_over_n = 0  # set in round 2

    def run(self) -> Proof:
        absorb_public_inputs(self.transcript, self.pk.vk, self.public)
        self.report("round 1/5: committing to the witness columns")
        self._commit_columns(self.layout.round1_columns)
        beta, gamma, delta = self.transcript.challenges(3)
        self.report("round 2/5: logUp helpers and running sum")
        self._round_2(beta, gamma, delta)
        self._commit_columns(self.layout.round2_columns)
        alpha = self.transcript.challenge()
        self.report("round 3/5: quotient on three cosets of H")
        self._round_3(beta, gamma, delta, alpha)
        zeta = self.transcript.challenge()
        self.report("round 4/5: evaluations")
        evals_zeta, evals_omega_zeta = self._round_4(zeta)
        v = self.transcript.challenge()
        self.report("round 5/5: opening proofs")
        w_zeta, w_omega_zeta = self._round_5(zeta, v, evals_zeta, evals_omega_zeta)
        self.transcript.challenge()  # u: completes the transcript as the verifier replays it
        return Proof(
            self.layout.log_size,
            dict(self.commitments),
            evals_zeta,
            evals_omega_zeta,
            w_zeta,
            w_omega_zeta,
        )

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
        log_n = self.layout.log_size
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
                    coeffs = _to_bytes(intt(values[name], log_n))
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
                coeffs = _from_bytes(coeff_bytes) + [0] * len(r)
                for j, r_j in enumerate(r):
                    coeffs[j] = (coeffs[j] - r_j) % R
                    coeffs[n + j] = r_j
                self.coeffs[name] = coeffs
                points = self.pk.srs.g1_powers
                with self.timings.measure("msm"):
                    blind_part = msm(
                        [points[n + j] for j in range(len(r))] + [points[j] for j in range(len(r))],
                        r + [(R - r_j) % R for r_j in r],
                    )
                self.commitments[name] = _add(commitment, blind_part)
        self.blinding.update(blinding)
        for name in names:
            self.transcript.absorb_g1(self.commitments[name])

    def _column_cost(self, name: str) -> float:
        """Estimated microseconds of a column's MSM plus its inverse NTT."""
        n = self.layout.size
        bits = max(self.values[name]).bit_length()
        msm_cost = estimated_cost_us(n, bits, best_window(n, bits)) if bits > 1 else n * 0.5
        return msm_cost + NTT_COST_US_PER_BUTTERFLY * n * self.layout.log_size

    def _commit_monomial(self, polys: Sequence[Sequence[Any]]) -> list[G1Affine]:
        width = len(self.pk.srs.g1_powers[: self.layout.size + 3])
        padded = []
        for poly in polys:
            if len(poly) > width:
                raise ProverError(f"polynomial of degree {len(poly) - 1} exceeds the SRS")
            padded.append([int(c) for c in poly] + [0] * (width - len(poly)))
        with self.timings.measure("msm"):
            return msm_many(self.pk.monomial_points, padded, self.processes)

    # -- round 2 -----------------------------------------------------------------------

    def _round_2(self, beta: int, gamma: int, delta: int) -> None:
        """h_range_j = 1/((beta-a)(beta-b)), h_table = m/(beta-T), h_agg, and phi.

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
        for j, helper in enumerate(layout.range_helper_columns):
            a, b = limbs[2 * j], limbs[2 * j + 1]
            column = [inv_beta[x] * inv_beta[y] % R for x, y in zip(a, b, strict=True)]
            values[helper] = column
            two_beta = 2 * beta
            for i in range(n):
                contribution[i] += column[i] * (two_beta - a[i] - b[i])
        h_table = [
            m * inv_beta[t] % R for m, t in zip(values["m"], self.pk.table_values, strict=True)
        ]
        values["h_table"] = h_table

        delta2 = delta * delta % R
        delta3 = delta2 * delta % R
        keys = values["key"]
        distinct = sorted(set(keys))
        inv_gamma = dict(
            zip(distinct, batch_inverse([(gamma - k) % R for k in distinct]), strict=True)
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

        mean = aggregate_sum(self.public, gamma, delta) * pow(n, -1, R) % R
        self.a_over_n = mean  # A / N: the running sum's per-row offset, used again in round 3
        phi = [0] * n
        acc = 0
        for i in range(n - 1):
            acc = (acc + contribution[i] - h_table[i] + h_agg[i] - mean) % R
            phi[i + 1] = acc
        closing = (acc + contribution[n - 1] - h_table[n - 1] + h_agg[n - 1] - mean) % R
        if closing != 0 and self.self_check:
            raise ProverError("the running sum does not close: the witness breaks the lookups")
        values["phi"] = phi

    # -- round 3 -----------------------------------------------------------------------

    def _round_3(self, beta: int, gamma: int, delta: int, alpha: int) -> None:
        """t = (sum_i alpha^i gate_i) / Z_H from its values on 3 cosets of H.

        deg t <= 2N + 7 < 3N, so t is fixed by its values on the cosets s_k H, k = 0, 1, 2,
        with s_k = COSET_SHIFT * omega_4N^k (so s_k^N = COSET_SHIFT^N * iota^k, iota a
        primitive 4th root of unity; none is 1, so Z_H(s_k omega^i) = s_k^N - 1 != 0).
        Each coset is independent work -- evaluate the columns there (scale, fold, NTT of
        size N), the gates pointwise, divide by the constant s_k^N - 1, inverse NTT -- so the
        cosets are spread over forked workers. A worker returns
        F_k[j] = sum_m t_(j + mN) (s_k^N)^m, and t's coefficients follow from a 3 x 3
        Vandermonde solve per j.
        """
        layout, pk = self.layout, self.pk
        n, log_n = layout.size, layout.log_size
        compiled = layout.compiled()
        scalars = {
            "beta": beta,
            "gamma": gamma,
            "delta": delta,
            "alpha": alpha,
            "A_over_N": self.a_over_n,
        }
        shifts = _subcoset_shifts(log_n, QUOTIENT_CHUNKS)
        coeffs = self.coeffs
        last = pk.domain.omega_inv

        def work(ks: list[int]) -> list[tuple[bytes, dict[str, float]]]:
            out = []
            for k in ks:
                spent = ProofTimings()
                shift = shifts[k]
                with spent.measure("ntt"):
                    longest = max(len(coeffs[name]) for name in layout.witness_columns)
                    shift_powers = [gmpy2.mpz(p) for p in powers(shift, longest)]
                    on_coset = {
                        name: _evaluate_on_coset(coeffs[name], shift_powers, log_n)
                        for name in (*layout.witness_columns, "T")
                    }
                with spent.measure("gates"):
                    shift_n = pow(shift, n, R)
                    points = [shift * w % R for w in Domain(log_n).elements()]
                    on_coset["X_minus_last"] = [(x - last) % R for x in points]
                    first_scale = (shift_n - 1) * pow(n, -1, R) % R
                    on_coset["L0"] = [
                        first_scale * inv % R for inv in batch_inverse([x - 1 for x in points])
                    ]
                    arguments: list[Any] = []
                    for parameter in compiled.parameters:
                        if parameter in scalars:
                            arguments.append(itertools.repeat(scalars[parameter]))
                        elif parameter.endswith("_next"):
                            base = on_coset[parameter.removesuffix("_next")]
                            arguments.append(itertools.chain(base[1:], base[:1]))
                        else:
                            arguments.append(on_coset[parameter])
                    function = compiled.function
                    z_inv = pow(shift_n - 1, -1, R)
                    quotient = [
                        function(*args) * z_inv % R for args in zip(*arguments, strict=False)
                    ]
                with spent.measure("ntt"):
                    folded = intt(quotient, log_n)
                    shift_inv = pow(shift, -1, R)
                    scale = 1
                    for j in range(n):
                        folded[j] = folded[j] * scale % R
                        scale = scale * shift_inv % R
                out.append((_to_bytes(folded), spent.seconds))
            return out

        ks = list(range(QUOTIENT_CHUNKS))
        shares = _deal(ks, [1.0] * len(ks), self.processes)
        started = time.perf_counter()
        outcome = fork_map(work, shares)
        self.timings.add_parallel(
            time.perf_counter() - started, [spent for part in outcome for _, spent in part]
        )
        folded_by_k: dict[int, list[Any]] = {}
        for share, results in zip(shares, outcome, strict=True):
            for k, (raw, _spent) in zip(share, results, strict=True):
                folded_by_k[k] = _from_bytes(raw)
        t = _unfold([folded_by_k[k] for k in ks], [pow(shifts[k], n, R) for k in ks], n)
        bound = layout.quotient_degree_bound()
        if any(t[bound + 1 :]) and self.self_check:
            raise ProverError("the quotient is not a polynomial: the witness breaks a gate")
        rho = [self.randomness() for _ in range(QUOTIENT_CHUNKS - 1)]
        t0 = [*t[:n], rho[0]]
        t1 = [(t[n] - rho[0]) % R, *t[n + 1 : 2 * n], rho[1]]
        t2 = [(t[2 * n] - rho[1]) % R, *t[2 * n + 1 : bound + 1]]
        self.blinding["t"] = rho
        chunks = [t0, t1, t2]
        for name, chunk, commitment in zip(
            QUOTIENT_COLUMNS, chunks, self._commit_monomial(chunks), strict=True
        ):
            self.coeffs[name] = chunk
            self.commitments[name] = commitment
            self.transcript.absorb_g1(commitment)

    # -- rounds 4 and 5 ----------------------------------------------------------------

    def _round_4(self, zeta: int) -> tuple[dict[str, int], dict[str, int]]:
        layout = self.layout
        omega_zeta = self.pk.domain.omega * zeta % R
        evals_zeta = {
            name: int(evaluate(self.coeffs[name], zeta)) for name in layout.opened_at_zeta
        }
        evals_omega_zeta = {
            name: int(evaluate(self.coeffs[name], omega_zeta))
            for name in layout.opened_at_omega_zeta
        }
        self.transcript.absorb_scalars(evals_zeta[name] for name in layout.opened_at_zeta)
        self.transcript.absorb_scalars(
            evals_omega_zeta[name] for name in layout.opened_at_omega_zeta
        )
        return evals_zeta, evals_omega_zeta

    def _round_5(
        self,
        zeta: int,
        v: int,
        evals_zeta: dict[str, int],
        evals_omega_zeta: dict[str, int],
    ) -> tuple[G1Affine, G1Affine]:
        """W_zeta = (P(X) - P(zeta)) / (X - zeta), P = t_0 + zeta^N t_1 + zeta^2N t_2 +
        sum_i v^(i+1) c_i over the columns opened at zeta; W_omega_zeta likewise with
        sum_i v^i c_i over the columns opened at omega * zeta."""
        layout = self.layout
        zeta_n = pow(zeta, layout.size, R)
        at_zeta = [
            (self.coeffs["t_0"], 1),
            (self.coeffs["t_1"], zeta_n),
            (self.coeffs["t_2"], zeta_n * zeta_n % R),
        ]
        weight = 1
        for name in layout.opened_at_zeta:
            weight = weight * v % R
            at_zeta.append((self.coeffs[name], weight))
        at_omega_zeta = []
        weight = 1
        for name in layout.opened_at_omega_zeta:
            at_omega_zeta.append((self.coeffs[name], weight))
            weight = weight * v % R
        omega_zeta = self.pk.domain.omega * zeta % R
        quotients = [
            divide_by_linear(_combine(at_zeta), zeta)[0],
            divide_by_linear(_combine(at_omega_zeta), omega_zeta)[0],
        ]
        w_zeta, w_omega_zeta = self._commit_monomial(quotients)
        self.transcript.absorb_g1(w_zeta)
        self.transcript.absorb_g1(w_omega_zeta)
        return w_zeta, w_omega_zeta


def _combine(terms: Sequence[tuple[Sequence[Any], int]]) -> list[Any]:
    """sum_k weight_k * poly_k, coefficient-wise mod R."""
    length = max(len(poly) for poly, _ in terms)
    out = [0] * length
    for poly, weight in terms:
        for i, c in enumerate(poly):
            out[i] += c * weight
    return [c % R for c in out]


def _add(a: G1Affine, b: G1Affine) -> G1Affine:
    x, y = affine_add(a, b)
    return (int(x), int(y))


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


def _subcoset_shifts(log_n: int, count: int) -> list[int]:
    """s_k = COSET_SHIFT * omega_4N^k for k < count."""
    omega_4n = root_of_unity(log_n + EXTENSION_FACTOR_LOG)
    return [COSET_SHIFT * pow(omega_4n, k, R) % R for k in range(count)]


def _evaluate_on_coset(coeffs: Sequence[Any], shift_powers: Sequence[Any], log_n: int) -> list[Any]:
    """p(shift * omega^i), i < N, for p of any degree: scale c_j by shift^j (the powers are
    shared by every column of the coset), fold the coefficients modulo X^N - 1
    (omega^N = 1), and take an NTT of size N (which reduces its inputs mod R)."""
    n = 1 << log_n
    scaled = [c * p for c, p in zip(coeffs, shift_powers, strict=False)]
    head = scaled[:n]
    head.extend([0] * (n - len(head)))
    for j in range(n, len(scaled)):
        head[j - n] += scaled[j]
    return ntt(head, log_n)


def _unfold(folded: Sequence[Sequence[Any]], nodes: Sequence[int], n: int) -> list[Any]:
    """Coefficients t_0 .. t_(3N-1) from F_k[j] = sum_m t_(j + mN) nodes[k]^m (k, m < 3):
    per j, the 3 x 3 Vandermonde system in the nodes, solved with its precomputed inverse."""
    size = len(nodes)
    vandermonde = [[pow(node, m, R) for m in range(size)] for node in nodes]
    inverse = _matrix_inverse(vandermonde)
    t: list[Any] = [0] * (size * n)
    for m in range(size):
        row = inverse[m]
        for j in range(n):
            t[m * n + j] = sum(row[k] * folded[k][j] for k in range(size)) % R
    return t


def _matrix_inverse(matrix: list[list[int]]) -> list[list[int]]:
    """Gauss-Jordan inverse over Fr of a small invertible matrix."""
    size = len(matrix)
    rows = [[*row, *(int(i == j) for j in range(size))] for i, row in enumerate(matrix)]
    for col in range(size):
        pivot = next(r for r in range(col, size) if rows[r][col] % R)
        rows[col], rows[pivot] = rows[pivot], rows[col]
        inv = pow(rows[col][col], -1, R)
        rows[col] = [v * inv % R for v in rows[col]]
        for r in range(size):
            if r != col and rows[r][col]:
                factor = rows[r][col]
                rows[r] = [(a - factor * b) % R for a, b in zip(rows[r], rows[col], strict=True)]
    return [row[size:] for row in rows]
