"""The one place where zkmeter's types become contract ABI values and events become records.

No other module builds ABI tuples or checksums addresses for the chain: the public inputs'
integers (`circuits.public_inputs`), receipts and signed states go through these functions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from eth_utils.address import to_checksum_address

from circuits.public_inputs import Aggregate
from contracts.client.errors import ChainError
from contracts.client.records import (
    BatchSettled,
    ChannelSettled,
    EscrowAccount,
    ModelInfo,
    SignedState,
)


def checksum(address: str | int) -> str:
    """The EIP-55 checksummed form of an address given as hex or as an integer (an integer is
    padded to 20 bytes first: `to_checksum_address(int)` would drop leading zero bytes)."""
    if isinstance(address, int) and not isinstance(address, bool):
        if not 0 <= address < 1 << 160:
            raise ChainError(f"{address:#x} is not a 20-byte address")
        return str(to_checksum_address(f"0x{address:040x}"))
    if not isinstance(address, str):
        raise ChainError(f"{address!r} is not an address")
    try:
        return str(to_checksum_address(address))
    except ValueError as exc:
        raise ChainError(f"{address!r} is not a 20-byte hex address") from exc


def aggregate_abi(a: Aggregate) -> tuple[str, int, int, int, int]:
    """struct Aggregate {address payer; uint64 modelId, firstNonce, count, tokens}."""
    return (checksum(a.payer), a.model_id, a.first_nonce, a.count, a.tokens)


def aggregates_abi(aggregates: Iterable[Aggregate]) -> list[tuple[str, int, int, int, int]]:
    return [aggregate_abi(a) for a in aggregates]


def signed_state_abi(state: SignedState) -> tuple[int, bytes, bytes]:
    """struct SignedState {uint256 maxRatePerKTokens; bytes32 requestHash; bytes signature}."""
    return (state.max_rate_per_k_tokens, state.request_hash, state.signature)


def receipt_abi(receipt: Any) -> tuple[str, str, int, int, int, int, bytes]:
    """The arguments of `receiptDigest` from a receipt (`channels.receipts.UsageReceipt` or
    any object with its fields)."""
    return (
        checksum(receipt.payer),
        checksum(receipt.operator),
        receipt.model_id,
        receipt.nonce,
        receipt.cumulative_tokens,
        receipt.max_rate_per_k_tokens,
        receipt.request_hash,
    )


def escrow_account_from_abi(values: Sequence[Any]) -> EscrowAccount:
    balance, thawing, thaw_ends_at = values
    return EscrowAccount(int(balance), int(thawing), int(thaw_ends_at))


def model_info_from_abi(values: Sequence[Any]) -> ModelInfo:
    """`ModelRegistry.ModelInfo` (modelId, modelHash, owner, registeredAt, currentRate,
    pendingRate, pendingRateEffectiveFrom, metadataURI)."""
    model_id, model_hash, owner, registered_at, current, pending, pending_from, uri = values
    return ModelInfo(
        int(model_id),
        bytes(model_hash),
        checksum(owner),
        int(registered_at),
        int(current),
        int(pending),
        int(pending_from),
        str(uri),
    )


def channel_settled_from_event(args: Mapping[str, Any]) -> ChannelSettled:
    return ChannelSettled(
        operator=checksum(args["operator"]),
        payer=checksum(args["payer"]),
        model_id=int(args["modelId"]),
        batch_seq=int(args["batchSeq"]),
        first_nonce=int(args["firstNonce"]),
        count=int(args["count"]),
        tokens=int(args["tokens"]),
        cumulative_tokens=int(args["cumulativeTokens"]),
        rate_per_k_tokens=int(args["ratePerKTokens"]),
        amount=int(args["amount"]),
        model_owner=checksum(args["modelOwner"]),
    )


def batch_settled_from_event(
    log: Mapping[str, Any], channels: Sequence[ChannelSettled]
) -> BatchSettled:
    a = log["args"]
    return BatchSettled(
        operator=checksum(a["operator"]),
        batch_seq=int(a["batchSeq"]),
        k=int(a["logDomainSize"]),
        proof_hash=bytes(a["proofHash"]),
        witness_commitments=bytes(a["witnessCommitments"]),
        total_tokens=int(a["totalTokens"]),
        total_amount=int(a["totalAmount"]),
        block_number=int(log["blockNumber"]),
        transaction_hash=bytes(log["transactionHash"]),
        channels=tuple(channels),
    )


__all__ = [
    "aggregate_abi",
    "aggregates_abi",
    "batch_settled_from_event",
    "channel_settled_from_event",
    "checksum",
    "escrow_account_from_abi",
    "model_info_from_abi",
    "receipt_abi",
    "signed_state_abi",
]
