"""The usage-batch constraint system: columns, gates, range lookup and aggregate sum.

Statement (docs/PROTOCOL.md §2): there is a table of rows (key, nonce, tokens) on the
domain H = <omega> of size N such that every token count lies in [0, 2^32), each channel's
active rows are one contiguous run of consecutive nonces starting at its public first
nonce, each channel's row count and token sum equal its public aggregate, and no active
row belongs to a channel outside the public list.

Columns (all evaluated on H; rotation 1 means the next row, X -> omega * X):

=========== ======= ============================================================
name        round   meaning
=========== ======= ============================================================
key         1       payer + 2^160 * modelId of the row's channel
nonce       1       the receipt's nonce
q           1       1 on real rows, 0 on padding rows
s           1       1 on the first row of each channel's run
cont        1       q[i+1] * (1 - s[i+1]) (cyclic): the next row continues this row's run
limb_j      1       the j-th 8-bit limb of tokens (little-endian), j < 4
m           1       multiplicity of table value T[i] among all limbs (logUp)
h_range_j   2       1 / (beta - limb_j), one per limb
h_table     2       m / (beta - T)
h_agg       2       (q(1 + delta*tokens) + s(delta^2*nonce + delta^3)) / (gamma - key)
phi         2       running sum of the row contributions minus A / N
T           fixed   the range table: T[i] = i for i < 2^LIMB_BITS, 0 after
=========== ======= ============================================================

Every gate has degree at most 2 in the columns (PROTOCOL §4), so the quotient has degree
about N + 4 and two chunks. The derived ``L0`` = L_0(X) is evaluated by each side itself.
The logUp range argument follows Haböck, "Multivariate lookups based on
logarithmic derivatives" (ePrint 2022/1530).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Final

from circuits.expr import (
    Col,
    CompiledGates,
    Expr,
    Gate,
    Scalar,
    VectorProgram,
    compile_gates,
    compile_vector_program,
)

MIN_LOG_SIZE: Final[int] = 8
MAX_LOG_SIZE: Final[int] = 20
SUPPORTED_LOG_SIZES: Final[range] = range(MIN_LOG_SIZE, MAX_LOG_SIZE + 1)

TOKEN_BITS: Final[int] = 32  # tokens < 2^32 (a uint32 in the receipt)
PAYER_BITS: Final[int] = 160  # an Ethereum address
#: Powers of tau beyond N the SRS must hold: blinded witness columns reach degree N + 2
#: (PROTOCOL §1: the SRS holds [tau^i]_1 for i < N + 3).
SRS_HEADROOM: Final[int] = 3
MODEL_ID_BITS: Final[int] = 64
NONCE_BITS: Final[int] = 64
KEY_MODEL_SHIFT: Final[int] = 160  # key = payer + 2^160 * modelId

# Blinding: a column opened at k points gets a random multiple b(X) * Z_H(X) with deg b = k,
# so that its commitment and its k openings are uniformly distributed (PLONK §8).
BLINDING_COEFFS_ONE_POINT: Final[int] = 2
BLINDING_COEFFS_TWO_POINTS: Final[int] = 3

LIMB_BITS: Final[int] = 8  # token limbs are bytes at every domain size: T = 0..255
QUOTIENT_CHUNKS: Final[int] = 2  # t = t_0 + X^N t_1 (deg t <= N + 4 with degree-2 gates)
# The quotient's cosets s_c H are taken with s_c = 5 * omega_4N^c (c < QUOTIENT_CHUNKS).
EXTENSION_FACTOR_LOG: Final[int] = 2


class UnsupportedDomainError(ValueError):
    """The requested domain size is outside 2^MIN_LOG_SIZE .. 2^MAX_LOG_SIZE."""


def channel_key(payer: int, model_id: int) -> int:
    """key = payer + 2^160 * modelId: distinct channels (of one operator) get distinct keys."""
    if not 0 <= payer < 1 << PAYER_BITS:
        raise ValueError(f"payer {payer:#x} is not a 160-bit address")
    if not 0 <= model_id < 1 << MODEL_ID_BITS:
        raise ValueError(f"modelId {model_id} does not fit in 64 bits")
    return payer + (model_id << KEY_MODEL_SHIFT)


@dataclass(frozen=True)
class Layout:
    """Everything about the circuit that depends on the domain size N = 2^log_size."""

    k: int

    def __post_init__(self) -> None:
        if self.k not in SUPPORTED_LOG_SIZES:
            raise UnsupportedDomainError(
                f"domain size 2^{self.k} is not supported; "
                f"use 2^{MIN_LOG_SIZE} .. 2^{MAX_LOG_SIZE} rows"
            )

    @property
    def size(self) -> int:
        return 1 << self.k

    @property
    def srs_powers(self) -> int:
        """G1 powers of tau a 2^log_size-row domain needs: N + SRS_HEADROOM."""
        return self.size + SRS_HEADROOM

    @property
    def limb_bits(self) -> int:
        """8-bit limbs at every size (PROTOCOL v2): the table 0..255 fits every domain."""
        return LIMB_BITS

    @property
    def limb_count(self) -> int:
        return TOKEN_BITS // self.limb_bits

    @property
    def max_rows(self) -> int:
        """Every row of H may hold a receipt: the transition gates skip the wrap-around."""
        return self.size

    @property
    def limb_columns(self) -> tuple[str, ...]:
        return tuple(f"limb_{j}" for j in range(self.limb_count))

    @property
    def range_helper_columns(self) -> tuple[str, ...]:
        return tuple(f"h_range_{j}" for j in range(self.limb_count))

    @property
    def round1_columns(self) -> tuple[str, ...]:
        """Witness columns committed in round 1, in transcript order."""
        return ("key", "nonce", "q", "s", "cont", *self.limb_columns, "m")

    @property
    def round2_columns(self) -> tuple[str, ...]:
        """Columns committed in round 2 (after beta, gamma, delta), in transcript order."""
        return (*self.range_helper_columns, "h_table", "h_agg", "phi")

    @property
    def witness_columns(self) -> tuple[str, ...]:
        return self.round1_columns + self.round2_columns

    @property
    def fixed_columns(self) -> tuple[str, ...]:
        return ("T",)

    @property
    def opened_at_zeta(self) -> tuple[str, ...]:
        """Columns whose evaluation at zeta the proof carries, in transcript order."""
        return self.witness_columns + self.fixed_columns

    @property
    def opened_at_omega_zeta(self) -> tuple[str, ...]:
        """Columns whose evaluation at omega * zeta the proof carries, in transcript order."""
        return ("key", "nonce", "q", "s", "phi")

    def blinding_coeffs(self, column: str) -> int:
        if column in self.opened_at_omega_zeta:
            return BLINDING_COEFFS_TWO_POINTS
        return BLINDING_COEFFS_ONE_POINT

    def table_values(self) -> list[int]:
        """T[i] = i for i < 2^limb_bits and 0 for the remaining rows of H."""
        span = 1 << self.limb_bits
        return [i if i < span else 0 for i in range(self.size)]

    def tokens_expr(self) -> Expr:
        """tokens = sum_j limb_j * 2^(limb_bits * j)."""
        expr: Expr = Col(self.limb_columns[0])
        for j, name in enumerate(self.limb_columns[1:], start=1):
            expr = expr + Col(name) * (1 << (self.limb_bits * j))
        return expr

    def gates(self) -> list[Gate]:
        return _gates(self.k)

    def compiled(self) -> CompiledGates:
        return _compiled(self.k)

    def vector_program(self) -> VectorProgram:
        """The folded gates as the register program the native prover runs on cosets."""
        return _vector_program(self.k)

    def column_degrees(self) -> dict[str, int]:
        """Degree of each polynomial the gates refer to, blinding included."""
        n = self.size
        degrees = {c: n - 1 + self.blinding_coeffs(c) for c in self.witness_columns}
        degrees.update({c: n - 1 for c in self.fixed_columns})
        degrees.update({"L0": n - 1})
        return degrees

    def quotient_degree_bound(self) -> int:
        """max over gates of deg(gate) - N: the degree of t(X) = sum alpha^i gate_i / Z_H
        (N + 4: two columns of degree N + 2, those opened at two points, multiplied)."""
        degrees = self.column_degrees()
        bound = max(gate.expr.degree(degrees) for gate in self.gates()) - self.size
        if bound >= QUOTIENT_CHUNKS * self.size:
            raise ValueError(f"deg t = {bound} needs more than {QUOTIENT_CHUNKS} chunks")
        return bound


@cache
def _gates(k: int) -> list[Gate]:
    layout = Layout(k)
    key, nonce, q, s, cont = Col("key"), Col("nonce"), Col("q"), Col("s"), Col("cont")
    key_next, nonce_next, q_next, s_next = Col("key", 1), Col("nonce", 1), Col("q", 1), Col("s", 1)
    beta, gamma, delta = Scalar("beta"), Scalar("gamma"), Scalar("delta")
    first = Col("L0")  # L_0(X), computed by each side

    # Every gate has degree <= 2 in the columns (PROTOCOL §4). `cont` (committed in round 1)
    # is q(omega X)(1 - s(omega X)) on every row, the wrap-around row N-1 included, where it
    # equals q[0](1 - s[0]) = 0 by first_row_starts: the transitions need no X - omega^(N-1).
    gates = [
        Gate("q_boolean", q * (1 - q), "q in {0, 1}"),
        Gate("s_boolean", s * (1 - s), "s in {0, 1}"),
        Gate("s_implies_q", s * (1 - q), "only active rows start a run"),
        Gate("first_row_starts", first * (q - s), "row 0 is a start if active (q = s there)"),
        Gate(
            "continue_flag",
            cont - q_next * (1 - s_next),
            "cont = 1 iff the next row (cyclically) is active and not a start",
        ),
        Gate("continue_after_active", cont * (1 - q), "a continuing row follows an active row"),
        Gate("continue_same_key", cont * (key_next - key), "a continuing row keeps the key"),
        Gate("continue_next_nonce", cont * (nonce_next - nonce - 1), "nonce increases by 1"),
    ]
    for helper, limb in zip(layout.range_helper_columns, layout.limb_columns, strict=True):
        gates.append(
            Gate(
                f"range_helper_{limb.removeprefix('limb_')}",
                Col(helper) * (beta - Col(limb)) - 1,
                f"{helper} = 1/(beta - {limb})",
            )
        )
    gates.append(
        Gate("table_helper", Col("h_table") * (beta - Col("T")) - Col("m"), "h_table = m/(beta-T)")
    )
    tokens = layout.tokens_expr()
    numerator = q * (1 + delta * tokens) + s * (delta * delta * nonce + delta * delta * delta)
    gates.append(
        Gate(
            "aggregate_helper", Col("h_agg") * (gamma - key) - numerator, "h_agg = num/(gamma-key)"
        )
    )
    contribution: Expr = Col("h_agg") - Col("h_table")
    for helper in layout.range_helper_columns:
        contribution = contribution + Col(helper)
    gates.append(
        Gate(
            "running_sum",
            Col("phi", 1) - Col("phi") - contribution + Scalar("A_over_N"),
            "phi(omega X) - phi(X) = row contribution - A/N; the sum over H telescopes to 0",
        )
    )
    return gates


@cache
def _compiled(k: int) -> CompiledGates:
    return compile_gates(_gates(k))


@cache
def _vector_program(k: int) -> VectorProgram:
    return compile_vector_program(_gates(k))
