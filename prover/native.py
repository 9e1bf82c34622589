"""The native arithmetic core (``zkmeter_native``: arkworks on BN254 via PyO3), typed.

What proving and verifying spend their time on, named after the math:

* ``msm`` / ``msm_small`` -- ``sum_i s_i P_i`` over a ``G1Bases`` handle (full width: our
  batch-affine Pippenger, or arkworks' ``msm_bigint`` with ``ZKMETER_MSM=arkworks``; small
  scalars: arkworks' ``msm_u*``);
* ``ntt`` / ``intt`` / ``coset_ntt`` / ``coset_intt`` -- transforms on the radix-2 domain
  ``H = <omega>``, ``omega = 5^((R-1)/2^28)^(2^(28-k))`` (PROTOCOL §1, as ``prover.ntt``);
* ``batch_inverse`` -- Montgomery's trick;
* ``evaluate``, ``divide_by_linear``, ``commit_monomial``, ``open_at`` -- KZG helpers
  (Kate–Zaverucha–Goldberg 2010, §3.2);
* ``lagrange_basis`` -- ``[L_i(tau)]_1`` from ``[tau^j]_1`` by an inverse FFT over G1
  (the ordering of ``prover.srs.lagrange_basis``);
* ``pairing_product_is_one`` -- the EIP-197 check ``prod_i e(A_i, B_i) = 1``.

**Encodings.** Vectors of scalars cross the boundary as one ``bytes``-like buffer of 32-byte
*little-endian* words, each the canonical value in ``[0, R)`` (``ScalarBuffer``); the native
side rejects a word ``>= R`` with ``ValueError``. Any buffer works as input (``bytes``,
``bytearray``, ``memoryview``, NumPy ``uint8`` arrays); results are ``bytes``. G1 points are
64-byte EIP-196 words (big-endian ``x || y``, ``(0, 0)`` infinity), G2 points 128-byte
EIP-197 words (``x_im || x_re || y_im || y_re``). Bases live in native ``G1Bases`` handles,
decoded and checked once. The helpers ``scalars_to_buffer`` / ``scalars_from_buffer`` /
``small_values_to_buffer`` convert from and to Python ints and NumPy columns.

**Fallback.** ``zkmeter_native`` is optional at import time: ``available()`` says whether it
imported, and ``verifier.backend`` decides whether it runs (``ZKMETER_BACKEND`` =
``auto`` | ``native`` | ``python``, or ``use_backend``). ``prover.msm``, ``prover.ntt``,
``prover.srs`` (Lagrange basis, generator multiples) and ``verifier.curve`` (pairing) dispatch
here when it runs; their pure-Python code stays the reference these functions are tested
against. Calling a function of this module without the core raises
``NativeUnavailableError``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final, TypeAlias

import gmpy2
import numpy as np
import numpy.typing as npt

from verifier.backend import (
    NativeUnavailableError,
    available,
    unavailable_reason,
    use_backend,
    use_native,
)
from verifier.constants import COSET_SHIFT, R
from verifier.curve import G1Affine
from verifier.fr import NonCanonicalScalarError

if TYPE_CHECKING:
    from zkmeter_native import FrVec, G1Bases
else:
    G1Bases = Any
    FrVec = Any

__all__ = [
    "G1_BYTES",
    "G2_BYTES",
    "MSM_ALGORITHMS",
    "NTT_ALGORITHMS",
    "PIPPENGER_FROM",
    "SCALAR_BYTES",
    "FrVec",
    "G1Bases",
    "NativeUnavailableError",
    "ScalarBuffer",
    "arkworks_msm_seconds",
    "available",
    "bases_for",
    "batch_inverse",
    "check_scalars",
    "column",
    "column_ints",
    "commit_monomial",
    "coset_intt",
    "coset_ntt",
    "divide_by_linear",
    "evaluate",
    "evaluate_columns",
    "freed_memory_reused",
    "g1_bases",
    "g1_from_buffer",
    "g1_to_buffer",
    "gates_on_coset",
    "generator_multiples",
    "interpolate_blinded",
    "intt",
    "lagrange_basis",
    "lagrange_from_tau",
    "limb_buckets",
    "logup_round2",
    "msm",
    "msm_column",
    "msm_full",
    "msm_ints",
    "msm_seconds",
    "msm_small",
    "ntt",
    "ntt_seconds",
    "num_threads",
    "open_at",
    "open_combination",
    "pairing_product_is_one",
    "powers_of_tau",
    "ptau_points",
    "quotient_on_coset",
    "quotient_one_coset",
    "quotient_unfold",
    "round2_commitments",
    "scalar_from_word",
    "scalar_to_word",
    "scalars_from_buffer",
    "scalars_from_buffer_mpz",
    "scalars_to_buffer",
    "small_values_to_buffer",
    "suffix_bases",
    "unavailable_reason",
    "use_backend",
    "use_native",
]

ScalarBuffer: TypeAlias = bytes
"""``32 n`` bytes: ``n`` little-endian canonical scalar words."""

BufferLike: TypeAlias = bytes | bytearray | memoryview | npt.NDArray[np.uint8]
"""What the native functions read: any C-contiguous byte buffer."""

SCALAR_BYTES: Final[int] = 32
G1_BYTES: Final[int] = 64
G2_BYTES: Final[int] = 128

# The attribute under which a prepared ``prover.msm.Bases`` keeps its native handle.
_HANDLE_ATTRIBUTE: Final[str] = "_zkmeter_native_bases"


def _core() -> Any:
    """The ``zkmeter_native`` module, or ``NativeUnavailableError``."""
    if not available():
        raise NativeUnavailableError(
            f"zkmeter_native is not built ({unavailable_reason()}): run `make setup` or "
            "`pip install ./native`"
        )
    import zkmeter_native

    return zkmeter_native


def num_threads() -> int:
    """Worker threads of the native pool (``RAYON_NUM_THREADS``, else the CPU count)."""
    return int(_core().num_threads())


# ----------------------------------------------------------------------------- buffers


def scalars_to_buffer(values: Iterable[Any], *, reduce: bool = False) -> ScalarBuffer:
    """``values`` (ints, ``gmpy2.mpz`` or a NumPy integer array) as a scalar buffer.

    With ``reduce`` every value is taken mod R first (negative and wide values included),
    as ``prover.msm`` and ``prover.ntt`` read their inputs; without it a value outside
    ``[0, 2^256)`` raises ``NonCanonicalScalarError`` here and one in ``[R, 2^256)`` is
    rejected by the native function that reads the buffer. Cost: ~0.2 us per value for
    Python ints (``int.to_bytes``); a NumPy array of non-negative integers below 2^64 is
    widened to 4 limbs without a Python loop."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "iu":
        if values.size and values.dtype.kind == "i" and int(values.min()) < 0:
            if not reduce:
                raise NonCanonicalScalarError("a negative value is not a canonical scalar")
            return scalars_to_buffer(values.tolist(), reduce=True)
        return small_values_to_buffer(values)
    if reduce:
        try:
            return b"".join([(v % R).to_bytes(32, "little") for v in values])
        except (AttributeError, TypeError, OverflowError):  # e.g. NumPy integer scalars
            return b"".join([(int(v) % R).to_bytes(32, "little") for v in values])
    try:
        try:
            return b"".join([v.to_bytes(32, "little") for v in values])
        except AttributeError:  # e.g. NumPy integer scalars
            return b"".join([int(v).to_bytes(32, "little") for v in values])
    except OverflowError as exc:
        raise NonCanonicalScalarError(f"a value is not in [0, 2^256): {exc}") from exc


def small_values_to_buffer(values: npt.ArrayLike) -> ScalarBuffer:
    """Non-negative integers below 2^64 (a witness column, say) as a scalar buffer: each
    value becomes limb 0 of a little-endian ``(n, 4)`` ``uint64`` array, the other limbs
    zero."""
    array = np.asarray(values)
    if array.size and array.dtype.kind == "i" and int(array.min()) < 0:
        raise NonCanonicalScalarError("a negative value is not a canonical scalar")
    limbs = np.zeros((array.size, 4), dtype="<u8")
    limbs[:, 0] = array.reshape(-1)
    return limbs.tobytes()


def scalars_from_buffer(buffer: BufferLike) -> list[int]:
    """The Python ints of a scalar buffer (~0.15 us per word)."""
    raw = bytes(buffer)
    if len(raw) % SCALAR_BYTES:
        raise ValueError(f"{len(raw)} bytes is not a whole number of 32-byte scalar words")
    from_bytes = int.from_bytes
    return [from_bytes(raw[i : i + SCALAR_BYTES], "little") for i in range(0, len(raw), 32)]


def scalars_from_buffer_mpz(buffer: BufferLike) -> list[Any]:
    """The values of a scalar buffer as ``gmpy2.mpz`` (the type ``prover.ntt`` returns)."""
    raw = bytes(buffer)
    if len(raw) % SCALAR_BYTES:
        raise ValueError(f"{len(raw)} bytes is not a whole number of 32-byte scalar words")
    from_bytes = gmpy2.mpz.from_bytes
    return [from_bytes(raw[i : i + SCALAR_BYTES], "little") for i in range(0, len(raw), 32)]


def check_scalars(buffer: BufferLike) -> int:
    """The number of words of a scalar buffer, after the native side checked each is
    canonical (``ValueError`` naming the first that is not)."""
    return int(_core().scalars_check(buffer))


def scalar_to_word(value: int) -> bytes:
    """One scalar (reduced mod R) as a 32-byte little-endian word."""
    return (int(value) % R).to_bytes(SCALAR_BYTES, "little")


def scalar_from_word(word: BufferLike) -> int:
    """The int of one 32-byte little-endian word."""
    raw = bytes(word)
    if len(raw) != SCALAR_BYTES:
        raise ValueError(f"a scalar word is {SCALAR_BYTES} bytes, got {len(raw)}")
    return int.from_bytes(raw, "little")


def g1_to_buffer(points: Iterable[Sequence[Any]]) -> bytes:
    """Affine G1 points ``(x, y)`` (``(0, 0)`` infinity) as ``64 n`` bytes of EIP-196 words."""
    return b"".join([int(p[0]).to_bytes(32, "big") + int(p[1]).to_bytes(32, "big") for p in points])


def g1_from_buffer(buffer: BufferLike) -> list[G1Affine]:
    """The affine ``(x, y)`` ints of ``64 n`` bytes of EIP-196 words."""
    raw = bytes(buffer)
    if len(raw) % G1_BYTES:
        raise ValueError(f"{len(raw)} bytes is not a whole number of 64-byte G1 points")
    from_bytes = int.from_bytes
    return [
        (from_bytes(raw[i : i + 32], "big"), from_bytes(raw[i + 32 : i + 64], "big"))
        for i in range(0, len(raw), G1_BYTES)
    ]


def _g1_point(encoded: bytes) -> G1Affine:
    return (int.from_bytes(encoded[:32], "big"), int.from_bytes(encoded[32:64], "big"))


# --------------------------------------------------------------------------- G1 bases


def g1_bases(points: Sequence[Sequence[Any]] | BufferLike | G1Bases) -> G1Bases:
    """A native handle on affine G1 points: from ``(x, y)`` pairs, from ``64 n`` bytes of
    EIP-196 words, or an existing handle (returned as is). Every point is checked on the
    curve (``ValueError`` naming the first that is not)."""
    core = _core()
    if isinstance(points, core.G1Bases):
        return points
    if isinstance(points, bytes | bytearray | memoryview | np.ndarray):
        return core.G1Bases.from_affine_bytes(points)
    return core.G1Bases.from_affine_bytes(g1_to_buffer(points))


def bases_for(points: Any) -> G1Bases:
    """The native handle for MSM bases as ``prover.msm`` receives them: a ``G1Bases``, a
    prepared ``prover.msm.Bases`` (converted once; the handle is kept on the object, so the
    SRS and Lagrange bases of a proving key cross the boundary once), or a list of pairs
    (converted on every call)."""
    core = _core()
    if isinstance(points, core.G1Bases):
        return points
    cached = getattr(points, _HANDLE_ATTRIBUTE, None)
    if cached is not None:
        return cached
    raw = getattr(points, "raw", None)  # prover.srs.G1Points: EIP-196 bytes already
    if isinstance(raw, bytes):
        handle = core.G1Bases.from_affine_bytes(raw)
        object.__setattr__(points, _HANDLE_ATTRIBUTE, handle)
        return handle
    xs, ys = getattr(points, "xs", None), getattr(points, "ys", None)
    if xs is None or ys is None:
        return g1_bases(points)
    handle = core.G1Bases.from_affine_bytes(
        b"".join(
            [
                int(x).to_bytes(32, "big") + int(y).to_bytes(32, "big")
                for x, y in zip(xs, ys, strict=True)
            ]
        )
    )
    object.__setattr__(points, _HANDLE_ATTRIBUTE, handle)  # frozen dataclass: cache aside
    return handle


# ------------------------------------------------------------------------------- MSM


MSM_ALGORITHMS: Final[tuple[str, ...]] = ("pippenger", "arkworks")
"""The full-width MSMs of the core: ours (signed digits, batch-affine buckets; from
``PIPPENGER_FROM`` points, arkworks' below) and arkworks' ``msm_bigint`` (the oracle). Both
give the same point."""

PIPPENGER_FROM: Final[int] = 1 << 12
"""From this many scalars ``"pippenger"`` runs our MSM (``zkmeter_native.PIPPENGER_FROM``)."""


def msm(bases: G1Bases, scalars: BufferLike, *, algorithm: str | None = None) -> G1Affine:
    """``sum_i s_i P_i`` over the first ``n`` bases for ``n`` scalar words, by ``algorithm``
    (one of ``MSM_ALGORITHMS``; default: ``ZKMETER_MSM`` if set, else ``"pippenger"``)."""
    return _g1_point(_core().g1_msm(bases, scalars, algorithm))


def msm_small(bases: G1Bases, values: npt.ArrayLike) -> G1Affine:
    """``sum_i v_i P_i`` for non-negative integers ``v_i < 2^64`` (a column of flags, limbs,
    counts): arkworks' ``msm_u1/u8/u16/u32/u64`` by the largest value."""
    array = np.asarray(values)
    if array.size and array.dtype.kind == "i" and int(array.min()) < 0:
        raise ValueError("msm_small: values must be non-negative")
    column = np.ascontiguousarray(array, dtype="<u8").reshape(-1)
    return _g1_point(_core().g1_msm_u64(bases, column.view(np.uint8)))


def msm_ints(points: Any, scalars: Sequence[Any]) -> G1Affine:
    """``sum_i (s_i mod R) P_i`` for Python/``mpz`` scalars over bases in any form
    ``bases_for`` takes: what ``prover.msm.msm`` runs on the native backend. Lengths are
    the caller's to check (at most one scalar per base here)."""
    return msm(bases_for(points), scalars_to_buffer(scalars, reduce=True))


def arkworks_msm_seconds(bases: G1Bases, scalars: BufferLike, repeats: int = 3) -> list[float]:
    """Seconds of ``repeats`` runs of arkworks' own ``msm_bigint`` timed inside Rust on the
    same bases and (pre-decoded) scalars: the baseline of the binding-overhead benchmark."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    return [float(s) for s in _core().arkworks_msm_seconds(bases, scalars, repeats)]


def msm_seconds(
    bases: G1Bases, scalars: BufferLike, algorithm: str, repeats: int = 3
) -> list[float]:
    """Seconds of ``repeats`` runs of the full-width MSM ``algorithm`` timed inside Rust (as
    ``arkworks_msm_seconds``): ours and arkworks' side by side without the binding."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    return [float(s) for s in _core().msm_seconds(bases, scalars, repeats, algorithm)]


@contextmanager
def freed_memory_reused() -> Iterator[None]:
    """Inside, the process's ``malloc`` keeps freed memory for reuse instead of unmapping
    every block of 32 MiB or more at ``free`` (glibc; a no-op elsewhere): a 2^20 proof's
    columns then reuse mapped pages instead of page-faulting fresh ones (native/src/heap.rs).
    Scopes nest; leaving the outermost restores glibc's defaults and trims the heap."""
    core = _core()
    core.heap_reuse_enter()
    try:
        yield
    finally:
        core.heap_reuse_exit()


NTT_ALGORITHMS = ("ours", "arkworks")


def ntt_seconds(
    values: BufferLike, k: int, algorithm: str, repeats: int = 3, inverse: bool = False
) -> list[float]:
    """Seconds of ``repeats`` in-place FFTs of size ``2^k`` (inverse ones if ``inverse``) by
    ``algorithm`` (``NTT_ALGORITHMS``; ``ZKMETER_NTT`` picks the one the prover uses), timed
    inside Rust on the same pre-decoded values: ours and arkworks' side by side."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    return [float(s) for s in _core().ntt_seconds(values, k, repeats, algorithm, inverse)]


def generator_multiples(scalars: BufferLike) -> bytes:
    """``[s_i G1]`` as ``64 n`` bytes of EIP-196 points (arkworks' fixed-base
    ``batch_mul``)."""
    return bytes(_core().g1_generator_multiples(scalars))


# ------------------------------------------------------------------------------- NTT


def ntt(coeffs: BufferLike, k: int) -> ScalarBuffer:
    """``[p(omega^i) for i < n]``, ``n = 2^log_size``, from at most ``n`` coefficients."""
    return bytes(_core().ntt(coeffs, k))


def intt(values: BufferLike, k: int) -> ScalarBuffer:
    """The ``n`` coefficients of the polynomial of degree ``< n`` with ``p(omega^i) =
    values[i]``: ``c_j = n^-1 sum_i v_i omega^(-i j)``."""
    return bytes(_core().intt(values, k))


def coset_ntt(coeffs: BufferLike, k: int, shift: int = COSET_SHIFT) -> ScalarBuffer:
    """``[p(shift omega^i) for i < n]`` (``shift`` non-zero mod R)."""
    return bytes(_core().coset_ntt(coeffs, k, scalar_to_word(shift)))


def coset_intt(values: BufferLike, k: int, shift: int = COSET_SHIFT) -> ScalarBuffer:
    """The coefficients of the polynomial of degree ``< n`` with ``p(shift omega^i) =
    values[i]``."""
    return bytes(_core().coset_intt(values, k, scalar_to_word(shift)))


def batch_inverse(values: BufferLike) -> ScalarBuffer:
    """``[1/v for v in values]`` with one field inversion (Montgomery 1987, arkworks'
    ``batch_inversion``); ``ZeroDivisionError`` names the first zero."""
    return bytes(_core().batch_inverse(values))


# ------------------------------------------------------------------------------- KZG


def evaluate(coeffs: BufferLike, z: int) -> int:
    """``p(z) = sum_j c_j z^j mod R`` (0 for no coefficients)."""
    return scalar_from_word(_core().poly_evaluate(coeffs, scalar_to_word(z)))


def divide_by_linear(coeffs: BufferLike, z: int) -> tuple[ScalarBuffer, int]:
    """``(q, p(z))`` with ``p(X) = q(X)(X - z) + p(z)``: ``q`` is the KZG opening quotient
    ``(p(X) - p(z))/(X - z)`` with ``n - 1`` coefficients, as ``prover.ntt.divide_by_linear``."""
    q, remainder = _core().poly_divide_by_linear(coeffs, scalar_to_word(z))
    return bytes(q), scalar_from_word(remainder)


def commit_monomial(srs: G1Bases, coeffs: BufferLike) -> G1Affine:
    """``[p(tau)]_1 = sum_i c_i [tau^i]_1`` against a handle on the monomial SRS; trailing
    zeros are ignored, a degree above ``len(srs) - 1`` raises ``ValueError``."""
    return _g1_point(_core().kzg_commit(srs, coeffs))


def open_at(srs: G1Bases, coeffs: BufferLike, z: int) -> tuple[int, G1Affine]:
    """``(y, W)``: ``y = p(z)`` and ``W = [(p(X) - y)/(X - z)](tau)]_1``."""
    y, w = _core().kzg_open(srs, coeffs, scalar_to_word(z))
    return scalar_from_word(y), _g1_point(w)


# ------------------------------------------------------------------ Lagrange basis, pairing


def lagrange_basis(monomial: G1Bases, k: int) -> G1Bases:
    """``[L_i(tau)]_1`` for ``i < N = 2^log_size`` from a handle on ``[tau^j]_1`` (at least
    ``N`` points): ``(1/N) sum_j omega^(-i j) [tau^j]_1``, arkworks' radix-2 inverse FFT over
    G1, ``(N/2) log2 N`` GLV scalar multiplications."""
    return _core().g1_lagrange_basis(monomial, k)


def pairing_product_is_one(pairs: Sequence[tuple[G1Affine, bytes]]) -> bool:
    """``prod_i e(A_i, B_i) == 1`` for affine G1 points ``A_i`` and 128-byte EIP-197 G2
    points ``B_i`` (decoded with the twist *and* subgroup checks); ``ValueError`` for a
    malformed point."""
    g1 = g1_to_buffer(a for a, _ in pairs)
    g2 = b"".join(bytes(b) for _, b in pairs)
    return bool(_core().pairing_product_is_one(g1, g2))


# ------------------------------------------------------------- columns kept native (FrVec)


def column(values: Any) -> FrVec:
    """A native column (``FrVec``) from a NumPy integer array, a list of ints or a scalar
    buffer. Values below 2^64 cross as 8-byte words (no Python loop for an array); any other
    int (a cheating witness's ``R - 1``, a channel key) is reduced mod R and crosses as a
    32-byte word."""
    core = _core()
    if isinstance(values, core.FrVec):
        return values
    if isinstance(values, bytes | bytearray | memoryview):
        return core.FrVec.from_words(values)
    if isinstance(values, np.ndarray) and values.dtype.kind in "iu":
        if values.dtype.kind == "u" or not values.size or int(values.min()) >= 0:
            return core.FrVec.from_u64(np.ascontiguousarray(values, dtype="<u8").view(np.uint8))
        values = values.tolist()
    try:
        small = np.array(values, dtype="<u8")
    except (OverflowError, TypeError, ValueError):
        return core.FrVec.from_words(scalars_to_buffer(values, reduce=True))
    return core.FrVec.from_u64(small.view(np.uint8))


def column_ints(values: FrVec) -> list[int]:
    """The Python ints of a native column."""
    return scalars_from_buffer(values.to_words())


def interpolate_blinded(values: FrVec, k: int, r: Sequence[int]) -> FrVec:
    """The coefficients of ``c(X) + r(X)(X^N - 1)`` (PROTOCOL §6 step 2), ``c`` the
    interpolant of ``values`` on ``H`` (``N = 2^k``): one inverse FFT in one buffer."""
    return _core().fr_interpolate_blinded(values, k, scalars_to_buffer(r, reduce=True))


def msm_full(bases: G1Bases, scalars: FrVec) -> G1Affine:
    """``sum_i s_i P_i`` with full-width scalars (arkworks' ``msm_bigint``)."""
    return _g1_point(_core().fr_msm(bases, scalars))


def msm_column(bases: G1Bases, values: FrVec) -> G1Affine:
    """``sum_i c_i P_i`` for a witness column, computed by runs of equal values or by
    small-scalar MSMs where the values allow (the same point as ``msm_full``)."""
    return _g1_point(_core().fr_msm_column(bases, values))


def evaluate_columns(polys: Sequence[FrVec], z: int) -> list[int]:
    """``[p(z) for p in polys]``: the powers of ``z`` once, then a dot product each."""
    words = _core().fr_evaluate_many(list(polys), scalar_to_word(z))
    return [scalar_from_word(words[i : i + 32]) for i in range(0, len(words), 32)]


def open_combination(
    srs: G1Bases, polys: Sequence[FrVec], weights: Sequence[int], z: int
) -> G1Affine:
    """``[(P(X) - P(z))/(X - z)]_1`` for ``P = sum_k weights[k] polys[k]`` (GWC19 §3)."""
    return _g1_point(
        _core().fr_open(
            srs, list(polys), scalars_to_buffer(weights, reduce=True), scalar_to_word(z)
        )
    )


def logup_round2(
    limbs: Sequence[FrVec],
    m: FrVec,
    table: FrVec,
    key: FrVec,
    nonce: FrVec,
    q: FrVec,
    s: FrVec,
    limb_bits: int,
    challenges: tuple[int, int, int],
    A_over_N: int,
) -> tuple[list[FrVec], FrVec, FrVec, FrVec, int]:
    """The round-2 columns ``(h_range_j, h_table, h_agg, phi)`` and the running sum's closing
    value (PROTOCOL §3), every denominator inverted by batch inversion; ``ZeroDivisionError``
    if a challenge meets a limb, table value or key."""
    beta, gamma, delta = challenges
    h_range, h_table, h_agg, phi, closing = _core().logup_round2(
        list(limbs),
        m,
        table,
        key,
        nonce,
        q,
        s,
        limb_bits,
        scalar_to_word(beta),
        scalar_to_word(gamma),
        scalar_to_word(delta),
        scalar_to_word(A_over_N),
    )
    return list(h_range), h_table, h_agg, phi, scalar_from_word(closing)


def quotient_on_coset(
    coeffs: Sequence[FrVec],
    sources: Sequence[tuple[int, int]],
    scalars: Sequence[int],
    code: Sequence[tuple[int, int, int, int]],
    registers: int,
    output: int,
    k: int,
    shift: int,
) -> FrVec:
    """``F[j] = sum_m t_(j+mN) (shift^N)^m``: the folded gates on the coset ``shift H``,
    evaluated by the register program ``code`` (``circuits.expr.VectorProgram``), divided by
    ``Z_H`` and brought back to coefficients (``prover.quotient.quotient_on_coset``)."""
    return _core().quotient_on_coset(
        list(coeffs), *_program_buffers(sources, scalars, code), registers, output, k,
        scalar_to_word(shift),
    )  # fmt: skip


def gates_on_coset(
    columns: Sequence[FrVec],
    sources: Sequence[tuple[int, int]],
    scalars: Sequence[int],
    code: Sequence[tuple[int, int, int, int]],
    registers: int,
    output: int,
    k: int,
    shift: int,
) -> FrVec:
    """The register program alone on columns already on the coset ``shift H``."""
    return _core().gates_on_coset(
        list(columns), *_program_buffers(sources, scalars, code), registers, output, k,
        scalar_to_word(shift),
    )  # fmt: skip


def _program_buffers(
    sources: Sequence[tuple[int, int]],
    scalars: Sequence[int],
    code: Sequence[tuple[int, int, int, int]],
) -> tuple[Any, ScalarBuffer, Any]:
    """A register program as the native core reads it: ``u64`` pairs, scalar words, ``u64``
    quadruples (little-endian)."""
    return (
        np.asarray(sources, dtype="<u8").reshape(-1).view(np.uint8),
        scalars_to_buffer(scalars, reduce=True),
        np.asarray(code, dtype="<u8").reshape(-1).view(np.uint8),
    )


def quotient_unfold(
    folded: Sequence[FrVec],
    inverse: Sequence[Sequence[int]],
    n: int,
    bound: int,
    rho: Sequence[int],
) -> tuple[bool, list[FrVec]]:
    """``t`` from the three folded quotients (``inverse`` the Vandermonde inverse in the
    nodes ``s_c^N``), whether ``t`` has a term above ``bound``, and its blinded chunks."""
    flat = [x for row in inverse for x in row]
    excess, chunks = _core().quotient_unfold(
        list(folded),
        scalars_to_buffer(flat, reduce=True),
        n,
        bound,
        scalars_to_buffer(rho, reduce=True),
    )
    return bool(excess), list(chunks)


def quotient_one_coset(folded: FrVec, node: int, top: Sequence[int], rho: int) -> list[FrVec]:
    """``[t_0, t_1]`` from the folded quotient ``F`` of one coset (``F[j] = t_j + node
    t_(N+j)``, ``node = s^N``) and ``t``'s coefficients above ``N`` (``top``):
    ``t_0 = F - node top + rho X^N``, ``t_1 = top - rho``."""
    chunks = _core().quotient_one_coset(
        folded,
        scalar_to_word(node),
        scalars_to_buffer(top, reduce=True),
        scalar_to_word(rho),
    )
    return list(chunks)


# ------------------------------------------------------------------------- SRS set-up


def powers_of_tau(tau: int, n: int) -> bytes:
    """``[tau^i]_1`` for ``i < n`` as ``64 n`` bytes of EIP-196 points (a development SRS)."""
    return bytes(_core().g1_powers_of_tau(scalar_to_word(tau), n))


def lagrange_from_tau(tau: int, k: int) -> bytes:
    """``[L_i(tau)]_1`` for ``i < 2^k`` with ``L_i(tau) = omega^i (tau^N - 1)/(N (tau -
    omega^i))``, as EIP-196 bytes: ``N`` fixed-base multiplications when tau is known."""
    return bytes(_core().g1_lagrange_from_tau(scalar_to_word(tau), k))


def ptau_points(data: BufferLike) -> bytes:
    """G1 points of a snarkjs ``.ptau`` section (coordinates little-endian in Montgomery form
    ``x 2^256 mod P``) as EIP-196 bytes; ``ValueError`` for a coordinate ``>= P`` or a point
    off the curve."""
    return bytes(_core().ptau_g1_points(data))


def suffix_bases(bases: G1Bases) -> tuple[G1Bases, G1Affine]:
    """The suffix sums ``S_j = sum_(i > j) P_i`` of a basis (a handle) and ``sum_j S_j``."""
    handle, total = _core().suffix_bases(bases)
    return handle, _g1_point(total)


def limb_buckets(bases: G1Bases, values: FrVec, buckets: int) -> G1Bases | None:
    """The bucket sums ``B_t = sum_(i: values_i = t) P_i`` for ``t < buckets`` as bases (``N``
    point additions), or ``None`` when a value is not an integer below ``buckets`` (only a
    cheating witness's limb): ``[sum_i f(values_i) P_i] = sum_t f(t) B_t`` for any ``f``."""
    result: G1Bases | None = _core().limb_buckets(bases, values, buckets)
    return result


def round2_commitments(
    lagrange: G1Bases,
    suffix: tuple[G1Bases, G1Affine],
    round1: dict[str, FrVec],
    limb_names: Sequence[str],
    limb_bits: int,
    round2: dict[str, FrVec],
    challenges: tuple[int, int, int],
    A_over_N: int,
) -> tuple[G1Affine, G1Affine, str]:
    """``[h_agg]`` and ``[phi]`` over the Lagrange basis, by runs of keys and buckets of limb
    values where the columns allow (``native/src/structured.rs``), else by full MSMs of the
    values: the same points either way. The third value says which way each went."""
    beta, gamma, delta = challenges
    suffix_handle, suffix_total = suffix
    agg, phi, how = _core().commit_round2_structured(
        lagrange,
        suffix_handle,
        g1_to_buffer([suffix_total]),
        round1["key"],
        round1["q"],
        round1["s"],
        round1["nonce"],
        [round1[name] for name in limb_names],
        limb_bits,
        round2["h_table"],
        round2["h_agg"],
        round2["phi"],
        scalar_to_word(beta),
        scalar_to_word(gamma),
        scalar_to_word(delta),
        scalar_to_word(A_over_N),
    )
    return _g1_point(agg), _g1_point(phi), str(how)
