"""What a chain operation can fail with, each as one sentence a user can act on, and how
revert data and the node's error replies become those errors.

Every failure of the chain client is a `ChainError`; the ones a user can fix have their own
class and message:

| class | when | the sentence says |
| --- | --- | --- |
| `NodeUnreachableError` | no answer from the JSON-RPC URL | which URL, why, to check it |
| `InsufficientFundsError` | the sender cannot pay the gas | which account, its ETH, the cost |
| `WrongChainError` | the deployment is for another chain id | both chain ids, the URL |
| `NoContractError` | no code at a deployment's address | which contract, which address |
| `ContractRevertError` | a call or transaction reverted | the decoded custom error, named |
| `NodeRequestError` | any other error reply of the node | the node's own message |

Inside the client a node that stops answering stays the HTTP layer's `OSError` (callers such
as the daemon retry on it); `chain_error_of(exc)` turns that and web3's exceptions into the
classes above, and the command line uses it as a last net, so no traceback reaches a user for
an error of this kind.
"""

from __future__ import annotations

import ast
import json
from decimal import Decimal
from functools import cache
from typing import Any

import requests
from eth_abi.abi import decode as abi_decode
from eth_utils.abi import function_signature_to_4byte_selector
from eth_utils.address import to_checksum_address

from contracts.client.artifacts import all_abis


class ChainError(Exception):
    """A chain operation failed for a reason other than a contract revert."""


class NodeUnreachableError(ChainError):
    """No JSON-RPC node answers at `url` (refused, timed out, not HTTP, not JSON-RPC)."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(
            f"cannot reach the node at {url} ({reason}): is it running? Check --rpc-url or "
            "ZKMETER_RPC_URL"
        )


class InsufficientFundsError(ChainError):
    """The sending account's ether does not cover the transaction's gas (and value)."""

    def __init__(self, account: str | None, balance: int | None, cost: int | None) -> None:
        self.account = account
        self.balance = balance
        self.cost = cost
        who = "the sending account" if account is None else f"account {account}"
        held = "" if balance is None else f": it holds {ether(balance)} ETH"
        needed = "" if cost is None else f" and this transaction may cost up to {ether(cost)} ETH"
        super().__init__(f"{who} cannot pay for gas{held}{needed}; send it some ETH first")


class WrongChainError(ChainError):
    """A deployment made on one chain used against a node of another chain."""

    def __init__(self, deployment_chain_id: int, node_chain_id: int, url: str) -> None:
        self.deployment_chain_id = deployment_chain_id
        self.node_chain_id = node_chain_id
        super().__init__(
            f"the deployment is for chain {deployment_chain_id}, connected to {node_chain_id} "
            f"at {url}: use chain {deployment_chain_id}'s node (--rpc-url) or chain "
            f"{node_chain_id}'s deployment file (--deployment)"
        )


class NoContractError(ChainError):
    """No contract code where the deployment says a contract is."""

    def __init__(self, what: str, address: str, url: str) -> None:
        self.what = what
        self.address = address
        super().__init__(
            f"no contract at {address} ({what}) on the node at {url}: was the node restarted "
            "or is the deployment file from another node? Deploy again (zkmeter chain deploy, "
            "or a fresh zkmeter devnet)"
        )


class NodeRequestError(ChainError):
    """Any other error reply of the node to a request (`method`), with the node's message."""

    def __init__(self, method: str, message: str) -> None:
        self.method = method
        self.message = message
        super().__init__(f"the node refused {method}: {message}")


#: What to do about the reverts a user is most likely to meet, after the decoded error.
REVERT_HINTS: dict[str, str] = {
    "ERC20InsufficientBalance": "the account holds too few tokens (zkmeter token balance)",
    "OwnableUnauthorizedAccount": "only the contract's owner may do this",
    "InsufficientEscrow": "the payer's escrow for this operator does not cover the usage",
    "StillThawing": "the withdrawal is still thawing",
    "NoWithdrawalRequested": "request a withdrawal first (zkmeter escrow request-withdrawal)",
    "NothingToWithdraw": "there is nothing to withdraw",
    "NotModelOwner": "only the model's owner may do this",
    "UnknownModel": "no model with this id is registered (zkmeter models list)",
    "ModelHashTaken": "a model with this hash is registered already",
    "WrongBatchSeq": "the operator's next batch has another number",
}


class ContractRevertError(ChainError):
    """A transaction or call reverted: `error` names the decoded custom error, `args_` its values
    (`names` their parameter names, where the ABI gives them).

    For example `ContractRevertError("InsufficientEscrow", (payer, needed, available))`.
    """

    def __init__(
        self, error: str, args: tuple[Any, ...], data: str = "", names: tuple[str, ...] = ()
    ) -> None:
        self.error = error
        self.args_ = args
        self.data = data
        self.names = names
        super().__init__(self._sentence())

    def _sentence(self) -> str:
        if not self.error:
            return f"reverted without a known error ({self.data or 'no revert data'})"
        if self.names and len(self.names) == len(self.args_) and all(self.names):
            shown = ", ".join(f"{n}={v}" for n, v in zip(self.names, self.args_, strict=True))
        else:
            shown = ", ".join(str(v) for v in self.args_)
        hint = REVERT_HINTS.get(self.error)
        return f"reverted with {self.error}({shown})" + (f": {hint}" if hint else "")


@cache
def _error_table() -> dict[bytes, tuple[str, list[str], tuple[str, ...]]]:
    """4-byte selector -> (name, input types, input names) of every custom error in every
    artefact."""
    table: dict[bytes, tuple[str, list[str], tuple[str, ...]]] = {}
    table[bytes.fromhex("08c379a0")] = ("Error", ["string"], ("reason",))
    table[bytes.fromhex("4e487b71")] = ("Panic", ["uint256"], ("code",))
    for abi in all_abis():
        for item in abi:
            if item.get("type") != "error":
                continue
            types = [_abi_type(i) for i in item["inputs"]]
            names = tuple(str(i.get("name", "")) for i in item["inputs"])
            sig = f"{item['name']}({','.join(types)})"
            table[function_signature_to_4byte_selector(sig)] = (item["name"], types, names)
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
    name, types, names = entry
    values = tuple(abi_decode(types, raw[4:]))
    values = tuple(
        to_checksum_address(v) if t == "address" else v for t, v in zip(types, values, strict=True)
    )
    return ContractRevertError(name, values, "0x" + raw.hex(), names)


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
    return ContractRevertError("Error", (str(reason),), "", ("reason",))


def ether(wei: int) -> str:
    """Wei as ether, exactly, without trailing zeros: 363532701600000 -> "0.0003635327016"."""
    text = f"{Decimal(wei).scaleb(-18):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def rpc_message(exc: Exception) -> str:
    """The node's own message in a web3 `Web3RPCError` (its `error.message`), else str(exc)."""
    response = getattr(exc, "rpc_response", None)
    if isinstance(response, dict):
        error = response.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if isinstance(error, str) and error:
            return error
    return str(getattr(exc, "message", "") or exc)


def is_insufficient_funds(message: str) -> bool:
    """True for the nodes' replies to a transaction its sender's ether cannot pay for (anvil:
    "Insufficient funds for gas * price + value", geth: "insufficient funds for gas * price +
    value: address ... have 0 want ...", py-evm: "Sender does not have enough balance")."""
    text = message.lower()
    return "insufficient funds" in text or "does not have enough balance" in text


def connection_reason(exc: BaseException) -> str:
    """A short reason for a failed HTTP exchange with a node ("connection refused", ...)."""
    text = str(exc).lower()
    if isinstance(exc, json.JSONDecodeError) or "could not decode" in text:
        return "the reply is not JSON-RPC"
    if isinstance(exc, requests.exceptions.Timeout) or "timed out" in text:
        return "no answer: timed out"
    if "refused" in text:
        return "connection refused"
    if "name or service not known" in text or "nodename nor servname" in text:
        return "unknown host name"
    invalid = (
        requests.exceptions.InvalidURL,
        requests.exceptions.InvalidSchema,
        requests.exceptions.MissingSchema,
    )
    if isinstance(exc, invalid):
        return "not a valid http(s) URL"
    if isinstance(exc, requests.exceptions.HTTPError):
        return f"HTTP error: {exc}"
    return type(exc).__name__


def _request_url(exc: BaseException) -> str | None:
    """The node URL a failed `requests` exchange was for ("http://127.0.0.1:8545")."""
    request = getattr(exc, "request", None)
    url = getattr(request, "url", None)
    if not isinstance(url, str) or not url:
        return None
    return url[:-1] if url.endswith("/") and url.count("/") == 3 else url


def chain_error_of(exc: BaseException, url: str = "the node") -> ChainError | None:
    """The `ChainError` an exception of the chain stack stands for: itself if it is one; for
    web3's and the HTTP layer's exceptions, the matching class above; None for anything else
    (a bug, which should keep its traceback)."""
    if isinstance(exc, ChainError):
        return exc
    from web3.exceptions import (
        BadFunctionCallOutput,
        ContractLogicError,
        TimeExhausted,
        Web3RPCError,
    )

    if isinstance(exc, requests.exceptions.RequestException):
        return NodeUnreachableError(_request_url(exc) or url, connection_reason(exc))
    if isinstance(exc, ContractLogicError):
        return decode_revert(revert_data(exc))
    if isinstance(exc, Web3RPCError):
        message = rpc_message(exc)
        if is_insufficient_funds(message):
            return InsufficientFundsError(None, None, None)
        return NodeRequestError("a request", message)
    if isinstance(exc, BadFunctionCallOutput):
        return ChainError(
            "a contract call returned nothing: no contract at that address, or not the "
            "contract the deployment names"
        )
    if isinstance(exc, TimeExhausted):
        return ChainError(f"the node did not mine the transaction in time: {exc}")
    return None


__all__ = [
    "REVERT_HINTS",
    "ChainError",
    "ContractRevertError",
    "InsufficientFundsError",
    "NoContractError",
    "NodeRequestError",
    "NodeUnreachableError",
    "WrongChainError",
    "chain_error_of",
    "decode_revert",
    "ether",
    "revert_data",
    "tester_revert",
]
