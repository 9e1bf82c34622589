"""`ChainClient`: every chain operation of zkmeter on one object, each concern in its module."""

from __future__ import annotations

from contracts.client.deployment import DeploymentOps
from contracts.client.devnode import DevNodeOps
from contracts.client.escrow import EscrowOps
from contracts.client.events import EventOps
from contracts.client.registry import RegistryOps
from contracts.client.settlement import SettlementOps


class ChainClient(DeploymentOps, RegistryOps, EscrowOps, EventOps, SettlementOps, DevNodeOps):
    """Deploy, settle and read the zkmeter contracts on one chain: `ChainClient.embedded()`
    (web3's in-process chain) or `ChainClient.connect(rpc_url, key)` (any JSON-RPC node).

    Connection, sending and calling: contracts.client.connection; deployment and verifier
    changes: .deployment; models: .registry; token, escrow, signers, earnings: .escrow;
    settling: .settlement; reading settled batches: .events; time travel: .devnode."""


__all__ = ["ChainClient"]
