"""The receipts file that `zkmeter prove` reads (PROTOCOL §8).

    {"format": "zkmeter-receipts-v1", "chain_id", "settlement", "operator", "batch_seq",
     "receipts": [{"payer", "model_id", "nonce", "tokens", "request_hash", "signature"}]}

Every problem is reported with the receipt's index and the field, and nothing is proven
until the whole file has been read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from circuits.public_inputs import BatchHeader, PublicInputError
from prover.witness import BatchError, UsageRow

RECEIPTS_FORMAT = "zkmeter-receipts-v1"


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


def parse_receipts(data: Any) -> tuple[BatchHeader, list[UsageRow], list[dict[str, Any]]]:
    """The batch header, the rows to prove, and the receipts as given (for archiving)."""
    if not isinstance(data, dict) or data.get("format") != RECEIPTS_FORMAT:
        raise ReceiptsFileError(f"not a receipts file (expected format {RECEIPTS_FORMAT!r})")
    try:
        header = BatchHeader.from_json(data)
    except (PublicInputError, ValueError, TypeError) as error:
        raise ReceiptsFileError(f"batch header: {error}") from None
    receipts = data.get("receipts")
    if not isinstance(receipts, list):
        raise ReceiptsFileError("'receipts' must be a list")
    rows: list[UsageRow] = []
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
        rows.append(
            UsageRow(
                payer=payer,
                model_id=_integer(_field(receipt, index, "model_id"), index, "model_id"),
                nonce=_integer(_field(receipt, index, "nonce"), index, "nonce"),
                tokens=_integer(_field(receipt, index, "tokens"), index, "tokens"),
            )
        )
    return header, rows, receipts


def load_receipts(path: Path) -> tuple[BatchHeader, list[UsageRow], list[dict[str, Any]]]:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ReceiptsFileError(f"{path} is not JSON: {error}") from None
    return parse_receipts(data)


__all__ = ["BatchError", "ReceiptsFileError", "load_receipts", "parse_receipts"]
