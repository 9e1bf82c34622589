"""Signed usage receipts (EIP-712) and the operator's admission rules (DESIGN "Receipts").

A payer signs, for every call, the EIP-712 typed data (https://eips.ethereum.org/EIPS/eip-712)

    UsageReceipt(address operator,uint64 modelId,uint64 nonce,uint32 tokens,bytes32 requestHash)

under the domain {name "zkmeter", version "1", chainId, verifyingContract = settlement}, so a
receipt is bound to one chain and one settlement contract. The digest signed is
keccak256(0x1901 || domainSeparator || hashStruct(receipt)), the same bytes as
`UsageSettlement.receiptDigest(...)` on chain.

The operator admits a receipt only if (each rule its own error class below):
1. the signature recovers the payer named in the receipt  (`BadSignatureError`);
2. the receipt names this operator                        (`WrongOperatorError`);
3. the model exists in the registry                        (`UnknownModelError`);
4. tokens < 2^32                                           (`TokensOutOfRangeError`);
5. the nonce is the channel's next one: last settled on chain + admitted but unsettled + 1
   (`NonceReusedError` if at or below it, `NonceGapError` if above);
6. the payer has authorised this operator on chain (`OperatorNotAuthorizedError`; without
   it settlement would revert and block the batch);
7. the payer's escrow covers all its unsettled usage, each receipt priced at its model's
   current rate, tokens * rate // 1000 summed per receipt (`CreditExceededError`).
A refusal changes no stored state: checks run before anything is written.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from eth_account import Account
from eth_account.messages import SignableMessage, encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_utils.address import is_hex_address, to_checksum_address
from eth_utils.crypto import keccak

#: EIP-712 domain name and version of the settlement contract.
DOMAIN_NAME = "zkmeter"
DOMAIN_VERSION = "1"
#: Rates are base units per this many tokens of usage (UsageSettlement.TOKENS_PER_RATE_UNIT).
TOKENS_PER_RATE_UNIT = 1000
TOKENS_LIMIT = 1 << 32
UINT64_LIMIT = 1 << 64

RECEIPT_TYPES: dict[str, list[dict[str, str]]] = {
    "UsageReceipt": [
        {"name": "operator", "type": "address"},
        {"name": "modelId", "type": "uint64"},
        {"name": "nonce", "type": "uint64"},
        {"name": "tokens", "type": "uint32"},
        {"name": "requestHash", "type": "bytes32"},
    ]
}
#: keccak256 of the type string (= UsageSettlement.RECEIPT_TYPEHASH).
RECEIPT_TYPEHASH = keccak(
    text="UsageReceipt(address operator,uint64 modelId,uint64 nonce,uint32 tokens,"
    "bytes32 requestHash)"
)


class ReceiptError(ValueError):
    """A receipt is malformed or refused. `code` is the rule's short name (HTTP error code)."""

    code = "malformed_receipt"


class MalformedReceiptError(ReceiptError):
    code = "malformed_receipt"


class BadSignatureError(ReceiptError):
    code = "bad_signature"


class WrongOperatorError(ReceiptError):
    code = "wrong_operator"


class UnknownModelError(ReceiptError):
    code = "unknown_model"


class TokensOutOfRangeError(ReceiptError):
    code = "tokens_out_of_range"


class NonceReusedError(ReceiptError):
    code = "nonce_reused"


class NonceGapError(ReceiptError):
    code = "nonce_gap"


class CreditExceededError(ReceiptError):
    code = "credit_exceeded"


class OperatorNotAuthorizedError(ReceiptError):
    code = "operator_not_authorized"


REFUSAL_CODES = tuple(
    c.code
    for c in (
        MalformedReceiptError,
        BadSignatureError,
        WrongOperatorError,
        UnknownModelError,
        TokensOutOfRangeError,
        NonceReusedError,
        NonceGapError,
        CreditExceededError,
        OperatorNotAuthorizedError,
    )
)


@dataclass(frozen=True)
class ReceiptDomain:
    """The EIP-712 domain receipts are signed under: one chain, one settlement contract."""

    chain_id: int
    settlement: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": DOMAIN_NAME,
            "version": DOMAIN_VERSION,
            "chainId": self.chain_id,
            "verifyingContract": to_checksum_address(self.settlement),
        }


@dataclass(frozen=True)
class SignedReceipt:
    """One call's receipt with the payer's 65-byte signature (r || s || v)."""

    payer: str
    operator: str
    model_id: int
    nonce: int
    tokens: int
    request_hash: bytes
    signature: bytes

    @property
    def channel(self) -> tuple[str, str, int]:
        return (self.payer, self.operator, self.model_id)

    def message(self) -> dict[str, Any]:
        return {
            "operator": self.operator,
            "modelId": self.model_id,
            "nonce": self.nonce,
            "tokens": self.tokens,
            "requestHash": self.request_hash,
        }

    def to_json(self) -> dict[str, Any]:
        """The receipts-file form (PROTOCOL §8), with the operator."""
        return {
            "payer": self.payer,
            "operator": self.operator,
            "model_id": self.model_id,
            "nonce": self.nonce,
            "tokens": self.tokens,
            "request_hash": "0x" + self.request_hash.hex(),
            "signature": "0x" + self.signature.hex(),
        }

    @classmethod
    def from_json(cls, data: Any, operator: str | None = None) -> SignedReceipt:
        """Parse and range-check the fields (not the signature); `operator` fills a missing one."""
        if not isinstance(data, dict):
            raise MalformedReceiptError("a receipt must be a JSON object")
        op = data.get("operator", operator)
        return cls(
            payer=_address(data.get("payer"), "payer"),
            operator=_address(op, "operator"),
            model_id=_uint(data.get("model_id"), "model_id", UINT64_LIMIT),
            nonce=_uint(data.get("nonce"), "nonce", UINT64_LIMIT),
            tokens=_uint(data.get("tokens"), "tokens", None),
            request_hash=_bytes(data.get("request_hash"), "request_hash", 32),
            signature=_bytes(data.get("signature"), "signature", 65),
        )


def _address(value: Any, name: str) -> str:
    if not isinstance(value, str) or not is_hex_address(value):
        raise MalformedReceiptError(f"{name} must be a 0x-prefixed 20-byte hex address")
    return to_checksum_address(value)


def _uint(value: Any, name: str, limit: int | None) -> int:
    if isinstance(value, str):
        try:
            value = int(value, 0)
        except ValueError:
            raise MalformedReceiptError(f"{name} {value!r} is not an integer") from None
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedReceiptError(f"{name} must be an integer, got {value!r}")
    if value < 0 or (limit is not None and value >= limit):
        raise MalformedReceiptError(f"{name} {value} is out of range")
    return value


def _bytes(value: Any, name: str, length: int) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise MalformedReceiptError(f"{name} must be 0x-prefixed hex")
    try:
        raw = bytes.fromhex(value[2:])
    except ValueError:
        raise MalformedReceiptError(f"{name} is not hex") from None
    if len(raw) != length:
        raise MalformedReceiptError(f"{name} must be {length} bytes, got {len(raw)}")
    return raw


def receipt_signable(
    domain: ReceiptDomain,
    operator: str,
    model_id: int,
    nonce: int,
    tokens: int,
    request_hash: bytes,
) -> SignableMessage:
    """The EIP-712 message for one receipt (eth-account `encode_typed_data`)."""
    return encode_typed_data(
        domain_data=domain.as_dict(),
        message_types=RECEIPT_TYPES,
        message_data={
            "operator": to_checksum_address(operator),
            "modelId": model_id,
            "nonce": nonce,
            "tokens": tokens,
            "requestHash": request_hash,
        },
    )


def receipt_digest(
    domain: ReceiptDomain,
    operator: str,
    model_id: int,
    nonce: int,
    tokens: int,
    request_hash: bytes,
) -> bytes:
    """keccak256(0x19 0x01 || domainSeparator || hashStruct(receipt)), the digest signed."""
    m = receipt_signable(domain, operator, model_id, nonce, tokens, request_hash)
    return keccak(b"\x19" + m.version + m.header + m.body)


def sign_receipt(
    account: LocalAccount,
    domain: ReceiptDomain,
    operator: str,
    model_id: int,
    nonce: int,
    tokens: int,
    request_hash: bytes,
) -> SignedReceipt:
    """The payer's signed receipt for one call."""
    if not 0 <= tokens < TOKENS_LIMIT:
        raise TokensOutOfRangeError(f"tokens {tokens} is not in [0, 2^32)")
    signable = receipt_signable(domain, operator, model_id, nonce, tokens, request_hash)
    signed = account.sign_message(signable)
    return SignedReceipt(
        payer=account.address,
        operator=to_checksum_address(operator),
        model_id=model_id,
        nonce=nonce,
        tokens=tokens,
        request_hash=request_hash,
        signature=bytes(signed.signature),
    )


def recover_payer(receipt: SignedReceipt, domain: ReceiptDomain) -> str:
    """The address whose key produced `receipt.signature` over the receipt (checksummed).

    Raises BadSignatureError if the signature cannot be recovered at all (or tokens do not
    fit uint32, which no valid signature can cover)."""
    if not 0 <= receipt.tokens < TOKENS_LIMIT:
        raise TokensOutOfRangeError(f"tokens {receipt.tokens} is not in [0, 2^32)")
    signable = receipt_signable(
        domain,
        receipt.operator,
        receipt.model_id,
        receipt.nonce,
        receipt.tokens,
        receipt.request_hash,
    )
    try:
        return str(Account.recover_message(signable, signature=receipt.signature))
    except Exception as error:  # eth-keys raises several types for malformed signatures
        raise BadSignatureError(f"signature cannot be recovered: {error}") from None


class PayerSession:
    """A payer's side of one channel (payer, operator, model): keeps the next nonce, signs."""

    def __init__(
        self,
        account: LocalAccount,
        domain: ReceiptDomain,
        operator: str,
        model_id: int,
        next_nonce: int = 1,
    ) -> None:
        self.account = account
        self.domain = domain
        self.operator = to_checksum_address(operator)
        self.model_id = model_id
        self.next_nonce = next_nonce

    def sign(self, tokens: int, request_hash: bytes) -> SignedReceipt:
        receipt = sign_receipt(
            self.account,
            self.domain,
            self.operator,
            self.model_id,
            self.next_nonce,
            tokens,
            request_hash,
        )
        self.next_nonce += 1
        return receipt


class ChainView(Protocol):
    """What admission reads from the chain (implemented by contracts.client.ChainClient)."""

    def model_count(self) -> int: ...
    def current_rate(self, model_id: int) -> int: ...
    def last_nonce(self, payer: str, operator: str, model_id: int) -> int: ...
    def escrow_balance(self, payer: str) -> int: ...
    def is_authorized(self, payer: str, operator: str) -> bool: ...


class PendingView(Protocol):
    """What admission reads from the operator's own store: usage not yet settled."""

    def last_admitted_nonce(self, payer: str, operator: str, model_id: int) -> int | None: ...
    def unsettled_usage(self, payer: str) -> Mapping[int, int]: ...


def usage_cost(tokens_by_model: Mapping[int, int], rate_of: Callable[[int], int]) -> int:
    """Sum over models of tokens * rate // 1000 (the contract's per-channel rounding)."""
    return sum(tokens * rate_of(m) // TOKENS_PER_RATE_UNIT for m, tokens in tokens_by_model.items())


class Admission:
    """The operator's admission checks (rules 1-6 above), reading chain and store; writes nothing.

    `check(receipt)` returns the receipt if it may be admitted, else raises the rule's error.
    Model existence is cached (models are never removed); each model's current rate is cached
    until `refresh()` (the daemon refreshes after every settlement and on a timer).
    """

    def __init__(
        self,
        chain: ChainView,
        pending: PendingView,
        domain: ReceiptDomain,
        operator: str,
        *,
        escrow_ttl: float = 0.0,
    ) -> None:
        self.escrow_ttl = escrow_ttl
        self._escrow: dict[str, tuple[float, int]] = {}
        self.chain = chain
        self.pending = pending
        self.domain = domain
        self.operator = to_checksum_address(operator)
        self._model_count = 0
        self._rates: dict[int, int] = {}
        self._authorized: set[str] = set()
        self._lock = threading.Lock()

    def refresh(self) -> None:
        """Forget cached rates (call after each settlement or periodically)."""
        with self._lock:
            self._rates.clear()
            self._authorized.clear()
            self._escrow.clear()

    def escrow(self, payer: str) -> int:
        """The payer's escrow, read from the chain at most every `escrow_ttl` seconds.

        Escrow falls only by this operator's settlements (the cache is cleared after each),
        withdrawals after a thawing period, and other operators' settlements; a payer whose
        escrow turns out short at settlement is held by the daemon, never double-charged."""
        now = time.monotonic()
        cached = self._escrow.get(payer)
        if cached is not None and now - cached[0] < self.escrow_ttl:
            return cached[1]
        value = self.chain.escrow_balance(payer)
        if self.escrow_ttl > 0:
            self._escrow[payer] = (now, value)
        return value

    def _model_exists(self, model_id: int) -> bool:
        if 1 <= model_id <= self._model_count:
            return True
        self._model_count = self.chain.model_count()
        return 1 <= model_id <= self._model_count

    def rate(self, model_id: int) -> int:
        with self._lock:
            rate = self._rates.get(model_id)
            if rate is None:
                rate = self.chain.current_rate(model_id)
                self._rates[model_id] = rate
            return rate

    def check(self, receipt: SignedReceipt) -> SignedReceipt:
        payer = recover_payer(receipt, self.domain)
        if payer != receipt.payer:
            raise BadSignatureError(
                f"signature recovers {payer}, not the receipt's payer {receipt.payer}"
            )
        if receipt.operator != self.operator:
            raise WrongOperatorError(
                f"receipt is for operator {receipt.operator}, this operator is {self.operator}"
            )
        if not self._model_exists(receipt.model_id):
            raise UnknownModelError(f"model {receipt.model_id} is not registered")
        if not 0 <= receipt.tokens < TOKENS_LIMIT:
            raise TokensOutOfRangeError(f"tokens {receipt.tokens} is not in [0, 2^32)")
        expected = self.next_nonce(receipt.payer, receipt.model_id)
        if receipt.nonce < expected:
            raise NonceReusedError(
                f"nonce {receipt.nonce} was already used on channel (payer {receipt.payer}, "
                f"model {receipt.model_id}); the next nonce is {expected}"
            )
        if receipt.nonce > expected:
            raise NonceGapError(
                f"nonce {receipt.nonce} skips ahead on channel (payer {receipt.payer}, "
                f"model {receipt.model_id}); nonces must be consecutive, the next is {expected}"
            )
        if receipt.payer not in self._authorized:
            if not self.chain.is_authorized(receipt.payer, self.operator):
                raise OperatorNotAuthorizedError(
                    f"payer {receipt.payer} has not authorised operator {self.operator} "
                    "in the settlement contract"
                )
            self._authorized.add(receipt.payer)
        usage = dict(self.pending.unsettled_usage(receipt.payer))
        usage[receipt.model_id] = usage.get(receipt.model_id, 0) + receipt.tokens
        # Priced per receipt would round each down; the contract prices per channel
        # aggregate, which is never less, so the per-channel sum is the safe bound.
        owed = usage_cost(usage, self.rate)
        escrow = self.escrow(receipt.payer)
        if owed > escrow:
            raise CreditExceededError(
                f"payer {receipt.payer} escrow {escrow} does not cover its unsettled usage "
                f"with this receipt ({owed} base units at current rates)"
            )
        return receipt

    def next_nonce(self, payer: str, model_id: int) -> int:
        """Last admitted (unsettled) nonce + 1, or last settled on chain + 1."""
        admitted = self.pending.last_admitted_nonce(payer, self.operator, model_id)
        if admitted is not None:
            return admitted + 1
        return self.chain.last_nonce(payer, self.operator, model_id) + 1


__all__ = [
    "RECEIPT_TYPEHASH",
    "RECEIPT_TYPES",
    "REFUSAL_CODES",
    "Admission",
    "BadSignatureError",
    "ChainView",
    "CreditExceededError",
    "MalformedReceiptError",
    "NonceGapError",
    "NonceReusedError",
    "OperatorNotAuthorizedError",
    "PayerSession",
    "PendingView",
    "ReceiptDomain",
    "ReceiptError",
    "SignedReceipt",
    "TokensOutOfRangeError",
    "UnknownModelError",
    "WrongOperatorError",
    "receipt_digest",
    "recover_payer",
    "sign_receipt",
    "usage_cost",
]
