"""Round 3 of the prover: the quotient t = G / Z_H, as PROTOCOL §6 step 4 computes it.

    deg t <= N + 4 < 2N (`Layout.quotient_degree_bound`: every gate has degree 2 in columns of
    degree <= N + 2), so t is fixed by its values on the QUOTIENT_CHUNKS = 2 cosets s_c H,
    s_c = COSET_SHIFT * omega_4N^c (c = 0, 1). On each coset:
    1. columns on the coset (`evaluate_on_coset`): scale coefficient j by s_c^j, fold modulo
       X^N - 1 (omega^N = 1), NTT of size N;
    2. gates (`quotient_on_coset`): the folded constraint G = sum_i alpha^i gate_i evaluated
       pointwise, divided by the constant Z_H(s_c omega^i) = s_c^N - 1; an inverse NTT and the
       undoing of the shift give F_c[j] = sum_m t_(j + mN) (s_c^N)^m;
    3. unfolding (`unfold`): per j, a 2 x 2 Vandermonde solve in the nodes s_c^N gives t's
       coefficients;
    4. split and blind (`split_quotient`): t = t_0 + X^N t_1 with t_0 = t[0:N] + rho_0 X^N
       (N + 1 coefficients) and t_1 = t[N:] - rho_0 (5 coefficients).

s_c^N = COSET_SHIFT^N * iota^c with iota a primitive 4th root of unity: never 1 (5^N is not
a 4th root of unity), so no coset meets H and the division by Z_H is by a non-zero constant,
and the two nodes 5^N, 5^N iota are distinct, so the Vandermonde system is invertible.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import gmpy2

from circuits.constants import COSET_SHIFT, R
from circuits.expr import Col, Const, Expr, Neg, Product, Scalar, Sum
from circuits.usage_batch import EXTENSION_FACTOR_LOG, Layout
from prover.ntt import intt, ntt
from prover.timings import ProofTimings
from verifier.domain import Domain
from verifier.fr import batch_inverse, powers, root_of_unity


def coset_shifts(k: int, count: int) -> list[int]:
    """s_c = COSET_SHIFT * omega_4N^c for c < count (N = 2^k)."""
    omega_4n = root_of_unity(k + EXTENSION_FACTOR_LOG)
    return [COSET_SHIFT * pow(omega_4n, c, R) % R for c in range(count)]


def evaluate_on_coset(coeffs: Sequence[Any], shift_powers: Sequence[Any], k: int) -> list[Any]:
    """p(shift * omega^i), i < N, for p of any degree: scale c_j by shift^j (the powers are
    shared by every column of the coset), fold the coefficients modulo X^N - 1
    (omega^N = 1), and take an NTT of size N (which reduces its inputs mod R)."""
    n = 1 << k
    scaled = [c * p for c, p in zip(coeffs, shift_powers, strict=False)]
    head = scaled[:n]
    head.extend([0] * (n - len(head)))
    for j in range(n, len(scaled)):
        head[j - n] += scaled[j]
    return ntt(head, k)


def quotient_on_coset(
    layout: Layout,
    coeffs: Mapping[str, Sequence[Any]],
    scalars: Mapping[str, int],
    shift: int,
    timings: ProofTimings,
) -> list[Any]:
    """F[j] = sum_m t_(j + mN) (shift^N)^m: the quotient's coefficients folded on the coset
    shift * H (steps 1 and 2 above). `coeffs` holds every witness column and T; `scalars`
    the challenges and A_over_N."""
    n, k = layout.size, layout.k
    with timings.measure("ntt"):
        longest = max(len(coeffs[name]) for name in layout.witness_columns)
        shift_powers = [gmpy2.mpz(p) for p in powers(shift, longest)]
        on_coset = {
            name: evaluate_on_coset(coeffs[name], shift_powers, k)
            for name in (*layout.witness_columns, "T")
        }
    with timings.measure("gates"):
        domain = Domain(k)
        shift_n = pow(shift, n, R)
        points = [shift * w % R for w in domain.elements()]
        compiled = layout.compiled()
        if "X_minus_last" in compiled.parameters:  # no gate of protocol v2 reads it
            on_coset["X_minus_last"] = [(x - domain.omega_inv) % R for x in points]
        first_scale = (shift_n - 1) * pow(n, -1, R) % R  # L_0(X) = (X^N - 1) / (N (X - 1))
        on_coset["L0"] = [first_scale * inv % R for inv in batch_inverse([x - 1 for x in points])]
        arguments: list[Any] = []
        for parameter in compiled.parameters:
            if parameter in scalars:
                arguments.append(itertools.repeat(scalars[parameter]))
            elif parameter.endswith("_next"):
                base = on_coset[parameter.removesuffix("_next")]
                arguments.append(itertools.chain(base[1:], base[:1]))
            else:
                arguments.append(on_coset[parameter])
        z_inv = pow(shift_n - 1, -1, R)
        quotient = [compiled.function(*args) * z_inv % R for args in zip(*arguments, strict=False)]
    with timings.measure("ntt"):
        folded = intt(quotient, k)
        shift_inv = pow(shift, -1, R)
        scale = 1
        for j in range(n):
            folded[j] = folded[j] * scale % R
            scale = scale * shift_inv % R
    return folded


def unfold(folded: Sequence[Sequence[Any]], nodes: Sequence[int], n: int) -> list[Any]:
    """Coefficients t_0 .. t_(cN-1) from F_c[j] = sum_m t_(j + mN) nodes[c]^m (c, m < c
    nodes): per j, the Vandermonde system in the nodes, solved with its precomputed inverse."""
    size = len(nodes)
    vandermonde = [[pow(node, m, R) for m in range(size)] for node in nodes]
    inverse = matrix_inverse(vandermonde)
    t: list[Any] = [0] * (size * n)
    for m in range(size):
        row = inverse[m]
        for j in range(n):
            t[m * n + j] = sum(row[k] * folded[k][j] for k in range(size)) % R
    return t


def split_quotient(t: Sequence[Any], n: int, bound: int, rho: Sequence[int]) -> list[list[Any]]:
    """[t_0, ..., t_(c-1)], c = len(rho) + 1 (step 4 above): chunk i is t[iN:(i+1)N] with
    -rho_(i-1) added to its constant term and rho_i as its X^N term; the last chunk ends at
    t[bound]. Every chunk has degree <= N, and sum_i X^(iN) t_i = t."""
    chunks: list[list[Any]] = []
    for i in range(len(rho) + 1):
        last = i == len(rho)
        chunk = list(t[i * n : bound + 1 if last else (i + 1) * n])
        if i > 0:
            chunk[0] = (chunk[0] - rho[i - 1]) % R
        if not last:
            chunk.append(rho[i])
        chunks.append(chunk)
    return chunks


# ---------------------------------------------------------------- one coset and the top of G


def top_window(layout: Layout) -> tuple[int, int]:
    """(lo, hi): the coefficient indices of the columns that reach G's coefficients at
    2N .. N + bound. Every gate has degree <= 2 in columns of degree <= D = hi, so a
    coefficient of index >= 2N of a product of two columns needs both factors' indices in
    [2N - D, D]: [N - 2, N + 2] for the usage batch."""
    n = layout.size
    hi = max(d for name, d in layout.column_degrees().items() if name != "L0")
    return 2 * n - hi, hi


def top_coefficients(
    layout: Layout,
    windows: Mapping[str, Sequence[int]],
    scalars: Mapping[str, int],
) -> list[int]:
    """t_(N+k) for k = 0 .. bound - N, i.e. the coefficients of G = sum_i alpha^i gate_i at
    2N + k (G = t (X^N - 1) and deg t < 2N, so G_(2N+k) = t_(N+k)), from the columns'
    coefficients in the window of :func:`top_window` only (``windows[name][i]`` is the
    coefficient of index lo + i).

    Each sub-expression is a triple (c, L, Q): its constant (for scalars and constants; 0 for
    columns, whose low coefficients never reach 2N), its coefficients on [lo, hi] (exact for
    expressions of degree <= 1 in the columns) and on [2N, N + bound] (exact for degree <= 2).
    A product of two degree-1 expressions convolves their L windows; L0 = (1/N) sum_(i<N) X^i
    has the window (1/N, 1/N, 0, 0, 0); c(omega X) has coefficient i times omega^i."""
    n = layout.size
    lo, hi = top_window(layout)
    width = hi - lo + 1
    top = layout.quotient_degree_bound() - n + 1  # t_N .. t_bound
    if top > width or lo + hi != 2 * n:
        raise ValueError("the top of G is out of the window of the columns")
    omega = root_of_unity(layout.k)
    n_inv = pow(n, -1, R)
    Node = tuple[int, list[int], list[int], int]  # (c, L, Q, degree in the columns)
    zero_l, zero_q = [0] * width, [0] * top

    def column(expr: Col) -> Node:
        if expr.name == "L0":
            window = [n_inv if lo + i < n else 0 for i in range(width)]
        else:
            window = [int(v) % R for v in windows[expr.name]]
            if expr.rot:
                step = pow(omega, expr.rot, R)
                window = [v * pow(step, lo + i, R) % R for i, v in enumerate(window)]
        return 0, window, zero_q, 1

    def node(expr: Expr) -> Node:
        if isinstance(expr, Const):
            return expr.value % R, zero_l, zero_q, 0
        if isinstance(expr, Scalar):
            return scalars[expr.name] % R, zero_l, zero_q, 0
        if isinstance(expr, Col):
            return column(expr)
        if isinstance(expr, Neg):
            c, low, high, d = node(expr.inner)
            return -c % R, [-v % R for v in low], [-v % R for v in high], d
        if isinstance(expr, Sum):
            c1, l1, q1, d1 = node(expr.left)
            c2, l2, q2, d2 = node(expr.right)
            return (
                (c1 + c2) % R,
                [(a + b) % R for a, b in zip(l1, l2, strict=True)],
                [(a + b) % R for a, b in zip(q1, q2, strict=True)],
                max(d1, d2),
            )
        if isinstance(expr, Product):
            c1, l1, q1, d1 = node(expr.left)
            c2, l2, q2, d2 = node(expr.right)
            if d1 + d2 > 2:
                raise ValueError("a gate of degree above 2: its top needs a wider window")
            # coefficient 2N + k of the product: sum over i + j = 2N + k of L1[i] L2[j], i.e.
            # window positions a + b = k + (2N - 2 lo)
            shift = 2 * n - 2 * lo
            conv = [
                sum(l1[a] * l2[k + shift - a] for a in range(width) if 0 <= k + shift - a < width)
                % R
                for k in range(top)
            ]
            return (
                c1 * c2 % R,
                [(c1 * b + c2 * a) % R for a, b in zip(l1, l2, strict=True)],
                [(c1 * b + c2 * a + x) % R for a, b, x in zip(q1, q2, conv, strict=True)],
                d1 + d2,
            )
        raise TypeError(f"cannot evaluate {type(expr).__name__}")

    alpha = scalars["alpha"] % R
    acc = [0] * top
    for gate in reversed(layout.gates()):
        high = node(gate.expr)[2]
        acc = [(a * alpha + h) % R for a, h in zip(acc, high, strict=True)]
    return acc


def matrix_inverse(matrix: list[list[int]]) -> list[list[int]]:
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


__all__ = [
    "coset_shifts",
    "evaluate_on_coset",
    "matrix_inverse",
    "quotient_on_coset",
    "split_quotient",
    "top_coefficients",
    "top_window",
    "unfold",
]
