"""What the chain holds, as typed records: the deployment, accounts, channels, models and the
settlement events. Addresses are checksummed strings; amounts are integers in token base
units; rates are base units per 1,000 tokens of usage."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

#: The zero address (a removed verifier, no owner).
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
#: `signerAuthorizedUntil` of a signer authorised with no revocation pending.
AUTHORIZED_FOREVER = (1 << 64) - 1
ANVIL_CHAIN_ID = 31337


@dataclass
class Deployment:
    """Where the contracts live; saved as JSON so the CLI and the daemon can find them."""

    chain_id: int
    token: str
    registry: str
    settlement: str
    deployer: str
    rate_notice_period: int
    thawing_period: int
    verifier_change_delay: int
    block_number: int
    #: logDomainSize -> verifier address
    verifiers: dict[int, str] = field(default_factory=dict)

    def to_json(self) -> str:
        d = asdict(self)
        d["verifiers"] = {str(k): v for k, v in sorted(self.verifiers.items())}
        return json.dumps(d, sort_keys=True, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Deployment:
        """Parse a deployment file's text; ValueError naming what is wrong with it."""
        d = json.loads(text)
        try:
            d["verifiers"] = {int(k): v for k, v in d.get("verifiers", {}).items()}
            return cls(**d)
        except (AttributeError, TypeError, ValueError) as exc:
            raise ValueError(f"not a zkmeter deployment file: {exc}") from exc

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Deployment:
        """Read a deployment file; OSError if unreadable, ValueError (naming the file) if it is
        not a deployment."""
        try:
            return cls.from_json(Path(path).read_text(encoding="utf-8"))
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from exc


@dataclass(frozen=True)
class SignedState:
    """The payer's consent to a channel's new state in a batch (struct `SignedState`): the
    rate cap and request hash of the channel's last receipt in the batch, and its signature.
    The contract rebuilds the rest of the receipt (payer, operator, model, nonce, cumulative)."""

    max_rate_per_k_tokens: int
    request_hash: bytes
    signature: bytes

    @classmethod
    def of(cls, receipt: Any) -> SignedState:
        """The signed state of a receipt (any object with `max_rate_per_k_tokens`,
        `request_hash` and `signature`, e.g. a `channels.receipts.SignedReceipt`)."""
        return cls(receipt.max_rate_per_k_tokens, receipt.request_hash, receipt.signature)


@dataclass(frozen=True)
class EscrowAccount:
    """A (payer, operator) escrow account: `thawing` of `balance` is withdrawable from
    `thaw_ends_at` (0: no withdrawal requested)."""

    balance: int
    thawing: int
    thaw_ends_at: int

    @property
    def available(self) -> int:
        """The balance net of the amount thawing (what backs newly admitted usage)."""
        return max(self.balance - self.thawing, 0)


@dataclass(frozen=True)
class ChannelState:
    """A channel (payer, operator, model) as settled: last nonce and cumulative tokens."""

    nonce: int
    cumulative_tokens: int


@dataclass(frozen=True)
class ModelInfo:
    """`ModelRegistry.modelOf`: a model, its owner and its rates now and pending."""

    model_id: int
    model_hash: bytes
    owner: str
    registered_at: int
    current_rate: int
    pending_rate: int
    pending_rate_effective_from: int  # 0: no change pending
    metadata_uri: str

    @property
    def highest_rate(self) -> int:
        """The highest rate that can apply before a new proposal could take effect."""
        pending = self.pending_rate if self.pending_rate_effective_from else 0
        return max(self.current_rate, pending)


@dataclass(frozen=True)
class ChannelSettled:
    """A `ChannelSettled` event (`rate_per_k_tokens` is the rate charged: min(current, cap))."""

    operator: str
    payer: str
    model_id: int
    batch_seq: int
    first_nonce: int
    count: int
    tokens: int
    cumulative_tokens: int
    rate_per_k_tokens: int
    amount: int
    model_owner: str


@dataclass(frozen=True)
class BatchSettled:
    """A `BatchSettled` event with the `ChannelSettled` events of the same transaction."""

    operator: str
    batch_seq: int
    k: int
    proof_hash: bytes
    witness_commitments: bytes
    total_tokens: int
    total_amount: int
    block_number: int
    transaction_hash: bytes
    channels: tuple[ChannelSettled, ...]


__all__ = [
    "ANVIL_CHAIN_ID",
    "AUTHORIZED_FOREVER",
    "ZERO_ADDRESS",
    "BatchSettled",
    "ChannelSettled",
    "ChannelState",
    "Deployment",
    "EscrowAccount",
    "ModelInfo",
    "SignedState",
]
