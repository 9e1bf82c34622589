"""Witness building: from usage rows to the round-1 columns of the usage-batch circuit.

Rows are sorted by channel key, then nonce; each channel must be a run of consecutive
nonces. Rows that cannot be proven are refused here, before any proving work starts, with
an error naming the row and the rule (PROTOCOL §3). Limbs and multiplicities are numpy work.

Two ways in: ``build_witness`` from ``UsageRow`` objects, and ``build_witness_from_arrays``
from ``UsageArrays`` (one NumPy column per field, what the compact receipts file holds),
which checks, sorts and lays out 2^20 receipts without a Python loop over them; both give
the same witness (tested).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import overload

import numpy as np

from circuits.public_inputs import Aggregate
from circuits.usage_batch import (
    KEY_MODEL_SHIFT,
    MAX_LOG_SIZE,
    MIN_LOG_SIZE,
    MODEL_ID_BITS,
    NONCE_BITS,
    PAYER_BITS,
    TOKEN_BITS,
    Layout,
    channel_key,
)


class BatchError(ValueError):
    """The rows cannot form a provable batch; the message names the row and the rule."""


@dataclass(frozen=True, order=True)
class UsageRow:
    """One receipt as the circuit sees it: its channel (payer, modelId), nonce and tokens."""

    payer: int
    model_id: int
    nonce: int
    tokens: int

    @property
    def key(self) -> int:
        return channel_key(self.payer, self.model_id)


@dataclass(frozen=True)
class Witness:
    layout: Layout
    rows: Sequence[UsageRow]  # sorted by (key, nonce)
    aggregates: tuple[Aggregate, ...]  # one per channel, keys strictly increasing
    columns: dict[str, list[int]]  # round-1 columns on H: key, nonce, q, s, cont, limbs, m
    limb_values: np.ndarray  # shape (limb_count, N), dtype int64


def smallest_log_size(row_count: int) -> int:
    """The smallest supported log2 domain size that holds ``row_count`` rows."""
    if row_count < 1:
        raise BatchError("an empty batch cannot be proven: give at least one receipt")
    k = max(MIN_LOG_SIZE, (row_count - 1).bit_length())
    if k > MAX_LOG_SIZE:
        raise BatchError(
            f"{row_count} receipts exceed the largest domain (2^{MAX_LOG_SIZE} rows); "
            "split the batch"
        )
    return k


def check_rows(rows: Sequence[UsageRow]) -> list[UsageRow]:
    """Validate every row and return them sorted by (key, nonce), or raise BatchError."""
    if not rows:
        raise BatchError("an empty batch cannot be proven: give at least one receipt")
    for index, row in enumerate(rows):
        where = (
            f"receipt {index} (payer {row.payer:#042x}, model {row.model_id}, nonce {row.nonce})"
        )
        if not 0 <= row.tokens < 1 << TOKEN_BITS:
            raise BatchError(f"{where}: tokens {row.tokens} is not in [0, 2^32)")
        if not 0 <= row.payer < 1 << PAYER_BITS:
            raise BatchError(f"{where}: payer is not a 160-bit address")
        if not 0 <= row.model_id < 1 << MODEL_ID_BITS:
            raise BatchError(f"{where}: modelId does not fit in 64 bits")
        if not 1 <= row.nonce < 1 << NONCE_BITS:
            raise BatchError(f"{where}: nonce must be in [1, 2^64)")
    ordered = sorted(rows, key=lambda r: (r.key, r.nonce))
    for previous, row in itertools.pairwise(ordered):
        if previous.key == row.key and row.nonce != previous.nonce + 1:
            what = "repeats" if row.nonce == previous.nonce else "leaves a gap after"
            raise BatchError(
                f"receipt (payer {row.payer:#042x}, model {row.model_id}, nonce {row.nonce}) "
                f"{what} nonce {previous.nonce}: a channel's nonces must be consecutive"
            )
    return ordered


def continuation(q: Sequence[int] | np.ndarray, s: Sequence[int] | np.ndarray) -> list[int]:
    """cont[i] = q[i+1] (1 - s[i+1]), i + 1 taken mod N (PROTOCOL §3): 1 where the next row
    continues this row's channel run. On row N-1 it is q[0] (1 - s[0]), 0 for any witness that
    satisfies first_row_starts."""
    q_next = np.roll(np.asarray(q, dtype=np.int64), -1)
    s_next = np.roll(np.asarray(s, dtype=np.int64), -1)
    return (q_next * (1 - s_next)).tolist()


def aggregates_of(ordered: Sequence[UsageRow]) -> tuple[Aggregate, ...]:
    """One aggregate per channel run of the sorted rows."""
    result: list[Aggregate] = []
    start = 0
    for index in range(1, len(ordered) + 1):
        if index == len(ordered) or ordered[index].key != ordered[start].key:
            run = ordered[start:index]
            result.append(
                Aggregate(
                    payer=run[0].payer,
                    model_id=run[0].model_id,
                    first_nonce=run[0].nonce,
                    count=len(run),
                    tokens=sum(r.tokens for r in run),
                )
            )
            start = index
    return tuple(result)


def build_witness(rows: Sequence[UsageRow], k: int | None = None) -> Witness:
    """Round-1 columns for ``rows`` on a domain of 2^log_size rows (smallest fit if None).

    key[i], nonce[i]: the i-th sorted row, 0 on padding rows; q[i] = 1 on the n real rows;
    s[i] = 1 where a channel's run begins; cont[i] = q[i+1] (1 - s[i+1]) cyclically (row i+1
    continues row i's run; 0 on row N-1, as row 0 is a start or padding);
    limb_j[i] = (tokens >> (b*j)) mod 2^b;
    m[t] = #{(i, j): limb_j[i] = t} for table row t < 2^b (padding limbs are 0 and are
    counted too, since the range lookup runs over every row).
    """
    ordered = check_rows(rows)
    if k is None:
        k = smallest_log_size(len(ordered))
    layout = Layout(k)
    n, size = len(ordered), layout.size
    if n > layout.max_rows:
        raise BatchError(f"{n} receipts do not fit a domain of {layout.max_rows} rows")

    keys = [0] * size
    nonces = [0] * size
    q = [0] * size
    s = [0] * size
    for i, row in enumerate(ordered):
        keys[i] = row.key
        nonces[i] = row.nonce
        q[i] = 1
        s[i] = 1 if i == 0 or ordered[i - 1].key != row.key else 0

    tokens = np.zeros(size, dtype=np.int64)
    tokens[:n] = [row.tokens for row in ordered]
    bits = layout.limb_bits
    mask = (1 << bits) - 1
    limbs = np.stack([(tokens >> (bits * j)) & mask for j in range(layout.limb_count)])
    multiplicities = np.bincount(limbs.ravel(), minlength=1 << bits)
    m = np.zeros(size, dtype=np.int64)
    m[: 1 << bits] = multiplicities

    columns: dict[str, list[int]] = {
        "key": keys,
        "nonce": nonces,
        "q": q,
        "s": s,
        "cont": continuation(q, s),
    }
    for j, name in enumerate(layout.limb_columns):
        columns[name] = limbs[j].tolist()
    columns["m"] = m.tolist()
    return Witness(layout, tuple(ordered), aggregates_of(ordered), columns, limbs)


# ----------------------------------------------------------------------- from columns

WORD_MASK = (1 << 64) - 1


@dataclass(frozen=True)
class UsageArrays:
    """Receipts as columns (all ``uint64``, one entry per receipt): ``payer`` is ``(n, 3)``
    with bits 0-63, 64-127 and 128-159 of the address, then ``model_id``, ``nonce``,
    ``tokens``."""

    payer: np.ndarray
    model_id: np.ndarray
    nonce: np.ndarray
    tokens: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.nonce)
        if self.payer.shape != (n, 3) or not len(self.model_id) == len(self.tokens) == n:
            raise BatchError("receipt columns of different lengths")
        for name in ("payer", "model_id", "nonce", "tokens"):
            if getattr(self, name).dtype != np.uint64:
                raise BatchError(f"receipt column {name} must be uint64")

    def __len__(self) -> int:
        return len(self.nonce)

    @classmethod
    def from_rows(cls, rows: Sequence[UsageRow]) -> UsageArrays:
        """The columns of ``rows`` (``BatchError`` for a payer, model or nonce that does not
        fit its field, or negative tokens)."""
        for index, row in enumerate(rows):
            if not (0 <= row.payer < 1 << PAYER_BITS and 0 <= row.model_id < 1 << MODEL_ID_BITS):
                raise BatchError(f"receipt {index}: payer or modelId out of range")
            if not (0 <= row.nonce < 1 << NONCE_BITS and 0 <= row.tokens < 1 << 64):
                raise BatchError(f"receipt {index}: nonce or tokens out of range")
        payer = np.array(
            [(r.payer & WORD_MASK, (r.payer >> 64) & WORD_MASK, r.payer >> 128) for r in rows],
            dtype=np.uint64,
        ).reshape(-1, 3)
        return cls(
            payer,
            np.array([r.model_id for r in rows], dtype=np.uint64),
            np.array([r.nonce for r in rows], dtype=np.uint64),
            np.array([r.tokens for r in rows], dtype=np.uint64),
        )

    def payer_int(self, index: int) -> int:
        low, middle, high = (int(w) for w in self.payer[index])
        return low | middle << 64 | high << 128

    def row(self, index: int) -> UsageRow:
        return UsageRow(
            self.payer_int(index),
            int(self.model_id[index]),
            int(self.nonce[index]),
            int(self.tokens[index]),
        )


class _SortedRows(Sequence[UsageRow]):
    """The rows of sorted columns, made on access (a 2^20 batch needs no million objects)."""

    def __init__(self, arrays: UsageArrays) -> None:
        self._arrays = arrays

    def __len__(self) -> int:
        return len(self._arrays)

    @overload
    def __getitem__(self, index: int) -> UsageRow: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[UsageRow]: ...

    def __getitem__(self, index: int | slice) -> UsageRow | Sequence[UsageRow]:
        if isinstance(index, slice):
            return [self._arrays.row(i) for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return self._arrays.row(index)

    def __iter__(self) -> Iterator[UsageRow]:
        return (self._arrays.row(i) for i in range(len(self)))


def build_witness_from_arrays(arrays: UsageArrays, k: int | None = None) -> Witness:
    """``build_witness`` for receipts given as columns, with NumPy: the same checks (in the
    same order of rules; the receipt named is the first that breaks one), the same sort by
    (key, nonce) (key = payer + 2^160 modelId, so by modelId, then payer, then nonce), the
    same columns and aggregates."""
    n = len(arrays)
    if n < 1:
        raise BatchError("an empty batch cannot be proven: give at least one receipt")
    bad_tokens = np.flatnonzero(arrays.tokens >= np.uint64(1 << TOKEN_BITS))
    if bad_tokens.size:
        i = int(bad_tokens[0])
        raise BatchError(f"receipt {i}: tokens {int(arrays.tokens[i])} is not in [0, 2^32)")
    if int(arrays.payer[:, 2].max()) >> (PAYER_BITS - 128):
        i = int(np.flatnonzero(arrays.payer[:, 2] >> np.uint64(PAYER_BITS - 128))[0])
        raise BatchError(f"receipt {i}: payer is not a 160-bit address")
    zero_nonce = np.flatnonzero(arrays.nonce == 0)
    if zero_nonce.size:
        raise BatchError(f"receipt {int(zero_nonce[0])}: nonce must be in [1, 2^64)")
    order = np.lexsort(
        (arrays.nonce, arrays.payer[:, 0], arrays.payer[:, 1], arrays.payer[:, 2], arrays.model_id)
    )
    payer = arrays.payer[order]
    model = arrays.model_id[order]
    nonce = arrays.nonce[order]
    tokens = arrays.tokens[order]
    sorted_arrays = UsageArrays(payer, model, nonce, tokens)
    same_channel = np.all(payer[1:] == payer[:-1], axis=1) & (model[1:] == model[:-1])
    broken = np.flatnonzero(same_channel & (nonce[1:] != nonce[:-1] + np.uint64(1)))
    if broken.size:
        i = int(broken[0]) + 1
        row, previous = sorted_arrays.row(i), int(nonce[i - 1])
        what = "repeats" if row.nonce == previous else "leaves a gap after"
        raise BatchError(
            f"receipt (payer {row.payer:#042x}, model {row.model_id}, nonce {row.nonce}) "
            f"{what} nonce {previous}: a channel's nonces must be consecutive"
        )
    if k is None:
        k = smallest_log_size(n)
    layout = Layout(k)
    size = layout.size
    if n > layout.max_rows:
        raise BatchError(f"{n} receipts do not fit a domain of {layout.max_rows} rows")

    starts = np.concatenate(([0], np.flatnonzero(~same_channel) + 1))
    ends = np.concatenate((starts[1:], [n]))
    channel_keys = [
        sorted_arrays.payer_int(int(st)) + (int(model[st]) << KEY_MODEL_SHIFT) for st in starts
    ]
    channel_of_row = np.repeat(np.arange(len(starts)), ends - starts)
    sums = np.add.reduceat(tokens, starts)
    aggregates = tuple(
        Aggregate(
            payer=sorted_arrays.payer_int(int(st)),
            model_id=int(model[st]),
            first_nonce=int(nonce[st]),
            count=int(end - st),
            tokens=int(total),
        )
        for st, end, total in zip(starts, ends, sums, strict=True)
    )

    keys = [channel_keys[c] for c in channel_of_row.tolist()] + [0] * (size - n)
    nonces = np.zeros(size, dtype=np.uint64)
    nonces[:n] = nonce
    q = np.zeros(size, dtype=np.int64)
    q[:n] = 1
    s = np.zeros(size, dtype=np.int64)
    s[starts] = 1
    padded = np.zeros(size, dtype=np.int64)
    padded[:n] = tokens.astype(np.int64)
    bits = layout.limb_bits
    mask = (1 << bits) - 1
    limbs = np.stack([(padded >> (bits * j)) & mask for j in range(layout.limb_count)])
    m = np.zeros(size, dtype=np.int64)
    m[: 1 << bits] = np.bincount(limbs.ravel(), minlength=1 << bits)
    columns: dict[str, list[int]] = {
        "key": keys,
        "nonce": nonces.tolist(),
        "q": q.tolist(),
        "s": s.tolist(),
        "cont": continuation(q, s),
    }
    for j, name in enumerate(layout.limb_columns):
        columns[name] = limbs[j].tolist()
    columns["m"] = m.tolist()
    return Witness(layout, _SortedRows(sorted_arrays), aggregates, columns, limbs)
