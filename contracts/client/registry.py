"""The model registry: models, owners and rates with notice."""

from __future__ import annotations

from eth_account.signers.local import LocalAccount
from web3.logs import DISCARD
from web3.types import TxReceipt

from contracts.client.codec import checksum, model_info_from_abi
from contracts.client.connection import GAS_TX, ChainConnection
from contracts.client.records import ModelInfo


class RegistryOps(ChainConnection):
    def register_model(
        self,
        model_hash: bytes,
        rate_per_k_tokens: int,
        metadata_uri: str = "",
        *,
        sender: LocalAccount | None = None,
    ) -> int:
        """Register a model owned by `sender`; returns its id."""
        receipt = self.send(
            self.registry.functions.register(model_hash, rate_per_k_tokens, metadata_uri),
            sender,
            GAS_TX + 20_000 * (len(metadata_uri) // 32 + 1),
        )
        (event,) = self.registry.events.ModelRegistered().process_receipt(receipt, errors=DISCARD)
        return int(event["args"]["modelId"])

    def propose_rate(
        self, model_id: int, new_rate: int, *, sender: LocalAccount | None = None
    ) -> int:
        """Propose a new rate; returns the timestamp from which it applies."""
        receipt = self.send(self.registry.functions.proposeRate(model_id, new_rate), sender, GAS_TX)
        (event,) = self.registry.events.RateProposed().process_receipt(receipt, errors=DISCARD)
        return int(event["args"]["effectiveFrom"])

    def transfer_model_ownership(
        self, model_id: int, new_owner: str, *, sender: LocalAccount | None = None
    ) -> TxReceipt:
        fn = self.registry.functions.transferModelOwnership(model_id, checksum(new_owner))
        return self.send(fn, sender, GAS_TX)

    def model(self, model_id: int) -> ModelInfo:
        """`ModelRegistry.modelOf`: owner, rates now and pending, metadata."""
        return model_info_from_abi(self.call(self.registry.functions.modelOf(model_id)))

    def model_count(self) -> int:
        return int(self.call(self.registry.functions.modelCount()))

    def current_rate(self, model_id: int) -> int:
        return int(self.call(self.registry.functions.currentRate(model_id)))

    def rate_at(self, model_id: int, timestamp: int) -> int:
        return int(self.call(self.registry.functions.rateAt(model_id, timestamp)))


__all__ = ["RegistryOps"]
