"""Settling batches: channels, the receipt digest, `settle` (dry-run first) and its outcome."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eth_account.signers.local import LocalAccount
from web3.exceptions import TimeExhausted, TransactionNotFound
from web3.types import TxReceipt

from circuits.public_inputs import Aggregate
from contracts.client.codec import aggregates_abi, checksum, receipt_abi, signed_state_abi
from contracts.client.connection import ChainConnection
from contracts.client.errors import ChainError
from contracts.client.records import ChannelState, SignedState

#: settle's gas limit: a base, a per-channel allowance (measured: ~43k a new channel, ~26k a
#: channel seen before; benches/bench_gas.py) and the verifier's budget (a two-pairing check
#: alone is 113,440 gas), plus 16 per byte of proof.
GAS_SETTLE_BASE = 150_000
GAS_SETTLE_PER_CHANNEL = 60_000
GAS_VERIFIER_BUDGET = 2_500_000


class SettlementOps(ChainConnection):
    def next_batch_seq(self, operator: str) -> int:
        return int(self.call(self.settlement.functions.nextBatchSeq(checksum(operator))))

    def channel(self, payer: str, operator: str, model_id: int) -> ChannelState:
        """Channel (payer, operator, model) as settled: last nonce and cumulative tokens."""
        fn = self.settlement.functions.channelOf(checksum(payer), checksum(operator), model_id)
        nonce, cumulative = self.call(fn)
        return ChannelState(int(nonce), int(cumulative))

    def receipt_digest(self, receipt: Any) -> bytes:
        """`UsageSettlement.receiptDigest` of a receipt (`channels.receipts.UsageReceipt`): the
        EIP-712 digest the contract checks signatures on."""
        return bytes(self.call(self.settlement.functions.receiptDigest(*receipt_abi(receipt))))

    def domain_separator(self) -> bytes:
        return bytes(self.call(self.settlement.functions.domainSeparator()))

    def _settle_call(
        self,
        batch_seq: int,
        k: int,
        aggregates: Sequence[Aggregate],
        states: Sequence[SignedState],
        proof_bytes: bytes,
    ) -> tuple[Any, int]:
        """The bound `settle` call and its gas limit."""
        if len(states) != len(aggregates):
            raise ChainError(
                f"{len(aggregates)} aggregates but {len(states)} signed states: settle needs "
                "the payer's signed state for every channel"
            )
        gas = GAS_SETTLE_BASE + GAS_SETTLE_PER_CHANNEL * len(aggregates) + GAS_VERIFIER_BUDGET
        gas = min(gas + 16 * len(proof_bytes), int(self.w3.eth.get_block("latest")["gasLimit"]))
        fn = self.settlement.functions.settle(
            batch_seq,
            k,
            aggregates_abi(aggregates),
            [signed_state_abi(s) for s in states],
            proof_bytes,
        )
        return fn, gas

    def send_settle(
        self,
        operator: LocalAccount,
        batch_seq: int,
        k: int,
        aggregates: Sequence[Aggregate],
        states: Sequence[SignedState],
        proof_bytes: bytes,
    ) -> bytes:
        """Simulate `settle` with eth_call (a refusal raises ContractRevertError and costs no
        gas), then sign and broadcast it without waiting; returns the transaction hash, so the
        caller can record it before the outcome is known (see `settle_outcome`).

        `aggregates` keys strictly increasing (their `first_nonce` is ignored: the contract
        fills it in from its own state); `states[i]` is the payer's signed state ending channel
        i's run in this batch."""
        fn, gas = self._settle_call(batch_seq, k, aggregates, states, proof_bytes)
        self.call(fn, {"from": operator.address, "gas": gas})
        return self.transaction(fn, operator, gas)

    def settle(
        self,
        operator: LocalAccount | None,
        batch_seq: int,
        k: int,
        aggregates: Sequence[Aggregate],
        states: Sequence[SignedState],
        proof_bytes: bytes,
    ) -> TxReceipt:
        """`send_settle` and wait: returns the mined receipt (gas in `gasUsed`). Raises
        `ContractRevertError` with the contract's error (e.g. `InvalidProof`,
        `InsufficientEscrow`, `SignerNotAuthorized`) if the settlement is refused; nothing
        changes on chain then."""
        sender = operator or self.default_account
        tx_hash = self.send_settle(sender, batch_seq, k, aggregates, states, proof_bytes)
        receipt = self.settle_outcome(tx_hash)
        if receipt is None:
            raise ChainError(f"settle transaction 0x{tx_hash.hex()} was not mined in time")
        return receipt

    def settle_outcome(self, tx_hash: bytes, timeout: float = 120) -> TxReceipt | None:
        """The mined receipt of a transaction sent by `send_settle`, None if it is not mined
        within `timeout` seconds (or unknown to the node); a revert raises ContractRevertError."""
        try:
            receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=timeout)  # type: ignore[arg-type]
        except (TimeExhausted, TransactionNotFound):
            return None
        if receipt["status"] != 1:
            raise self.revert_reason(tx_hash)
        return receipt

    def transaction_known(self, tx_hash: bytes) -> bool:
        """True if the node knows the transaction (pending or mined)."""
        try:
            self.w3.eth.get_transaction(tx_hash)  # type: ignore[arg-type]
        except TransactionNotFound:
            return False
        return True

    def verify_batch_call(
        self,
        verifier: str,
        operator: str,
        batch_seq: int,
        aggregates: Sequence[Aggregate],
        proof_bytes: bytes,
        *,
        settlement: str | None = None,
    ) -> bool:
        """Call `verifier.verifyBatch` directly (eth_call, no transaction) with this chain's id
        and the settlement address (default: the deployment's); the aggregates' first nonces
        are passed as given. Reverts (malformed proof) raise `ContractRevertError`."""
        target = settlement or self.deployed().settlement
        fn = self.contract("IUsageVerifier", verifier).functions.verifyBatch(
            self.chain_id,
            checksum(target),
            checksum(operator),
            batch_seq,
            aggregates_abi(aggregates),
            proof_bytes,
        )
        return bool(self.call(fn))


__all__ = ["GAS_SETTLE_BASE", "GAS_SETTLE_PER_CHANNEL", "GAS_VERIFIER_BUDGET", "SettlementOps"]
