"""The typed chain client: the only code of zkmeter that talks to web3.

`ChainClient` (contracts.client.chain) gathers one module per concern; records
(contracts.client.records) are what it returns; contracts.client.codec is the one place where
zkmeter's types become ABI values and events become records.
"""

from contracts.client.artifacts import ARTIFACTS_DIR, ArtifactError, load_artifact
from contracts.client.chain import ChainClient
from contracts.client.codec import checksum
from contracts.client.connection import GAS_DEPLOY, GAS_TX
from contracts.client.errors import (
    ChainError,
    ContractRevertError,
    InsufficientFundsError,
    NoContractError,
    NodeRequestError,
    NodeUnreachableError,
    WrongChainError,
    chain_error_of,
    decode_revert,
)
from contracts.client.records import (
    ANVIL_CHAIN_ID,
    AUTHORIZED_FOREVER,
    ZERO_ADDRESS,
    BatchSettled,
    ChannelSettled,
    ChannelState,
    Deployment,
    EscrowAccount,
    ModelInfo,
    SignedState,
)

__all__ = [
    "ANVIL_CHAIN_ID",
    "ARTIFACTS_DIR",
    "AUTHORIZED_FOREVER",
    "GAS_DEPLOY",
    "GAS_TX",
    "ZERO_ADDRESS",
    "ArtifactError",
    "BatchSettled",
    "ChainClient",
    "ChainError",
    "ChannelSettled",
    "ChannelState",
    "ContractRevertError",
    "Deployment",
    "EscrowAccount",
    "InsufficientFundsError",
    "ModelInfo",
    "NoContractError",
    "NodeRequestError",
    "NodeUnreachableError",
    "SignedState",
    "WrongChainError",
    "chain_error_of",
    "checksum",
    "decode_revert",
    "load_artifact",
]
