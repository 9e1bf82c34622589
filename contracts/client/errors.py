"""What a chain operation can fail with, and how revert data becomes a named error."""

from __future__ import annotations

import ast
from functools import cache
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_utils.abi import function_signature_to_4byte_selector
from eth_utils.address import to_checksum_address

from contracts.client.artifacts import all_abis


class ChainError(Exception):
    """A chain operation failed for a reason other than a contract revert."""


class ContractRevertError(ChainError):
    """A transaction or call reverted: `error` names the decoded custom error, `args_` its values.

    For example `ContractRevertError("InsufficientEscrow", (payer, needed, available))`.
    """

    def __init__(self, error: str, args: tuple[Any, ...], data: str = "") -> None:
        self.error = error
        self.args_ = args
        self.data = data
        super().__init__(f"reverted with {error}{args!r}" if error else f"reverted ({data})")


@cache
def _error_table() -> dict[bytes, tuple[str, list[str]]]:
    """4-byte selector -> (name, input types) of every custom error in every artefact."""
    table: dict[bytes, tuple[str, list[str]]] = {}
    table[bytes.fromhex("08c379a0")] = ("Error", ["string"])
    table[bytes.fromhex("4e487b71")] = ("Panic", ["uint256"])
    for abi in all_abis():
        for item in abi:
            if item.get("type") != "error":
                continue
            types = [_abi_type(i) for i in item["inputs"]]
            sig = f"{item['name']}({','.join(types)})"
            table[function_signature_to_4byte_selector(sig)] = (item["name"], types)
    return table


def _abi_type(param: dict[str, Any]) -> str:
    t: str = param["type"]
    if t.startswith("tuple"):
        return "(" + ",".join(_abi_type(c) for c in param["components"]) + ")" + t[5:]
    return t


def decode_revert(data: str | bytes | None) -> ContractRevertError:
    """Decode revert data into a `ContractRevertError` naming the custom error and its arguments."""
    raw = (
        bytes.fromhex(data[2:] if data.startswith("0x") else data)
        if isinstance(data, str)
        else data
    )
    if not raw or len(raw) < 4:
        return ContractRevertError("", (), "0x" + (raw or b"").hex())
    entry = _error_table().get(raw[:4])
    if entry is None:
        return ContractRevertError("", (), "0x" + raw.hex())
    name, types = entry
    values = tuple(abi_decode(types, raw[4:]))
    values = tuple(
        to_checksum_address(v) if t == "address" else v for t, v in zip(types, values, strict=True)
    )
    return ContractRevertError(name, values, "0x" + raw.hex())


def revert_data(exc: Any) -> str | None:
    """The revert data a web3 `ContractLogicError` carries."""
    data = exc.data
    if isinstance(data, dict):
        data = data.get("data")
    return data  # type: ignore[no-any-return]


def tester_revert(exc: Exception) -> ContractRevertError:
    """Decode eth-tester's `TransactionFailed`, which carries the revert data as the str() of
    its bytes (b'...'), possibly after "execution reverted: "."""
    reason: Any = exc.args[0] if exc.args else b""
    if isinstance(reason, str):
        text = reason.removeprefix("execution reverted: ")
        if text.startswith(("b'", 'b"')):
            reason = ast.literal_eval(text)
    if isinstance(reason, bytes):
        return decode_revert(reason)
    return ContractRevertError("Error", (str(reason),), "")


__all__ = ["ChainError", "ContractRevertError", "decode_revert", "revert_data", "tester_revert"]
