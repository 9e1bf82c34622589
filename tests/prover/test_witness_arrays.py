"""Witness building from receipt columns (NumPy) against the row-by-row reference: the same
columns, aggregates and sorted rows, the same refusals; and the compact receipts file."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channels.receipts_file import (
    ReceiptsFileError,
    parse_receipts_columns,
    receipts_columns_bytes,
)
from prover.prover import witness_from_rows
from prover.witness import BatchError, UsageArrays, UsageRow, build_witness_from_arrays
from tests.support.proofs import HEADER, build_witness, random_rows, seeded


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**32), st.integers(1, 6), st.sampled_from([None, 9]))
def test_columns_and_rows_give_the_same_witness(seed: int, channels: int, k: int | None) -> None:
    rows = random_rows(seeded(seed), channels=channels, max_calls=40)
    reference = build_witness(rows, k)
    ours = build_witness_from_arrays(UsageArrays.from_rows(rows), k)
    assert ours.layout == reference.layout
    assert ours.aggregates == reference.aggregates
    assert ours.columns == reference.columns
    assert list(ours.rows) == list(reference.rows)
    assert np.array_equal(ours.limb_values, reference.limb_values)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: dataclasses.replace(r, tokens=1 << 32), "not in \\[0, 2\\^32\\)"),
        (lambda r: dataclasses.replace(r, nonce=0), "nonce must be in"),
        (lambda r: dataclasses.replace(r, nonce=r.nonce + 1), "repeats|leaves a gap"),
    ],
)
def test_columns_refuse_what_rows_refuse(change: object, message: str) -> None:
    rows = random_rows(seeded(4), channels=2, max_calls=10)
    rows = sorted(rows, key=lambda r: (r.key, r.nonce))
    bad = [*rows[:-1], change(rows[-1])]  # type: ignore[operator]
    with pytest.raises(BatchError, match=message):
        build_witness(bad, 8)
    with pytest.raises(BatchError, match=message):
        build_witness_from_arrays(UsageArrays.from_rows(bad), 8)


def test_a_payer_wider_than_160_bits_is_refused() -> None:
    arrays = UsageArrays.from_rows([UsageRow(5, 1, 1, 10)])
    wide = dataclasses.replace(arrays, payer=np.array([[5, 0, 1 << 32]], dtype=np.uint64))
    with pytest.raises(BatchError, match="160-bit"):
        build_witness_from_arrays(wide, 8)
    with pytest.raises(BatchError, match="empty"):
        build_witness_from_arrays(UsageArrays.from_rows([]), 8)


def test_compact_receipts_file_round_trip_and_checksum() -> None:
    rows = random_rows(seeded(9), channels=3, max_calls=20)
    arrays = UsageArrays.from_rows(rows)
    data = receipts_columns_bytes(HEADER, arrays)
    header, back = parse_receipts_columns(data)
    assert header == HEADER
    assert [back.row(i) for i in range(len(back))] == rows
    tampered = bytearray(data)
    tampered[-33] ^= 1
    with pytest.raises(ReceiptsFileError, match="checksum"):
        parse_receipts_columns(bytes(tampered))
    with pytest.raises(ReceiptsFileError, match="magic"):
        parse_receipts_columns(b"{}" + data)


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 2**32), st.integers(1, 5))
def test_prove_batch_lays_out_rows_as_columns_into_the_same_witness(
    seed: int, channels: int
) -> None:
    """``prover.prover.witness_from_rows`` (prove_batch's way in for UsageRow objects) gives
    ``build_witness``'s witness."""
    rows = random_rows(seeded(seed), channels=channels, max_calls=30)
    reference = build_witness(rows, 9)
    ours = witness_from_rows(rows, 9)
    assert ours.columns == reference.columns
    assert ours.aggregates == reference.aggregates
    assert list(ours.rows) == list(reference.rows)


@pytest.mark.parametrize(
    "bad",
    [
        [UsageRow(5, 1, 1, 10), UsageRow(5, 1, 3, 10)],  # a gap
        [UsageRow(5, 1, 1, 10), UsageRow(5, 1, 1, 10)],  # a repeat
        [UsageRow(5, 1, 0, 10)],  # nonce 0
        [UsageRow(5, 1, 1, 1 << 32)],  # tokens out of range
        [UsageRow(5, 1, 1, -1)],  # negative tokens
        [UsageRow(1 << 160, 1, 1, 1)],  # payer wider than an address
        [],
    ],
    ids=["gap", "repeat", "nonce-0", "tokens", "negative", "payer", "empty"],
)
def test_prove_batch_refuses_rows_with_the_row_by_row_message(bad: list[UsageRow]) -> None:
    with pytest.raises(BatchError) as reference:
        build_witness(bad, 8)
    with pytest.raises(BatchError) as ours:
        witness_from_rows(bad, 8)
    assert str(ours.value) == str(reference.value)
