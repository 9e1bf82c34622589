"""Witness building: from usage rows to the round-1 columns of the usage-batch circuit.

Rows are sorted by channel key, then nonce; each channel must be a run of consecutive
nonces. Rows that cannot be proven are refused here, before any proving work starts, with
an error naming the row and the rule (PROTOCOL §3). Limbs and multiplicities are numpy work.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from circuits.public_inputs import Aggregate
from circuits.usage_batch import (
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
    rows: tuple[UsageRow, ...]  # sorted by (key, nonce)
    aggregates: tuple[Aggregate, ...]  # one per channel, keys strictly increasing
    columns: dict[str, list[int]]  # round-1 columns on H: key, nonce, q, s, limbs, m
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
    s[i] = 1 where a channel's run begins; limb_j[i] = (tokens >> (b*j)) mod 2^b;
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

    columns: dict[str, list[int]] = {"key": keys, "nonce": nonces, "q": q, "s": s}
    for j, name in enumerate(layout.limb_columns):
        columns[name] = limbs[j].tolist()
    columns["m"] = m.tolist()
    return Witness(layout, tuple(ordered), aggregates_of(ordered), columns, limbs)
