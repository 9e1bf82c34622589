"""Reading settled batches back from the chain's events and calldata."""

from __future__ import annotations

from typing import Any

from web3 import Web3

from contracts.client.codec import batch_settled_from_event, channel_settled_from_event, checksum
from contracts.client.errors import ChainError
from contracts.client.records import BatchSettled, ChannelSettled
from contracts.client.settlement import SettlementOps


class EventOps(SettlementOps):
    def batch_events(
        self,
        from_block: int | None = None,
        to_block: int | str = "latest",
        operator: str | None = None,
    ) -> list[BatchSettled]:
        """Settled batches (oldest first), each with its channels."""
        start = self.deployed().block_number if from_block is None else from_block
        filters: dict[str, Any] = {"from_block": start, "to_block": to_block}
        if operator is not None:
            filters["argument_filters"] = {"operator": checksum(operator)}
        by_tx: dict[bytes, list[ChannelSettled]] = {}
        for log in self.settlement.events.ChannelSettled().get_logs(**filters):
            channel = channel_settled_from_event(log["args"])
            by_tx.setdefault(bytes(log["transactionHash"]), []).append(channel)
        return [
            batch_settled_from_event(log, by_tx.get(bytes(log["transactionHash"]), []))
            for log in self.settlement.events.BatchSettled().get_logs(**filters)
        ]

    def channel_events(
        self, from_block: int | None = None, to_block: int | str = "latest"
    ) -> list[ChannelSettled]:
        """Every `ChannelSettled` event (oldest first): what each channel paid, and to whom
        (`model_owner`, the model's owner when it settled)."""
        start = self.deployed().block_number if from_block is None else from_block
        logs = self.settlement.events.ChannelSettled().get_logs(from_block=start, to_block=to_block)
        return [channel_settled_from_event(log["args"]) for log in logs]

    def settled_batch_event(self, operator: str, batch_seq: int) -> BatchSettled | None:
        """The `BatchSettled` record of `operator`'s batch `batch_seq`, None if not settled."""
        if self.next_batch_seq(operator) <= batch_seq:
            return None
        for event in self.batch_events(operator=operator):
            if event.batch_seq == batch_seq:
                return event
        raise ChainError(f"the chain is past batch {batch_seq} but has no BatchSettled for it")

    def settled_batch(self, operator: str, batch_seq: int) -> tuple[BatchSettled, bytes]:
        """The `BatchSettled` record of `operator`'s batch `batch_seq` and the proof bytes
        it was settled with, read back from the settling transaction's calldata and checked
        against the proof hash the event committed to."""
        event = self.settled_batch_event(operator, batch_seq)
        if event is None:
            raise ChainError(f"no settled batch {batch_seq} of operator {operator} on this chain")
        tx = self.w3.eth.get_transaction(event.transaction_hash)  # type: ignore[arg-type]
        function, args = self.settlement.decode_function_input(tx["input"])
        if function.fn_name != "settle":
            raise ChainError(f"transaction 0x{event.transaction_hash.hex()} is not a settle call")
        proof = bytes(args["proof"])
        if Web3.keccak(proof) != event.proof_hash:
            raise ChainError("the settling transaction's proof does not match the event's hash")
        return event, proof


__all__ = ["EventOps"]
