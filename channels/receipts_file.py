"""The receipts file: what `zkmeter prove` reads, `zkmeter settle` takes consent from, and the
daemon archives (PROTOCOL §8).

    {"format": "zkmeter-receipts-v2", "chain_id", "settlement", "operator", "batch_seq",
     "receipts": [{"payer", "model_id", "nonce", "tokens", "cumulative_tokens",
                   "max_rate_per_k_tokens", "request_hash", "signature"}]}

`tokens` is the call's token count; `cumulative_tokens` the channel's total through the call
as the payer signed it. Within one file, consecutive receipts of a channel must satisfy
cumulative_i = cumulative_(i-1) + tokens_i. `signature` may be null in a file that is only
proven, never settled. Every problem is reported with the receipt's index and the field, and
nothing is proven until the whole file has been read.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np

from channels.receipts import SignedReceipt
from circuits.public_inputs import BatchHeader, PublicInputError
from prover.witness import BatchError, UsageArrays, UsageRow
from verifier.transcript import keccak256

RECEIPTS_FORMAT = "zkmeter-receipts-v2"
#: The compact columns file (PROTOCOL §8): what `zkmeter prove` reads fastest.
COLUMNS_MAGIC: Final[bytes] = b"ZKMRCP01"
COLUMNS_FORMAT: Final[str] = "zkmeter-receipts-columns-v1"


class ReceiptsFileError(ValueError):
    """The receipts file cannot be read; the message names the receipt and field."""


def _field(receipt: dict[str, Any], index: int, name: str) -> Any:
    if name not in receipt:
        raise ReceiptsFileError(f"receipt {index}: missing field {name!r}")
    return receipt[name]


def _integer(value: Any, index: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ReceiptsFileError(f"receipt {index}: {name} must be an integer, got {value!r}")
    try:
        return int(value, 0) if isinstance(value, str) else value
    except ValueError:
        raise ReceiptsFileError(f"receipt {index}: {name} {value!r} is not an integer") from None


def receipts_file_json(
    header: BatchHeader, receipts: Sequence[tuple[SignedReceipt, int]]
) -> dict[str, Any]:
    """The receipts file of signed receipts, each with its call's token count."""
    return {
        "format": RECEIPTS_FORMAT,
        **header.to_json(),
        "receipts": [{**r.to_json(), "tokens": tokens} for r, tokens in receipts],
    }


def parse_receipts(data: Any) -> tuple[BatchHeader, list[UsageRow], list[dict[str, Any]]]:
    """The batch header, the rows to prove, and the receipts as given (for archiving)."""
    if not isinstance(data, dict) or data.get("format") != RECEIPTS_FORMAT:
        found = data.get("format") if isinstance(data, dict) else None
        hint = (
            " (v1 files hold per-call receipts; re-sign them as channel states)"
            if found == "zkmeter-receipts-v1"
            else ""
        )
        raise ReceiptsFileError(
            f"not a receipts file: format is {found!r}, expected {RECEIPTS_FORMAT!r}{hint}"
        )
    try:
        header = BatchHeader.from_json(data)
    except (PublicInputError, ValueError, TypeError) as error:
        raise ReceiptsFileError(f"batch header: {error}") from None
    receipts = data.get("receipts")
    if not isinstance(receipts, list):
        raise ReceiptsFileError("'receipts' must be a list")
    rows: list[UsageRow] = []
    last: dict[tuple[int, int], tuple[int, int]] = {}  # channel -> (nonce, cumulative)
    for index, receipt in enumerate(receipts):
        if not isinstance(receipt, dict):
            raise ReceiptsFileError(f"receipt {index}: not an object")
        operator = receipt.get("operator")
        if operator is not None and int(str(operator), 16) != header.operator:
            raise ReceiptsFileError(
                f"receipt {index}: operator {operator} is not the batch's operator"
            )
        try:
            payer = int(str(_field(receipt, index, "payer")), 16)
        except ValueError:
            raise ReceiptsFileError(f"receipt {index}: payer is not a hex address") from None
        row = UsageRow(
            payer=payer,
            model_id=_integer(_field(receipt, index, "model_id"), index, "model_id"),
            nonce=_integer(_field(receipt, index, "nonce"), index, "nonce"),
            tokens=_integer(_field(receipt, index, "tokens"), index, "tokens"),
        )
        cumulative = _integer(
            _field(receipt, index, "cumulative_tokens"), index, "cumulative_tokens"
        )
        if cumulative < row.tokens:
            raise ReceiptsFileError(
                f"receipt {index}: cumulative_tokens {cumulative} is below its own tokens "
                f"{row.tokens}"
            )
        previous = last.get((row.payer, row.model_id))
        if (
            previous is not None
            and previous[0] + 1 == row.nonce
            and cumulative != previous[1] + row.tokens
        ):
            raise ReceiptsFileError(
                f"receipt {index}: cumulative_tokens {cumulative} is not the previous "
                f"receipt's {previous[1]} + tokens {row.tokens}"
            )
        last[(row.payer, row.model_id)] = (row.nonce, cumulative)
        rows.append(row)
    return header, rows, receipts


def is_columns_file(path: Path) -> bool:
    """Whether ``path`` starts with the compact columns file's magic."""
    with open(path, "rb") as fh:
        return fh.read(len(COLUMNS_MAGIC)) == COLUMNS_MAGIC


def receipts_columns_bytes(header: BatchHeader, arrays: UsageArrays) -> bytes:
    """The compact receipts file (PROTOCOL §8): magic, a big-endian uint32 length and the
    header as JSON, then little-endian uint64 columns ``payer`` (3 words a receipt: bits
    0-63, 64-127, 128-159), ``model_id``, ``nonce``, ``tokens``, then keccak256 of all of it."""
    meta = json.dumps({"format": COLUMNS_FORMAT, **header.to_json(), "count": len(arrays)})
    body = (
        COLUMNS_MAGIC
        + struct.pack(">I", len(meta))
        + meta.encode()
        + b"".join(
            np.ascontiguousarray(a, dtype="<u8").tobytes()
            for a in (arrays.payer, arrays.model_id, arrays.nonce, arrays.tokens)
        )
    )
    return body + keccak256(body)


def parse_receipts_columns(data: bytes) -> tuple[BatchHeader, UsageArrays]:
    """The batch header and the receipt columns of a compact receipts file."""
    head = len(COLUMNS_MAGIC) + 4
    if len(data) < head + 32 or data[: len(COLUMNS_MAGIC)] != COLUMNS_MAGIC:
        raise ReceiptsFileError("not a compact receipts file (bad magic or too short)")
    if keccak256(data[:-32]) != data[-32:]:
        raise ReceiptsFileError("compact receipts file: checksum mismatch (corrupted?)")
    (length,) = struct.unpack(">I", data[len(COLUMNS_MAGIC) : head])
    try:
        meta = json.loads(data[head : head + length])
        header = BatchHeader.from_json(meta)
        count = int(meta["count"])
    except (ValueError, KeyError, TypeError, PublicInputError) as error:
        raise ReceiptsFileError(f"compact receipts file header: {error}") from None
    if meta.get("format") != COLUMNS_FORMAT:
        raise ReceiptsFileError(f"compact receipts file: format {meta.get('format')!r}")
    words = np.frombuffer(
        data, dtype="<u8", offset=head + length, count=(len(data) - 32 - head - length) // 8
    )
    if len(words) != 6 * count or (len(data) - 32 - head - length) % 8:
        raise ReceiptsFileError(f"compact receipts file: {len(words)} words for {count} receipts")
    payer = words[: 3 * count].reshape(count, 3)
    model_id, nonce, tokens = (words[(3 + j) * count : (4 + j) * count] for j in range(3))
    try:
        arrays = UsageArrays(
            *(np.asarray(a, dtype=np.uint64) for a in (payer, model_id, nonce, tokens))
        )
    except BatchError as error:
        raise ReceiptsFileError(str(error)) from None
    return header, arrays


def load_receipts_columns(path: Path) -> tuple[BatchHeader, UsageArrays]:
    """``parse_receipts_columns`` of a file."""
    return parse_receipts_columns(path.read_bytes())


def load_receipts(path: Path) -> tuple[BatchHeader, list[UsageRow], list[dict[str, Any]]]:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ReceiptsFileError(f"{path} is not JSON: {error}") from None
    return parse_receipts(data)


__all__ = [
    "COLUMNS_FORMAT",
    "COLUMNS_MAGIC",
    "RECEIPTS_FORMAT",
    "BatchError",
    "ReceiptsFileError",
    "is_columns_file",
    "load_receipts",
    "load_receipts_columns",
    "parse_receipts",
    "parse_receipts_columns",
    "receipts_columns_bytes",
    "receipts_file_json",
]
