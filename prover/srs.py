"""The KZG structured reference string (powers of tau) on BN254: generation, files, Lagrange basis.

An SRS of ``n`` powers is ``([tau^0]_1, ..., [tau^(n-1)]_1; [1]_2, [tau]_2)`` (Kate, Zaverucha,
Goldberg 2010, §3.2), where ``[a]_1 = a·G1`` and ``[a]_2 = a·G2`` for the EIP-196/197
generators. It commits to polynomials of degree ``<= n - 1`` (``max_degree``).

Sources of an SRS:

* ``SRS.insecure_development(n)``: tau drawn locally, so whoever ran it can forge proofs.
  For tests and the demo only; it warns with ``InsecureSRSWarning``.
* ``import_ptau(path)``: the G1/G2 powers of a snarkjs ``.ptau`` file (a multi-party
  powers-of-tau ceremony such as the Hermez/Polygon one).
* ``SRS.load(path)``: our own file format (``docs/SRS.md``), validated point by point and
  with one pairing-product check of the powers' consistency.

Points: G1 as affine ``(x, y)`` ints with ``(0, 0)`` the point at infinity (EIP-196); G2 as the
point type of ``verifier.curve`` (py_ecc), encoded per EIP-197.
"""

from __future__ import annotations

import math
import os
import secrets
import struct
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Final, overload

import gmpy2
import numpy as np
from py_ecc.fields import optimized_bn128_FQ2 as FQ2
from py_ecc.optimized_bn128.optimized_curve import G2, add, eq, is_inf, multiply, neg, normalize

from prover import native
from prover.g1 import (
    affine_add,
    batch_to_affine,
    jacobian_add,
    jacobian_add_affine,
    jacobian_double,
    jacobian_neg,
)
from prover.msm import _split, fork_map, msm
from verifier.constants import P, R
from verifier.curve import (
    G1_BYTES,
    G1_GENERATOR_AFFINE,
    G2_BYTES,
    G1Affine,
    G2Point,
    InvalidPointError,
    g1_from_affine,
    g1_from_bytes,
    g1_is_on_curve_affine,
    g1_to_bytes,
    g2_from_bytes,
    g2_from_coefficients,
    g2_to_bytes,
    pairing_product_is_one,
)
from verifier.fr import batch_inverse, powers, root_of_unity
from verifier.transcript import keccak256

SRS_MAGIC: Final[bytes] = b"ZKMSRS01"
LAGRANGE_MAGIC: Final[bytes] = b"ZKMLAG01"
CHECKSUM_BYTES: Final[int] = 32

_JACOBIAN_INFINITY: Final[tuple[Any, Any, Any]] = (gmpy2.mpz(1), gmpy2.mpz(1), gmpy2.mpz(0))

ProgressCallback = Callable[[int, int], None]
"""Called as ``progress(done, total)`` during long computations."""


class SRSError(ValueError):
    """An SRS (or a file meant to hold one) is malformed or inconsistent; the message says how."""


class InsecureSRSWarning(UserWarning):
    """Warns that an SRS was generated from a locally known tau (development only)."""


# --------------------------------------------------------------------------------------------
# Points stored as bytes


class G1Points(Sequence[G1Affine]):
    """Affine G1 points held as their EIP-196 encoding (``64 n`` bytes), decoded on access.

    What an SRS or a Lagrange basis of 2^20 points is kept as: 64 MiB of bytes instead of a
    million Python tuples. Indexing decodes one point, slicing (step 1) gives another
    ``G1Points`` over the same bytes, iteration decodes them all. The native core reads
    ``raw`` in one call (``prover.native.bases_for`` keeps the decoded handle on the object,
    so bases cross the boundary once). Points are not checked here: an SRS checks them when
    it is loaded (``SRS.from_bytes``), a computed basis is correct by construction.
    """

    def __init__(self, raw: bytes) -> None:
        if len(raw) % G1_BYTES:
            raise SRSError(f"{len(raw)} bytes is not a whole number of 64-byte G1 points")
        self.raw = bytes(raw)

    def __len__(self) -> int:
        return len(self.raw) // G1_BYTES

    @overload
    def __getitem__(self, index: int) -> G1Affine: ...

    @overload
    def __getitem__(self, index: slice) -> G1Points: ...

    def __getitem__(self, index: int | slice) -> G1Affine | G1Points:
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step != 1:
                return G1Points(b"".join(g1_to_bytes(self[i]) for i in range(start, stop, step)))
            return G1Points(self.raw[start * G1_BYTES : max(start, stop) * G1_BYTES])
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"point {index} of {n}")
        at = index * G1_BYTES
        return (
            int.from_bytes(self.raw[at : at + 32], "big"),
            int.from_bytes(self.raw[at + 32 : at + G1_BYTES], "big"),
        )

    def __iter__(self) -> Iterator[G1Affine]:
        raw, from_bytes = self.raw, int.from_bytes
        for at in range(0, len(raw), G1_BYTES):
            yield (from_bytes(raw[at : at + 32], "big"), from_bytes(raw[at + 32 : at + 64], "big"))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, G1Points):
            return self.raw == other.raw
        if isinstance(other, Sequence):
            return len(other) == len(self) and all(
                tuple(a) == tuple(b) for a, b in zip(self, other, strict=True)
            )
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"G1Points(n={len(self)})"


def g1_points_bytes(points: Sequence[G1Affine]) -> bytes:
    """The EIP-196 bytes of points (no copy for ``G1Points``)."""
    if isinstance(points, G1Points):
        return points.raw
    return b"".join(g1_to_bytes(p) for p in points)


def infinity_index(points: Sequence[G1Affine]) -> int | None:
    """The index of the first point at infinity (64 zero bytes), or None."""
    if isinstance(points, G1Points):
        rows = np.frombuffer(points.raw, dtype=np.uint8).reshape(-1, G1_BYTES)
        zero = np.flatnonzero(~rows.any(axis=1))
        return int(zero[0]) if zero.size else None
    for i, pt in enumerate(points):
        if pt[0] == 0 and pt[1] == 0:
            return i
    return None


# --------------------------------------------------------------------------------------------
# The SRS value


@dataclass(frozen=True, eq=False)
class SRS:
    """Powers of tau: ``g1_powers[i] = [tau^i]_1`` for ``i < n``, ``g2_one = [1]_2``,
    ``g2_tau = [tau]_2``.

    ``digest`` is keccak256 of the canonical encoding (the file of ``docs/SRS.md`` without its
    trailing checksum, i.e. the checksum itself), and ``max_degree = n - 1``. Construction does
    not validate the points (use ``validate`` or ``SRS.load``); it normalises the G2 points
    to Z = 1 and computes the digest. Two SRSs are equal iff their digests are (hashable).
    """

    g1_powers: Sequence[G1Affine]  # a list, or G1Points (bytes) for large SRSs
    g2_one: G2Point
    g2_tau: G2Point
    digest: bytes = field(init=False, repr=False)
    max_degree: int = field(init=False)

    def __post_init__(self) -> None:
        if len(self.g1_powers) < 2:
            raise SRSError(f"an SRS needs at least 2 G1 powers, got {len(self.g1_powers)}")
        object.__setattr__(self, "g2_one", _g2_normalized(self.g2_one))
        object.__setattr__(self, "g2_tau", _g2_normalized(self.g2_tau))
        body = _encode_srs_body(self.g1_powers, self.g2_one, self.g2_tau)
        object.__setattr__(self, "digest", keccak256(body))
        object.__setattr__(self, "max_degree", len(self.g1_powers) - 1)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SRS) and other.digest == self.digest

    def __hash__(self) -> int:
        return hash(self.digest)

    def __repr__(self) -> str:
        return f"SRS(n_powers={len(self.g1_powers)}, digest=0x{self.digest.hex()[:16]}...)"

    @property
    def n_powers(self) -> int:
        """The number of G1 powers, ``max_degree + 1``."""
        return len(self.g1_powers)

    # ---- generation -------------------------------------------------------------------------

    @classmethod
    def insecure_development(
        cls,
        n_powers: int,
        seed: int | None = None,
        progress: ProgressCallback | None = None,
        lagrange_log_sizes: Sequence[int] = (),
    ) -> SRS:
        """A development SRS from a tau that this process knows: INSECURE, tests/demo only.

        With ``seed`` the SRS is deterministic (tau derived from the seed by keccak256);
        without it tau comes from ``secrets``. For each k in ``lagrange_log_sizes`` the
        Lagrange basis is computed while tau is still known (N fixed-base multiplications
        instead of the G1 FFT) and cached like any other (see ``lagrange_basis``).
        """
        srs, tau = insecure_development_with_tau(n_powers, seed, progress)
        _remember_validated(srs.digest)  # made from a known tau: consistent by construction
        for k in lagrange_log_sizes:
            remember_lagrange_basis(srs, k, lagrange_basis_from_tau(tau, k))
        return srs

    # ---- files ------------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """The file encoding of ``docs/SRS.md``: body then keccak256(body)."""
        body = _encode_srs_body(self.g1_powers, self.g2_one, self.g2_tau)
        return body + keccak256(body)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the SRS to ``path`` (atomically: a temporary file then a rename)."""
        target = Path(path)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_bytes(self.to_bytes())
        tmp.replace(target)

    @classmethod
    def from_bytes(cls, data: bytes, check_pairing: bool = True) -> SRS:
        """Decode and validate an SRS file's bytes (see ``load``)."""
        header = len(SRS_MAGIC) + 4
        if len(data) < header:
            raise SRSError(f"SRS file too short: {len(data)} bytes, the header alone is {header}")
        if data[: len(SRS_MAGIC)] != SRS_MAGIC:
            raise SRSError(
                f"not an SRS file: magic {data[: len(SRS_MAGIC)]!r}, expected {SRS_MAGIC!r}"
            )
        (count,) = struct.unpack(">I", data[len(SRS_MAGIC) : header])
        expected = header + count * G1_BYTES + 2 * G2_BYTES + CHECKSUM_BYTES
        if len(data) != expected:
            raise SRSError(
                f"SRS file size {len(data)} does not match its header: {count} G1 points "
                f"need {expected} bytes"
            )
        body, checksum = data[:-CHECKSUM_BYTES], data[-CHECKSUM_BYTES:]
        if keccak256(body) != checksum:
            raise SRSError("SRS checksum mismatch: the file is corrupted or was modified")
        g1_powers: Sequence[G1Affine]
        if native.use_native():
            # One native pass decodes and checks every point (coordinates < P, on the curve);
            # the handle is kept on the points for the proving key's MSMs.
            g1_powers = G1Points(data[header : header + count * G1_BYTES])
            try:
                native.bases_for(g1_powers)
            except ValueError as exc:
                raise SRSError(f"a G1 power is not a valid point: {exc}") from exc
        else:
            g1_list: list[G1Affine] = []
            for i in range(count):
                off = header + i * G1_BYTES
                try:
                    g1_list.append(g1_from_bytes(data[off : off + G1_BYTES]))
                except InvalidPointError as exc:
                    raise SRSError(f"G1 power {i} is not a valid point: {exc}") from exc
            g1_powers = g1_list
        off = header + count * G1_BYTES
        g2s = []
        for name in ("[1]_2", "[tau]_2"):
            try:
                g2s.append(g2_from_bytes(data[off : off + G2_BYTES]))
            except InvalidPointError as exc:
                raise SRSError(f"G2 point {name} is not a valid point: {exc}") from exc
            off += G2_BYTES
        srs = cls(g1_powers, g2s[0], g2s[1])
        srs.validate(check_pairing=check_pairing, check_points=False)
        return srs

    @classmethod
    def load(cls, path: str | os.PathLike[str], check_pairing: bool = True) -> SRS:
        """Read an SRS file; validate magic, sizes, checksum, every point (on the curve, G2 in
        its subgroup) and, unless ``check_pairing`` is False, the powers' consistency
        (``validate``). Raises ``SRSError`` naming what is wrong."""
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise SRSError(f"cannot read SRS file {path}: {exc.strerror}") from exc
        return cls.from_bytes(data, check_pairing=check_pairing)

    # ---- validation -------------------------------------------------------------------------

    def validate(self, check_pairing: bool = True, check_points: bool = True) -> None:
        """Check that this is a powers-of-tau SRS; raise ``SRSError`` otherwise.

        * ``g1_powers[0] = G1``, ``g2_one = G2`` (the EIP-196/197 generators);
        * no power and not ``[tau]_2`` is the point at infinity (tau != 0);
        * with ``check_points``: every G1 point on the curve (G2 points come from
          ``verifier.curve`` decoding, which checks curve and subgroup);
        * with ``check_pairing``: for a random rho, with ``A = sum_i rho^i [tau^(i+1)]_1`` and
          ``B = sum_i rho^i [tau^i]_1`` (``i < n - 1``), ``e(A, [1]_2) = e(B, [tau]_2)``,
          checked as ``e(A, [1]_2) · e(-B, [tau]_2) = 1``. If ``P_i`` are the claimed powers
          and ``t`` the log of ``[tau]_2``, this says ``sum rho^i (P_(i+1) - t P_i) = 0``; a
          non-zero vector of differences passes for at most ``n - 2`` values of rho
          (Schwartz–Zippel), so ``P_i = t^i G1`` for all ``i`` except with probability
          ``(n - 2) / R``.
        """
        if tuple(self.g1_powers[0]) != G1_GENERATOR_AFFINE:
            raise SRSError("G1 power 0 is not the G1 generator (1, 2)")
        if not eq(self.g2_one, G2):
            raise SRSError("[1]_2 is not the G2 generator of EIP-197")
        at_infinity = infinity_index(self.g1_powers)
        if at_infinity is not None:
            raise SRSError(f"G1 power {at_infinity} is the point at infinity")
        if check_points:
            if isinstance(self.g1_powers, G1Points) and native.use_native():
                try:
                    native.bases_for(self.g1_powers)
                except ValueError as exc:
                    raise SRSError(f"a G1 power is not on the curve: {exc}") from exc
            else:
                for i, pt in enumerate(self.g1_powers):
                    if not g1_is_on_curve_affine(pt):
                        raise SRSError(f"G1 power {i} is not on the curve y^2 = x^3 + 3")
        if is_inf(self.g2_tau):
            raise SRSError("[tau]_2 is the point at infinity (tau = 0)")
        if check_pairing and not _validated_before(self.digest):
            rho = 1 + secrets.randbelow(R - 1)
            n = len(self.g1_powers)
            # A = sum_(i < n-1) rho^i P_(i+1); B = sum_(i < n-1) rho^i P_i is then
            # P_0 + rho A - rho^(n-1) P_(n-1): one MSM instead of two.
            A = msm(self.g1_powers[1:], powers(rho, n - 1))
            rho_top = pow(rho, n - 1, R)
            B = add(
                add(g1_from_affine(self.g1_powers[0]), multiply(g1_from_affine(A), rho)),
                neg(multiply(g1_from_affine(self.g1_powers[n - 1]), rho_top)),
            )
            pairs = [(g1_from_affine(A), self.g2_one), (neg(B), self.g2_tau)]
            if not pairing_product_is_one(pairs):
                raise SRSError(
                    "the G1 powers are not successive powers of the tau of [tau]_2 "
                    "(pairing check e(A, [1]_2) = e(B, [tau]_2) failed)"
                )
            _remember_validated(self.digest)


def insecure_development_with_tau(
    n_powers: int,
    seed: int | None = None,
    progress: ProgressCallback | None = None,
) -> tuple[SRS, int]:
    """``SRS.insecure_development`` that also returns tau (for tests that need it)."""
    if n_powers < 2:
        raise SRSError(f"an SRS needs at least 2 powers, got {n_powers}")
    warnings.warn(
        "INSECURE: development SRS, tau is known to this process; "
        "never use it to settle real payments",
        InsecureSRSWarning,
        stacklevel=2,
    )
    if seed is None:
        tau = 1 + secrets.randbelow(R - 1)
    else:
        digest = keccak256(b"zkmeter.insecure-srs.v1" + seed.to_bytes(32, "big", signed=True))
        tau = int.from_bytes(digest, "big") % (R - 1) + 1
    g1_powers: Sequence[G1Affine]
    if native.use_native():
        g1_powers = G1Points(native.powers_of_tau(tau, n_powers))
        if progress is not None:
            progress(n_powers, n_powers)
    else:
        scalars = powers(tau, n_powers)
        g1_powers = fixed_base_multiples(G1_GENERATOR_AFFINE, scalars, progress=progress)
    return SRS(g1_powers, G2, multiply(G2, tau)), tau


# --------------------------------------------------------------------------------------------
# Fixed-base scalar multiplication


def _window_bits(n_scalars: int, scalar_bits: int = 254) -> int:
    """The window w minimising precomputation + per-scalar additions:
    ceil(bits/w) * (2^w + n) mixed/Jacobian additions."""
    best_w, best_cost = 1, math.inf
    for w in range(2, 17):
        cost = math.ceil(scalar_bits / w) * ((1 << w) + n_scalars)
        if cost < best_cost:
            best_w, best_cost = w, cost
    return best_w


def fixed_base_multiples(
    base: G1Affine,
    scalars: Sequence[int],
    progress: ProgressCallback | None = None,
    chunk: int = 4096,
) -> list[G1Affine]:
    """``[s·base for s in scalars]`` by fixed-base windowed multiplication.

    With window ``w`` and ``m = ceil(254 / w)`` windows, precompute ``T[j][d] = d·2^(w j)·base``
    for ``1 <= d < 2^w`` (Jacobian, then one batch conversion to affine); then each
    ``s = sum_j d_j 2^(w j)`` costs at most ``m`` mixed additions ``sum_j T[j][d_j]`` and no
    doubling. Results are converted to affine in chunks with one inversion per chunk.

    On the native backend, multiples of the generator are arkworks' fixed-base
    ``batch_mul`` (``prover.native.generator_multiples``).
    """
    reduced = [int(s) % R for s in scalars]
    total = len(reduced)
    if total == 0:
        return []
    if tuple(base) == G1_GENERATOR_AFFINE and native.use_native():
        out_native = native.g1_from_buffer(
            native.generator_multiples(native.scalars_to_buffer(reduced))
        )
        if progress is not None:
            progress(total, total)
        return out_native
    w = _window_bits(total)
    mask = (1 << w) - 1
    n_windows = math.ceil(R.bit_length() / w)
    table_jac: list[tuple[Any, Any, Any]] = []
    window_base = (gmpy2.mpz(base[0]), gmpy2.mpz(base[1]), gmpy2.mpz(1))
    for _ in range(n_windows):
        acc = window_base
        table_jac.append(acc)
        for _d in range(2, 1 << w):
            acc = jacobian_add(acc, window_base)
            table_jac.append(acc)
        for _ in range(w):
            window_base = jacobian_double(window_base)
    flat = batch_to_affine(table_jac)
    # table[j][d - 1] = d * 2^(w j) * base
    stride = (1 << w) - 1
    tables = [flat[j * stride : (j + 1) * stride] for j in range(n_windows)]
    out: list[G1Affine] = []
    for start in range(0, total, chunk):
        jac: list[tuple[Any, Any, Any]] = []
        for s in reduced[start : start + chunk]:
            acc = _JACOBIAN_INFINITY
            j = 0
            while s:
                d = s & mask
                if d:
                    acc = jacobian_add_affine(acc, tables[j][d - 1])
                s >>= w
                j += 1
            jac.append(acc)
        out.extend((int(x), int(y)) for x, y in batch_to_affine(jac))
        if progress is not None:
            progress(len(out), total)
    return out


# --------------------------------------------------------------------------------------------
# Lagrange basis


_LAGRANGE_MEMO: dict[tuple[bytes, int], Sequence[G1Affine]] = {}


def cache_dir() -> Path:
    """The on-disk cache directory: ``$ZKMETER_CACHE`` or ``~/.cache/zkmeter``."""
    env = os.environ.get("ZKMETER_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "zkmeter"


def lagrange_cache_path(srs: SRS, k: int) -> Path:
    """Where ``lagrange_basis(srs, log_size)`` is cached on disk."""
    return cache_dir() / f"lagrange-{srs.digest.hex()}-{k}.bin"


def lagrange_basis_is_cached(srs: SRS, k: int) -> bool:
    """Whether ``lagrange_basis(srs, k)`` will come from memory or the disk cache, not from the
    G1 FFT (minutes at ``k = 20``)."""
    return (srs.digest, k) in _LAGRANGE_MEMO or lagrange_cache_path(srs, k).exists()


def lagrange_basis_from_tau(tau: int, k: int) -> Sequence[G1Affine]:
    """[L_i(tau)]_1 when tau is known: L_i(tau) = omega^i (tau^N - 1) / (N (tau - omega^i)).

    N scalars from one batch inversion, then N fixed-base multiplications of [1]_1 (natively:
    ``prover.native.lagrange_from_tau``). Only a development SRS knows tau; a ceremony SRS
    takes its basis from the ptau file's Lagrange section or ``lagrange_basis``'s G1 FFT.
    """
    if native.use_native():
        return G1Points(native.lagrange_from_tau(tau, k))
    n = 1 << k
    omega = root_of_unity(k)
    vanishing = (pow(tau, n, R) - 1) % R
    if vanishing == 0:  # tau in H: L_i(tau) is a unit vector
        index = next(i for i in range(n) if pow(omega, i, R) == tau % R)
        scalars = [int(i == index) for i in range(n)]
    else:
        omegas = powers(omega, n)
        inverses = batch_inverse([n * (tau - w) % R for w in omegas])
        scalars = [w * vanishing % R * inv % R for w, inv in zip(omegas, inverses, strict=True)]
    return fixed_base_multiples(G1_GENERATOR_AFFINE, scalars)


def remember_lagrange_basis(srs: SRS, k: int, points: Sequence[G1Affine]) -> None:
    """Put a Lagrange basis computed elsewhere into the memory and disk caches."""
    _LAGRANGE_MEMO[(srs.digest, k)] = points
    try:
        _write_lagrange_file(lagrange_cache_path(srs, k), srs.digest, k, points)
    except OSError as exc:
        warnings.warn(f"cannot write Lagrange cache: {exc}", stacklevel=2)


def lagrange_basis(
    srs: SRS,
    k: int,
    use_disk_cache: bool = True,
    progress: ProgressCallback | None = None,
    processes: int = 1,
) -> Sequence[G1Affine]:
    """``[L_i(tau)]_1`` for ``i < N = 2^log_size``, ``L_i`` the Lagrange polynomials of the
    subgroup ``H = <omega>`` (``omega = verifier.fr.root_of_unity(log_size)``):
    ``L_i(omega^j) = [i = j]``.

    Since ``L_i(X) = (1/N) sum_j omega^(-i j) X^j`` for ``deg < N``, the vector
    ``([L_i(tau)]_1)_i`` is the inverse DFT over G1 of ``([tau^j]_1)_j`` (j < N). It is computed
    with a radix-2 FFT whose butterflies multiply group elements by twiddles
    (``(N/2) log2 N`` scalar multiplications, GLV-accelerated), then scaled by ``1/N``;
    ``processes > 1`` spreads each stage's multiplications over forked workers. On the native
    backend the FFT is arkworks' (``prover.native.lagrange_basis``). Cached in memory (by
    ``(srs.digest, log_size)``) and on disk (``lagrange_cache_path``).
    """
    n = 1 << k
    if k < 0 or n > len(srs.g1_powers):
        raise SRSError(f"domain of size 2^{k} needs {n} G1 powers, the SRS has {srs.n_powers}")
    key = (srs.digest, k)
    cached = _LAGRANGE_MEMO.get(key)
    if cached is not None:
        return cached
    path = lagrange_cache_path(srs, k)
    points: Sequence[G1Affine] | None = None
    if use_disk_cache and path.exists():
        try:
            points = _read_lagrange_file(path, srs.digest, k)
        except SRSError as exc:
            warnings.warn(f"ignoring bad Lagrange cache file {path}: {exc}", stacklevel=2)
            points = None
    if points is None:
        if native.use_native():
            handle = native.lagrange_basis(native.bases_for(srs.g1_powers[:n]), k)
            points = G1Points(handle.to_affine_bytes())
        else:
            points = _inverse_dft_g1(srs.g1_powers[:n], k, progress=progress, processes=processes)
        if use_disk_cache:
            try:
                _write_lagrange_file(path, srs.digest, k, points)
            except OSError as exc:
                warnings.warn(f"cannot write Lagrange cache {path}: {exc}", stacklevel=2)
    _LAGRANGE_MEMO[key] = points
    return points


def _inverse_dft_g1(
    values: Sequence[G1Affine],
    k: int,
    progress: ProgressCallback | None = None,
    processes: int = 1,
) -> list[G1Affine]:
    """``out_i = (1/N) sum_j omega^(-i j) values_j`` over G1 (iterative radix-2, decimation in
    time: bit-reversal, then stages of butterflies ``(a, b) -> (a + w b, a - w b)``).

    The scalar multiplications ``w·b`` of a stage are independent; with ``processes > 1`` they
    are dealt to forked workers (``prover.msm.fork_map``)."""
    n = 1 << k
    if n == 1:
        return [(int(values[0][0]), int(values[0][1]))]
    omega_inv = pow(root_of_unity(k), -1, R)
    pts: list[Any] = [None] * n
    for i in range(n):
        pts[_bit_reverse(i, k)] = (gmpy2.mpz(values[i][0]), gmpy2.mpz(values[i][1]))
    total_mults = (n // 2) * k + n
    done = 0
    half = 1
    while half < n:
        w_m = pow(omega_inv, n // (2 * half), R)
        twiddles = powers(w_m, half)
        tasks = [
            (start + j + half, twiddles[j]) for start in range(0, n, 2 * half) for j in range(half)
        ]
        products = _multiply_many(pts, tasks, processes)
        nxt: list[Any] = [None] * n
        for (ib, _tw), t in zip(tasks, products, strict=True):
            a = pts[ib - half]
            nxt[ib - half] = jacobian_add_affine(t, a)
            nxt[ib] = jacobian_add_affine(jacobian_neg(t), a)
        done += n // 2
        if progress is not None:
            progress(done, total_mults)
        pts = batch_to_affine(nxt)
        half *= 2
    n_inv = pow(n, -1, R)
    scaled = _multiply_many(pts, [(i, n_inv) for i in range(n)], processes)
    if progress is not None:
        progress(total_mults, total_mults)
    return [(int(x), int(y)) for x, y in batch_to_affine(scaled)]


def _multiply_many(
    pts: Sequence[Any], tasks: Sequence[tuple[int, int]], processes: int
) -> list[tuple[Any, Any, Any]]:
    """``[k·pts[i] for (i, k) in tasks]`` as Jacobian points (k = 1 is free)."""

    def run(chunk: Sequence[tuple[int, int]]) -> list[tuple[Any, Any, Any]]:
        return [
            _affine_to_jac(pts[i]) if k == 1 else glv_scalar_mul_jacobian(pts[i], k)
            for i, k in chunk
        ]

    if processes <= 1 or len(tasks) < _PARALLEL_MIN_MULTS:
        return run(tasks)
    parts = fork_map(run, _split(tasks, processes))
    return [p for part in parts for p in part]


_PARALLEL_MIN_MULTS: Final[int] = 512
"""Below this many multiplications in a stage, forking costs more than it saves."""


# GLV endomorphism of BN254 G1 (Gallant, Lambert, Vanstone, CRYPTO 2001): phi(x, y) =
# (GLV_BETA·x, y) with GLV_BETA a cube root of unity in F_P acts on G1 as multiplication by
# GLV_LAMBDA, a cube root of unity in Fr (lambda^2 + lambda + 1 = 0 mod R). Checked in tests.
GLV_BETA: Final[int] = 0x59E26BCEA0D48BACD4F263F1ACDB5C4F5763473177FFFFFE
GLV_LAMBDA: Final[int] = 0xB3C4D79D41A917585BFC41088D8DAAA78B17EA66B99C90DD


def _glv_basis() -> tuple[tuple[int, int], tuple[int, int]]:
    """Two short vectors (a, b) with a + b·lambda = 0 mod R (extended Euclid on (R, lambda),
    stopped around sqrt(R); Hankerson-Menezes-Vanstone, Guide to ECC, Alg. 3.74)."""
    bound = math.isqrt(R)
    rs, ts = [R, GLV_LAMBDA], [0, 1]
    while rs[-2] >= bound:
        q = rs[-2] // rs[-1]
        rs.append(rs[-2] - q * rs[-1])
        ts.append(ts[-2] - q * ts[-1])
    # rs[-3] >= sqrt(R) > rs[-2]: m = len - 3
    m = len(rs) - 3
    v1 = (rs[m + 1], -ts[m + 1])
    c_m, c_m2 = (rs[m], -ts[m]), (rs[m + 2], -ts[m + 2])
    v2 = c_m if c_m[0] ** 2 + c_m[1] ** 2 <= c_m2[0] ** 2 + c_m2[1] ** 2 else c_m2
    return v1, v2


_GLV_V1, _GLV_V2 = _glv_basis()


def glv_decompose(k: int) -> tuple[int, int]:
    """``(k1, k2)`` with ``k = k1 + k2·lambda (mod R)`` and ``|k1|, |k2|`` about ``sqrt(R)``
    (Babai rounding against the basis of ``_glv_basis``)."""
    (a1, b1), (a2, b2) = _GLV_V1, _GLV_V2
    k %= R
    c1 = (2 * b2 * k + R) // (2 * R)
    c2 = (-2 * b1 * k + R) // (2 * R)
    return k - c1 * a1 - c2 * a2, -c1 * b1 - c2 * b2


def glv_scalar_mul_jacobian(a: Any, k: int) -> tuple[Any, Any, Any]:
    """``k·a`` (``a`` affine, finite) as ``k1·a + k2·phi(a)`` with half-length scalars and
    Shamir's simultaneous double-and-add (table ``a``, ``phi(a)``, ``a + phi(a)``): about
    128 doublings and 96 mixed additions instead of 254 doublings."""
    k1, k2 = glv_decompose(k)
    x, y = gmpy2.mpz(a[0]), gmpy2.mpz(a[1])
    if x == 0 and y == 0:
        return _JACOBIAN_INFINITY
    p1 = (x, y if k1 >= 0 else (P - y) % P)
    p2 = (GLV_BETA * x % P, y if k2 >= 0 else (P - y) % P)
    p12 = affine_add(p1, p2)
    k1, k2 = abs(k1), abs(k2)
    acc = _JACOBIAN_INFINITY
    for bit in range(max(k1.bit_length(), k2.bit_length()) - 1, -1, -1):
        acc = jacobian_double(acc)
        sel = ((k1 >> bit) & 1) | (((k2 >> bit) & 1) << 1)
        if sel == 1:
            acc = jacobian_add_affine(acc, p1)
        elif sel == 2:
            acc = jacobian_add_affine(acc, p2)
        elif sel == 3:
            acc = jacobian_add_affine(acc, p12)
    return acc


def _affine_to_jac(a: Any) -> tuple[Any, Any, Any]:
    if a[0] == 0 and a[1] == 0:
        return _JACOBIAN_INFINITY
    return (a[0], a[1], gmpy2.mpz(1))


def _bit_reverse(i: int, bits: int) -> int:
    return int(format(i, f"0{bits}b")[::-1], 2) if bits else 0


def _write_lagrange_file(path: Path, digest: bytes, k: int, points: Sequence[G1Affine]) -> None:
    body = LAGRANGE_MAGIC + digest + struct.pack(">II", k, len(points)) + g1_points_bytes(points)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_bytes(body + keccak256(body))
    tmp.replace(path)


def _read_lagrange_file(path: Path, digest: bytes, k: int) -> Sequence[G1Affine]:
    data = path.read_bytes()
    header = len(LAGRANGE_MAGIC) + 32 + 8
    n = 1 << k
    if len(data) != header + n * G1_BYTES + CHECKSUM_BYTES:
        raise SRSError(f"Lagrange cache has {len(data)} bytes, expected {header + n * 64 + 32}")
    body, checksum = data[:-CHECKSUM_BYTES], data[-CHECKSUM_BYTES:]
    if keccak256(body) != checksum:
        raise SRSError("Lagrange cache checksum mismatch")
    if data[: len(LAGRANGE_MAGIC)] != LAGRANGE_MAGIC:
        raise SRSError("Lagrange cache has the wrong magic")
    if data[len(LAGRANGE_MAGIC) : len(LAGRANGE_MAGIC) + 32] != digest:
        raise SRSError("Lagrange cache belongs to another SRS")
    got_log, got_n = struct.unpack(">II", data[header - 8 : header])
    if (got_log, got_n) != (k, n):
        raise SRSError(f"Lagrange cache is for 2^{got_log} ({got_n} points), wanted 2^{k}")
    if native.use_native():
        raw = G1Points(data[header : header + n * G1_BYTES])
        try:
            native.bases_for(raw)  # decodes and checks every point once, kept for the MSMs
        except ValueError as exc:
            raise SRSError(f"Lagrange cache has an invalid point: {exc}") from exc
        return raw
    points: list[G1Affine] = []
    for i in range(n):
        try:
            pt = g1_from_bytes(data[header + i * G1_BYTES : header + (i + 1) * G1_BYTES])
        except InvalidPointError as exc:
            raise SRSError(f"Lagrange cache point {i} is invalid: {exc}") from exc
        points.append(pt)
    return points


# --------------------------------------------------------------------------------------------
# snarkjs .ptau import


PTAU_MAGIC: Final[bytes] = b"ptau"
_PTAU_SECTION_HEADER: Final[int] = 1
_PTAU_SECTION_TAU_G1: Final[int] = 2
_PTAU_SECTION_TAU_G2: Final[int] = 3
# After `snarkjs powersoftau prepare phase2`: [L_i(tau)]_1 for every domain 2^p,
# p = 0..power+1, one after the other (2^p points each: the 2^k block starts at point 2^k - 1).
_PTAU_SECTION_LAGRANGE_G1: Final[int] = 12
# ffjavascript stores field elements little-endian in Montgomery form x * 2^256 mod P.
_MONTGOMERY_R_INV: Final[int] = pow(1 << 256, -1, P)


def import_ptau(
    path: str | os.PathLike[str],
    max_powers: int | None = None,
    check_pairing: bool = True,
    lagrange_log_sizes: Sequence[int] = (),
) -> SRS:
    """The SRS held by a snarkjs ``.ptau`` file (its tauG1 powers and ``[1]_2``, ``[tau]_2``).

    Format (iden3 binfileutils, snarkjs ``powersoftau_new.js``): magic ``ptau``, uint32 LE
    version, uint32 LE section count, then sections ``(uint32 LE id, uint64 LE length,
    payload)``. Section 1 (header): uint32 ``n8`` (32), the base-field prime (n8 bytes LE),
    uint32 ``power``, uint32 ``ceremonyPower``. Section 2 (tauG1): ``2^(power+1) - 1`` G1
    points; section 3 (tauG2): ``2^power`` G2 points. A G1 point is ``x, y``, a G2 point
    ``x.c0, x.c1, y.c0, y.c1`` (``c0`` the real part), each coordinate 32 bytes
    little-endian in Montgomery form (``x·2^256 mod P``); all zeros is infinity.
    Takes the first ``max_powers`` G1 powers (all of them if None).

    For each ``k`` in ``lagrange_log_sizes`` the Lagrange basis ``[L_i(tau)]_1`` of the
    domain 2^k is read from section 12 (written by ``snarkjs powersoftau prepare phase2``:
    the bases of every domain 2^p, p = 0..power+1, in turn; the 2^k block starts at point
    2^k - 1) and put in the Lagrange cache (``remember_lagrange_basis``), so no G1 FFT is
    needed; without that section the basis is left to ``lagrange_basis`` (the G1 FFT).
    snarkjs' domains are ours (generator 5, the same 2^28-th root of unity): tested
    against the G1 FFT of the same powers.
    """
    try:
        with open(path, "rb") as fh:
            return _import_ptau_stream(
                fh, str(path), max_powers, check_pairing, tuple(lagrange_log_sizes)
            )
    except OSError as exc:
        raise SRSError(f"cannot read ptau file {path}: {exc.strerror}") from exc


def _import_ptau_stream(
    fh: BinaryIO,
    path: str,
    max_powers: int | None,
    check_pairing: bool,
    lagrange_log_sizes: tuple[int, ...] = (),
) -> SRS:
    """Read only the section table and the needed points (ceremony files are gigabytes)."""
    size = fh.seek(0, os.SEEK_END)
    fh.seek(0)
    head = fh.read(12)
    if len(head) < 12 or head[:4] != PTAU_MAGIC:
        raise SRSError(f"{path}: not a snarkjs .ptau file (magic {head[:4]!r})")
    _version, n_sections = struct.unpack_from("<II", head, 4)
    sections: dict[int, tuple[int, int]] = {}
    pos = 12
    for _ in range(n_sections):
        fh.seek(pos)
        entry = fh.read(12)
        if len(entry) < 12:
            raise SRSError(f"{path}: truncated section table")
        sec_id, sec_len = struct.unpack("<IQ", entry)
        pos += 12
        if pos + sec_len > size:
            raise SRSError(f"{path}: section {sec_id} runs past the end of the file")
        if sec_id in sections:
            raise SRSError(f"{path}: section {sec_id} appears twice")
        sections[sec_id] = (pos, sec_len)
        pos += sec_len
    for needed in (_PTAU_SECTION_HEADER, _PTAU_SECTION_TAU_G1, _PTAU_SECTION_TAU_G2):
        if needed not in sections:
            raise SRSError(f"{path}: section {needed} is missing")

    def read_at(offset: int, length: int) -> bytes:
        fh.seek(offset)
        chunk = fh.read(length)
        if len(chunk) != length:
            raise SRSError(f"{path}: unexpected end of file at offset {offset}")
        return chunk

    hpos, hlen = sections[_PTAU_SECTION_HEADER]
    if hlen != 4 + 32 + 8:
        raise SRSError(f"{path}: header section has {hlen} bytes, expected 44 (bn128)")
    header = read_at(hpos, hlen)
    (n8,) = struct.unpack_from("<I", header, 0)
    if n8 != 32:
        raise SRSError(f"{path}: header declares {n8}-byte field elements, expected 32 (bn128)")
    prime = int.from_bytes(header[4:36], "little")
    if prime != P:
        raise SRSError(f"{path}: the ptau curve is not bn128 (prime {prime:#x})")
    power, _ceremony_power = struct.unpack_from("<II", header, 36)
    n_g1 = (1 << (power + 1)) - 1
    n_g2 = 1 << power
    g1pos, g1len = sections[_PTAU_SECTION_TAU_G1]
    g2pos, g2len = sections[_PTAU_SECTION_TAU_G2]
    if g1len != n_g1 * 64:
        raise SRSError(f"{path}: tauG1 section has {g1len} bytes, power {power} needs {n_g1 * 64}")
    if g2len != n_g2 * 128 or n_g2 < 2:
        raise SRSError(f"{path}: tauG2 section has {g2len} bytes, power {power} needs {n_g2 * 128}")
    count = n_g1 if max_powers is None else max_powers
    if not 2 <= count <= n_g1:
        raise SRSError(f"{path}: asked for {count} powers, the file has {n_g1} (need >= 2)")
    g1_data = read_at(g1pos, count * 64)
    g1_powers: Sequence[G1Affine]
    if native.use_native():
        try:
            g1_powers = G1Points(native.ptau_points(g1_data))
        except ValueError as exc:
            raise SRSError(f"{path}: tauG1: {exc}") from exc
    else:
        g1_powers = _ptau_g1_python(g1_data, count, path)
    g2_data = read_at(g2pos, 256)
    g2s = []
    for i in range(2):
        off = 128 * i
        c = [_from_montgomery_le(g2_data[off + 32 * k : off + 32 * (k + 1)]) for k in range(4)]
        x_re, x_im, y_re, y_im = c
        try:
            g2s.append(g2_from_coefficients(x_re, x_im, y_re, y_im))
        except InvalidPointError as exc:
            raise SRSError(f"{path}: tauG2 point {i} is not a valid point: {exc}") from exc
    srs = SRS(g1_powers, g2s[0], g2s[1])
    srs.validate(check_pairing=check_pairing, check_points=False)
    if lagrange_log_sizes and _PTAU_SECTION_LAGRANGE_G1 in sections:
        lpos, llen = sections[_PTAU_SECTION_LAGRANGE_G1]
        expected = ((1 << (power + 2)) - 1) * 64  # domains 2^0 .. 2^(power+1)
        if llen != expected:
            raise SRSError(
                f"{path}: Lagrange section has {llen} bytes, power {power} needs {expected}"
            )
        for k in lagrange_log_sizes:
            if not 0 <= k <= power + 1 or (1 << k) > len(g1_powers):
                raise SRSError(f"{path}: no Lagrange basis of 2^{k} for these powers")
            block = read_at(lpos + ((1 << k) - 1) * 64, (1 << k) * 64)
            if native.use_native():
                try:
                    basis: Sequence[G1Affine] = G1Points(native.ptau_points(block))
                except ValueError as exc:
                    raise SRSError(f"{path}: Lagrange basis 2^{k}: {exc}") from exc
            else:
                basis = _ptau_g1_python(block, 1 << k, path)
            remember_lagrange_basis(srs, k, basis)
    return srs


def _ptau_g1_python(g1_data: bytes, count: int, path: str) -> list[G1Affine]:
    """The pure-Python decoding of ``count`` ptau G1 points (the native one's reference)."""
    points: list[G1Affine] = []
    for i in range(count):
        off = 64 * i
        x = _from_montgomery_le(g1_data[off : off + 32])
        y = _from_montgomery_le(g1_data[off + 32 : off + 64])
        try:
            points.append(g1_from_bytes(x.to_bytes(32, "big") + y.to_bytes(32, "big")))
        except InvalidPointError as exc:
            raise SRSError(f"{path}: tauG1 point {i} is not a valid point: {exc}") from exc
    return points


def _from_montgomery_le(b: bytes) -> int:
    m = int.from_bytes(b, "little")
    if m >= P:
        raise SRSError(f"ptau coordinate 0x{m:x} is not reduced mod P")
    return m * _MONTGOMERY_R_INV % P


# --------------------------------------------------------------------------------------------
# Helpers


def _encode_srs_body(g1_powers: Sequence[G1Affine], g2_one: G2Point, g2_tau: G2Point) -> bytes:
    return (
        SRS_MAGIC
        + struct.pack(">I", len(g1_powers))
        + g1_points_bytes(g1_powers)
        + g2_to_bytes(g2_one)
        + g2_to_bytes(g2_tau)
    )


def _validated_path(digest: bytes) -> Path:
    return cache_dir() / f"srs-validated-{digest.hex()}"


def _validated_before(digest: bytes) -> bool:
    """Whether an SRS of this digest passed the pairing check on this machine before (a
    marker in ``cache_dir()``; an SRS's digest is the keccak256 of its whole encoding)."""
    return _validated_path(digest).exists()


def _remember_validated(digest: bytes) -> None:
    try:
        path = _validated_path(digest)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("passed SRS.validate's pairing check\n")
    except OSError as exc:
        warnings.warn(f"cannot record the SRS check in the cache: {exc}", stacklevel=3)


def _g2_normalized(q: G2Point) -> G2Point:
    """The same G2 point with Z = 1 (infinity unchanged)."""
    if is_inf(q):
        return q
    x, y = normalize(q)
    return (x, y, FQ2.one())
