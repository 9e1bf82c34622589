"""Multi-scalar multiplication on BN254 G1: sum_i s_i * P_i, by Pippenger's bucket method.

Algorithm (Pippenger 1976; the bucket form of Bernstein–Doumen–Lange–Oosterwijk,
"Faster batch forgery identification", INDOCRYPT 2012, Sec. 4):

1. Reduce each scalar mod R and write it in W windows of c bits as *signed* digits
   d_{i,w} in [-(2^(c-1) - 1), 2^(c-1)] (a digit above 2^(c-1) becomes d - 2^c and carries 1
   into the next window), so s_i = sum_w d_{i,w} 2^(wc).  Signed digits halve the number of
   buckets: -d * P = d * (-P) and -P = (x, -y) is free.
2. For each window w, put P_i (or -P_i) into bucket |d_{i,w}| (one mixed Jacobian addition
   per non-zero digit), then S_w = sum_k k * B_k with the running-sum trick
   (2 additions per bucket).
3. Combine S = sum_w 2^(wc) S_w by Horner's rule (c doublings per window).

Cost, in additions, about W * (n + 2 * 2^(c-1)) with W = ceil((b + 1) / c), where b is the
bit length of the largest scalar: the window c is chosen per call from n (the number of
non-zero scalars) and b by minimising this model with measured weights (a bucket insertion
~1.6 us, a bucket of the running sum ~3.8 us on mpz; only their ratio matters).  At n = 2^16
and 254-bit scalars it picks c = 13, W = 20: ~1.3M insertions, ~2.4 s on one core by the
model; 32-bit scalars get W = 3 (~0.27 s, 7x less), 16-bit scalars W = 2.  Scalars that are
all 0 or 1 skip the buckets and just add the selected points (pairwise tree of batch-affine
additions, ~n/2 additions on average).  Zero scalars and points at infinity cost nothing.

Repeated calls over the same bases (the SRS): build ``prepare_bases(points)`` once and pass
the ``Bases``; a plain list of (x, y) is converted on every call (~1 us per point, which is
more than a 0/1-scalar MSM itself costs).

Measured and rejected: bucket accumulation with batch-affine additions (sort the points by
bucket, then rounds that add the 1st+2nd, 3rd+4th, ... point of every bucket with one
Montgomery batch inversion per round).  An isolated batch-affine addition costs ~1.2-1.7 us
against ~1.4-2.7 us for a mixed Jacobian one, but with the sorting, gathering and rounds an
interleaved A/B on 4096 points (min of 9) gave 16.8/17.5/18.9/25.0 ms per window for
c = 8/9/10/12 against 11.3/12.7/15.2/23.5 ms for the inlined mixed additions used here.
Batch-affine additions do serve the 0/1 fast path (a pairwise tree, no buckets).

Parallelism: ``processes > 1`` forks workers *after* the inputs exist (start method "fork"),
so the points, the digits and the scalars are inherited copy-on-write and never pickled;
each worker computes the window sums S_w of its share of the windows and sends back those
few Jacobian points; the parent (which computes the first share itself) combines them.
Costs: one fork per extra process (~8-15 ms measured, plus copy-on-write faults as
reference counts are touched), and the digit decomposition (numpy, tens of ms at 2^16), done
once in the parent; the window count enters the cost model as ceil(W / processes), so the
windows split evenly (2^16 x 254-bit: c = 13, W = 20, 10 windows each).  ``msm_many`` spreads
whole MSMs over the workers instead.  Small inputs stay in-process.  Forking a process that
runs other threads is only safe if those threads hold no locks the workers need; the
prover's MSMs run in the calling thread and take none.

Native backend: when ``zkmeter_native`` is built and selected (``verifier.backend``),
``msm`` and ``msm_many`` run arkworks' MSM through ``prover.native`` (bases converted once per
prepared ``Bases``); ``msm_python`` is the pure-Python Pippenger, kept as the reference.
"""

import multiprocessing
import multiprocessing.connection
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import gmpy2
import numpy as np
import numpy.typing as npt
from py_ecc.optimized_bn128.optimized_curve import Z1, add, multiply

from prover import native
from prover.g1 import (
    AFFINE_INFINITY,
    JACOBIAN_INFINITY,
    P_MPZ,
    Affine,
    Jacobian,
    batch_affine_add,
    jacobian_add,
    jacobian_double,
    jacobian_to_affine,
)
from verifier.constants import R
from verifier.curve import G1Affine, g1_from_affine, g1_to_affine

_ONE = gmpy2.mpz(1)

# Measured weights of the cost model (microseconds, CPython 3.11 + gmpy2, one core).
COST_BUCKET_INSERT_US = 1.6  # one inlined mixed addition into a bucket (Z of full size)
COST_BUCKET_REDUCE_US = 3.8  # two Jacobian additions per bucket in the running sum
MAX_WINDOW_BITS = 22

# Below this estimated single-process cost (microseconds), processes > 1 runs in-process:
# a fork and the result pipe cost a few milliseconds.
PARALLEL_MIN_COST_US = 40_000.0


class MSMInputError(ValueError):
    """Points and scalars do not match, or a point or scalar is malformed."""


@dataclass(frozen=True)
class Bases:
    """Affine bases prepared once for many MSMs (e.g. the SRS): mpz coordinates, the
    negated y's used by signed digits, and which points are finite.  Building this costs
    ~0.3 us per point; pass it to ``msm``/``msm_many`` instead of a list of tuples to pay it
    once."""

    xs: list[Any]
    ys: list[Any]
    ys_signed: list[Any]  # ys followed by the negated ys: index i + n picks -P_i
    finite: npt.NDArray[np.bool_]

    def __len__(self) -> int:
        return len(self.xs)


def prepare_bases(points: Sequence[G1Affine] | Bases) -> Bases:
    """Convert affine points ((0, 0) = infinity) to a ``Bases`` (idempotent)."""
    if isinstance(points, Bases):
        return points
    mpz = gmpy2.mpz
    xs = [mpz(p[0]) for p in points]
    ys = [mpz(p[1]) for p in points]
    neg_ys = [(P_MPZ - y) % P_MPZ for y in ys]
    finite = np.fromiter(
        (not (x == 0 and y == 0) for x, y in zip(xs, ys, strict=True)),
        dtype=np.bool_,
        count=len(xs),
    )
    return Bases(xs, ys, ys + neg_ys, finite)


def msm_reference(points: Sequence[G1Affine], scalars: Sequence[int]) -> G1Affine:
    """sum_i s_i P_i with py_ecc's optimized_bn128 ``multiply`` and ``add``: the oracle the
    fast path is tested against, and the baseline of the benchmarks (~5.3 ms per point)."""
    if len(points) != len(scalars):
        raise MSMInputError(f"{len(points)} points but {len(scalars)} scalars")
    acc = Z1
    for xy, s in zip(points, scalars, strict=True):
        acc = add(acc, multiply(g1_from_affine((int(xy[0]), int(xy[1]))), int(s) % R))
    return g1_to_affine(acc)


# ----------------------------------------------------------------------------- digits


def _scalar_bytes(scalars: Sequence[int]) -> tuple[npt.NDArray[np.uint8], list[int]]:
    """Scalars reduced mod R, as an (n, 40) little-endian byte matrix (zero padded so that
    any 32-bit read at a window's byte offset stays inside) and as a list of ints."""
    reduced = [int(s) % R for s in scalars]
    raw = b"".join(s.to_bytes(40, "little") for s in reduced)
    return np.frombuffer(raw, dtype=np.uint8).reshape(len(reduced), 40), reduced


def signed_digits(
    byte_matrix: npt.NDArray[np.uint8], c: int, windows: int
) -> npt.NDArray[np.int64]:
    """Signed base-2^c digits, shape (windows, n): digits d_w in [-(2^(c-1) - 1), 2^(c-1)]
    with s = sum_w d_w 2^(wc).  Requires windows * c >= bit length + 1 so no carry is left."""
    if not 1 <= c <= 24:
        raise ValueError(f"window of {c} bits: must be in 1..24")
    n = byte_matrix.shape[0]
    b = byte_matrix.astype(np.uint64)
    mask = np.uint64((1 << c) - 1)
    half = 1 << (c - 1)
    out = np.empty((windows, n), dtype=np.int64)
    carry = np.zeros(n, dtype=np.int64)
    for w in range(windows):
        off = w * c
        j, s = divmod(off, 8)
        if j + 3 < byte_matrix.shape[1]:
            word = b[:, j] | (b[:, j + 1] << 8) | (b[:, j + 2] << 16) | (b[:, j + 3] << 24)
            raw = ((word >> np.uint64(s)) & mask).astype(np.int64)
        else:
            raw = np.zeros(n, dtype=np.int64)
        d = raw + carry
        over = d > half
        d[over] -= 1 << c
        carry = over.astype(np.int64)
        out[w] = d
    covered = windows * c
    j, s = divmod(covered, 8)
    high_left = j < byte_matrix.shape[1] and (
        bool((byte_matrix[:, j] >> s).any()) or bool(byte_matrix[:, j + 1 :].any())
    )
    if carry.any() or high_left:
        raise ValueError(
            f"signed_digits: {windows} windows of {c} bits are too few for these scalars"
        )
    return out


def windows_for(bits: int, c: int) -> int:
    """Number of signed c-bit windows for scalars of at most ``bits`` bits: ceil((bits+1)/c)."""
    return -(-(bits + 1) // c)


def estimated_cost_us(n: int, bits: int, c: int, processes: int = 1) -> float:
    """Cost model (microseconds) of the bucket method with signed c-bit windows, windows
    dealt out evenly to ``processes`` workers: ceil(W / processes) * (n * insert + 2^(c-1) *
    reduce)."""
    w = windows_for(bits, c)
    per_window = n * COST_BUCKET_INSERT_US + (1 << (c - 1)) * COST_BUCKET_REDUCE_US
    return -(-w // processes) * per_window


def best_window(n: int, bits: int, processes: int = 1) -> int:
    """The window c (bits) minimising ``estimated_cost_us`` for n non-zero scalars of at most
    ``bits`` bits (ties go to the smaller c, which uses less memory)."""
    top = max(1, min(MAX_WINDOW_BITS, bits + 1))
    return min(range(1, top + 1), key=lambda c: (estimated_cost_us(n, bits, c, processes), c))


# ------------------------------------------------------------------------ window sums


def _window_sum(bases: Bases, digits: npt.NDArray[np.int64], c: int) -> Jacobian:
    """S = sum_i d_i P_i for one window's signed digits |d_i| <= 2^(c-1): P_i (or -P_i for
    a negative digit) goes into bucket |d_i| by a mixed Jacobian addition, inlined here
    because it is the hot loop; then S = sum_k k B_k by the running sum (from the top bucket
    down: running += B_k, total += running)."""
    Pm = P_MPZ
    xs = bases.xs
    ys_signed = bases.ys_signed  # index i is P_i's y, index i + n is -P_i's y
    nz = np.flatnonzero(digits)
    d_nz = digits[nz]
    y_index = nz + len(xs) * (d_nz < 0)
    buckets: list[Any] = [None] * ((1 << (c - 1)) + 1)
    for i, yi, d in zip(nz.tolist(), y_index.tolist(), np.abs(d_nz).tolist(), strict=True):
        x = xs[i]
        y = ys_signed[yi]
        bucket = buckets[d]
        if bucket is None:
            buckets[d] = (x, y, _ONE)
            continue
        X1, Y1, Z1 = bucket
        Z1Z1 = Z1 * Z1 % Pm
        H = (x * Z1Z1 - X1) % Pm
        r = (y * Z1 * Z1Z1 - Y1) % Pm
        if not H:
            buckets[d] = jacobian_double(bucket) if not r else None
            continue
        HH = H * H % Pm
        HHH = H * HH % Pm
        V = X1 * HH % Pm
        X3 = (r * r - HHH - 2 * V) % Pm
        buckets[d] = (X3, (r * (V - X3) - Y1 * HHH) % Pm, Z1 * H % Pm)
    running = JACOBIAN_INFINITY
    total = JACOBIAN_INFINITY
    started = False
    for k in range(len(buckets) - 1, 0, -1):
        bucket = buckets[k]
        if bucket is not None:
            running = jacobian_add(running, bucket)
            started = True
        if started:
            total = jacobian_add(total, running)
    return total


def _combine_windows(sums: Sequence[Jacobian], c: int) -> Jacobian:
    """sum_w 2^(wc) S_w by Horner's rule from the top window down."""
    acc = JACOBIAN_INFINITY
    for s in reversed(sums):
        for _ in range(c):
            acc = jacobian_double(acc)
        acc = jacobian_add(acc, s)
    return acc


def _tree_sum(xs: list[Any], ys: list[Any]) -> Affine:
    """Sum of finite affine points by a pairwise tree: each level adds disjoint pairs with
    one batch inversion (``batch_affine_add``) and drops pairs that cancel."""
    while len(xs) > 1:
        half = len(xs) // 2
        sx, sy = batch_affine_add(
            xs[0 : 2 * half : 2], ys[0 : 2 * half : 2], xs[1 : 2 * half : 2], ys[1 : 2 * half : 2]
        )
        keep = [i for i in range(half) if not (sx[i] == 0 and sy[i] == 0)]
        nx = [sx[i] for i in keep]
        ny = [sy[i] for i in keep]
        if len(xs) % 2:
            nx.append(xs[-1])
            ny.append(ys[-1])
        xs, ys = nx, ny
    if not xs:
        return AFFINE_INFINITY
    return (xs[0], ys[0])


# Few distinct wide scalars (a column of channel keys, say): add the points of each value
# first (about 1 us a point, batch-affine), then one MSM over the distinct values.
GROUPING_MIN_BITS = 16
GROUPING_RATIO = 8  # group when there are at least this many points per distinct value


def _grouped_by_scalar(
    xs: list[Any], ys: list[Any], reduced: list[int], live: list[int]
) -> tuple[list[G1Affine], list[int]] | None:
    """sum_i s_i P_i = sum_v v (sum_{s_i = v} P_i): the per-value point sums and values, or
    None when the scalars are too varied for this to pay (more than n / GROUPING_RATIO)."""
    limit = len(live) // GROUPING_RATIO
    groups: dict[int, list[int]] = {}
    for i in live:
        members = groups.get(reduced[i])
        if members is None:
            if len(groups) >= limit:
                return None
            groups[reduced[i]] = [i]
        else:
            members.append(i)
    points: list[G1Affine] = []
    values: list[int] = []
    for value, members in groups.items():
        total = _tree_sum([xs[i] for i in members], [ys[i] for i in members])
        if not (total[0] == 0 and total[1] == 0):
            points.append(_to_int_affine(total))
            values.append(value)
    return points, values


# --------------------------------------------------------------------------- forking

T = TypeVar("T")
U = TypeVar("U")


def _child_main(
    fn: Callable[[T], U], share: T, conn: multiprocessing.connection.Connection
) -> None:
    try:
        conn.send((True, fn(share)))
    except BaseException as exc:  # report any failure to the parent, which re-raises
        conn.send((False, f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


def fork_map(fn: Callable[[T], U], shares: Sequence[T]) -> list[U]:
    """[fn(s) for s in shares], shares[1:] each in a forked child, shares[0] in this process.

    Children are forked now, so they inherit everything ``fn`` closes over (no pickling);
    only the results travel back through a pipe, pickled.  A child's failure raises
    RuntimeError here; children are always joined (or terminated if this process fails)."""
    if len(shares) <= 1 or multiprocessing.current_process().daemon:
        # A daemonic process (e.g. a pool worker) may not fork children: run in-process.
        return [fn(s) for s in shares]
    ctx = multiprocessing.get_context("fork")
    children = []
    try:
        for share in shares[1:]:
            recv_end, send_end = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_child_main, args=(fn, share, send_end), daemon=True)
            proc.start()
            send_end.close()
            children.append((proc, recv_end))
        results = [fn(shares[0])]
        for proc, recv_end in children:
            try:
                ok, value = recv_end.recv()
            except EOFError:
                raise RuntimeError(f"MSM worker {proc.pid} died without a result") from None
            if not ok:
                raise RuntimeError(f"MSM worker {proc.pid} failed: {value}")
            results.append(value)
        return results
    finally:
        for proc, recv_end in children:
            recv_end.close()
            if proc.is_alive():
                proc.join(timeout=0.5)
            if proc.is_alive():
                proc.terminate()
                proc.join()


def _split(items: Sequence[T], parts: int) -> list[list[T]]:
    """Deal ``items`` into ``parts`` contiguous, near-equal, non-empty chunks."""
    parts = max(1, min(parts, len(items)))
    q, rem = divmod(len(items), parts)
    out: list[list[T]] = []
    start = 0
    for k in range(parts):
        size = q + (1 if k < rem else 0)
        out.append(list(items[start : start + size]))
        start += size
    return out


# ------------------------------------------------------------------------------ MSM


def _check_lengths(n_points: int, scalars: Sequence[int], what: str = "scalars") -> None:
    if n_points != len(scalars):
        raise MSMInputError(
            f"{n_points} points but {len(scalars)} {what}: index {min(n_points, len(scalars))}"
            " has no partner"
        )


def msm(points: Sequence[G1Affine] | Bases, scalars: Sequence[int], processes: int = 1) -> G1Affine:
    """sum_i scalars[i] * points[i] on BN254 G1, affine in and out ((0, 0) = infinity).

    On the native backend, arkworks' MSM (``prover.native.msm_ints``; ``processes`` is
    ignored, the native pool is parallel); otherwise ``msm_python``.  Raises MSMInputError
    if the lengths differ."""
    if processes < 1:
        raise ValueError(f"processes must be >= 1, got {processes}")
    if native.use_native():
        _check_lengths(len(points), scalars)
        return native.msm_ints(points, scalars)
    return msm_python(points, scalars, processes)


def msm_python(
    points: Sequence[G1Affine] | Bases, scalars: Sequence[int], processes: int = 1
) -> G1Affine:
    """sum_i scalars[i] * points[i] by the pure-Python Pippenger of this module.

    Scalars are reduced mod R; zero scalars and points at infinity are skipped.  Points are
    trusted to be on the curve (they come from the SRS, validated once at load).
    ``processes`` > 1 divides the windows between forked workers when the estimated cost
    justifies a fork.  Raises MSMInputError if the lengths differ."""
    if processes < 1:
        raise ValueError(f"processes must be >= 1, got {processes}")
    bases = prepare_bases(points)
    _check_lengths(len(bases), scalars)
    byte_matrix, reduced = _scalar_bytes(scalars)
    live = np.flatnonzero(bases.finite & byte_matrix.any(axis=1))
    n_live = len(live)
    if n_live == 0:
        return AFFINE_INFINITY
    bits = max(reduced[i] for i in live.tolist()).bit_length()
    xs = bases.xs
    ys = bases.ys
    if bits > GROUPING_MIN_BITS:
        grouped = _grouped_by_scalar(xs, ys, reduced, live.tolist())
        if grouped is not None:
            points, values = grouped
            return msm_python(points, values, processes)

    if bits == 1:
        # All live scalars are 1: the sum of the selected points.
        sel = live.tolist()
        if processes == 1 or n_live * COST_BUCKET_INSERT_US < PARALLEL_MIN_COST_US:
            return _to_int_affine(_tree_sum([xs[i] for i in sel], [ys[i] for i in sel]))
        parts = fork_map(
            lambda chunk: _tree_sum([xs[i] for i in chunk], [ys[i] for i in chunk]),
            _split(sel, processes),
        )
        finite_parts = [p for p in parts if not (p[0] == 0 and p[1] == 0)]
        return _to_int_affine(_tree_sum([p[0] for p in finite_parts], [p[1] for p in finite_parts]))

    if processes > 1 and estimated_cost_us(n_live, bits, best_window(n_live, bits)) < (
        PARALLEL_MIN_COST_US
    ):
        processes = 1
    c = best_window(n_live, bits, processes)
    w = windows_for(bits, c)
    digits = signed_digits(byte_matrix[live], c, w)
    # Window sums index the digits by position in ``live``; give them the matching bases.
    if n_live == len(bases):
        sub = bases
    else:
        sel = live.tolist()
        n = len(bases)
        sub_ys = [ys[i] for i in sel]
        sub = Bases(
            [xs[i] for i in sel],
            sub_ys,
            sub_ys + [bases.ys_signed[i + n] for i in sel],
            bases.finite[live],
        )

    def window_sums(ws: list[int]) -> list[Jacobian]:
        return [_window_sum(sub, digits[k], c) for k in ws]

    if processes == 1 or w == 1:
        sums = window_sums(list(range(w)))
    else:
        sums = [s for part in fork_map(window_sums, _split(range(w), processes)) for s in part]
    return _to_int_affine(jacobian_to_affine(_combine_windows(sums, c)))


def msm_many(
    points: Sequence[G1Affine] | Bases,
    scalar_vectors: Sequence[Sequence[int]],
    processes: int = 1,
) -> list[G1Affine]:
    """[msm(points, v) for v in scalar_vectors], with whole MSMs spread over ``processes``
    forked workers that inherit the bases and the scalar vectors (nothing is pickled but
    the resulting points).  The vectors are dealt in contiguous chunks; when there are
    fewer vectors than processes the spare processes split single MSMs by windows.  On the
    native backend the MSMs run one after the other on arkworks (itself parallel)."""
    if processes < 1:
        raise ValueError(f"processes must be >= 1, got {processes}")
    if native.use_native():
        for k, v in enumerate(scalar_vectors):
            _check_lengths(len(points), v, f"scalars in vector {k}")
        handle = native.bases_for(points)
        return [native.msm_ints(handle, v) for v in scalar_vectors]
    bases = prepare_bases(points)
    for k, v in enumerate(scalar_vectors):
        _check_lengths(len(bases), v, f"scalars in vector {k}")
    m = len(scalar_vectors)
    if m == 0:
        return []
    if processes == 1 or m == 1:
        return [msm_python(bases, v, processes) for v in scalar_vectors]
    if m < processes:
        # Each vector gets its own worker group would need nested forks; keep it simple.
        return [msm_python(bases, v, processes) for v in scalar_vectors]

    def run(indices: list[int]) -> list[G1Affine]:
        return [msm_python(bases, scalar_vectors[k], 1) for k in indices]

    # Longest-processing-time-first: deal vectors, costliest first, to the least loaded share.
    costs = [_vector_cost(len(bases), v) for v in scalar_vectors]
    shares: list[list[int]] = [[] for _ in range(processes)]
    loads = [0.0] * processes
    for k in sorted(range(m), key=lambda k: -costs[k]):
        j = loads.index(min(loads))
        shares[j].append(k)
        loads[j] += costs[k]
    shares = [s for s in shares if s]
    results: list[G1Affine] = [(0, 0)] * m
    for share, part in zip(shares, fork_map(run, shares), strict=True):
        for k, p in zip(share, part, strict=True):
            results[k] = p
    return results


def _vector_cost(n: int, scalars: Sequence[int]) -> float:
    """Cost-model estimate for one MSM of ``n`` points (used to balance ``msm_many``)."""
    bits = max((int(s) % R for s in scalars), default=0).bit_length()
    if bits == 0:
        return 0.0
    if bits == 1:
        return n * COST_BUCKET_INSERT_US
    return estimated_cost_us(n, bits, best_window(n, bits))


def _to_int_affine(a: Affine) -> G1Affine:
    return (int(a[0]), int(a[1]))
