"""Usage receipts: EIP-712 channel states signed by payers, and the operator's admission rules.

A payer and an operator share one unidirectional payment channel per model (DESIGN
"Receipts", as in The Graph's TAP). For every call the payer (or a signer it authorised on
chain) signs the EIP-712 typed data (https://eips.ethereum.org/EIPS/eip-712)

    UsageReceipt(address payer,address operator,uint64 modelId,uint64 nonce,
                 uint128 cumulativeTokens,uint256 maxRatePerKTokens,bytes32 requestHash)

under the domain {name "zkmeter", version "1", chainId, verifyingContract = settlement}: the
channel's new state after this call. Nonces count 1, 2, ...; `cumulativeTokens` is the
channel's total through this call, so the call's own token count is the difference of
consecutive cumulative values and is never signed (nor shown on chain) by itself. The latest
receipt is the payer's consent to everything before it: settlement checks one signature per
channel per batch, on the state that ends the batch's run. The digest signed is
keccak256(0x19 0x01 || domainSeparator || hashStruct(receipt)), the same bytes as
`UsageSettlement.receiptDigest(...)` on chain.

Signatures are canonical, as OpenZeppelin's ECDSA requires on chain: 65 bytes r || s || v
with 0 < r < n, 0 < s <= n/2 (EIP-2, "low s") and v in {27, 28}; any other encoding of the
same signature is refused, so what admission accepts the contract accepts.

The operator admits a receipt only if (each rule its own error class and refusal code):
1. the signature is canonical and recovers the payer or a signer the payer authorised on
   chain with no revocation pending (`BadSignatureError`, `SignerNotAuthorizedError`);
2. the receipt names this operator                              (`WrongOperatorError`);
3. the model exists in the registry                             (`UnknownModelError`);
4. the nonce is the channel's next one: last settled on chain or last admitted + 1
   (`NonceReusedError` if at or below it, `NonceGapError` if above);
5. the cumulative continues the channel: this call's tokens = cumulative - previous
   cumulative, in [0, 2^32)     (`CumulativeDecreasedError`, `TokensOutOfRangeError`);
6. the signed rate cap covers the model's current rate          (`RateCapTooLowError`);
7. the (payer, operator) escrow account, net of any withdrawal thawing, covers all the
   payer's unsettled usage with this operator, each model's tokens priced at the highest rate
   that can apply before the next notice period ends: max(current, pending)
   (`CreditExceededError`).
A refusal changes no stored state: the checks run before anything is written.
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
#: A call's token count is below this (PROTOCOL §2, property 1).
TOKENS_LIMIT = 1 << 32
UINT64_LIMIT = 1 << 64
UINT128_LIMIT = 1 << 128
UINT256_LIMIT = 1 << 256
#: The order of secp256k1's group (SEC 2, §2.4.1) and the low-s bound of EIP-2.
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
SECP256K1_HALF_N = SECP256K1_N // 2
#: `signerAuthorizedUntil` of a signer authorised without end (no revocation pending).
AUTHORIZED_FOREVER = (1 << 64) - 1

RECEIPT_TYPE = (
    "UsageReceipt(address payer,address operator,uint64 modelId,uint64 nonce,"
    "uint128 cumulativeTokens,uint256 maxRatePerKTokens,bytes32 requestHash)"
)
RECEIPT_TYPES: dict[str, list[dict[str, str]]] = {
    "UsageReceipt": [
        {"name": "payer", "type": "address"},
        {"name": "operator", "type": "address"},
        {"name": "modelId", "type": "uint64"},
        {"name": "nonce", "type": "uint64"},
        {"name": "cumulativeTokens", "type": "uint128"},
        {"name": "maxRatePerKTokens", "type": "uint256"},
        {"name": "requestHash", "type": "bytes32"},
    ]
}
#: keccak256 of the type string (= UsageSettlement.RECEIPT_TYPEHASH).
RECEIPT_TYPEHASH = keccak(text=RECEIPT_TYPE)


class ReceiptError(ValueError):
    """A receipt is malformed or refused: `code` names the rule (the HTTP API's error code),
    `http_status` is the status the daemon answers with."""

    code = "malformed_receipt"
    http_status = 400


class MalformedReceiptError(ReceiptError):
    code = "malformed_receipt"
    http_status = 400


class BadSignatureError(ReceiptError):
    code = "bad_signature"
    http_status = 401


class SignerNotAuthorizedError(ReceiptError):
    code = "signer_not_authorized"
    http_status = 403


class WrongOperatorError(ReceiptError):
    code = "wrong_operator"
    http_status = 403


class UnknownModelError(ReceiptError):
    code = "unknown_model"
    http_status = 404


class TokensOutOfRangeError(ReceiptError):
    code = "tokens_out_of_range"
    http_status = 422


class NonceReusedError(ReceiptError):
    code = "nonce_reused"
    http_status = 409


class NonceGapError(ReceiptError):
    code = "nonce_gap"
    http_status = 409


class CumulativeDecreasedError(ReceiptError):
    code = "cumulative_decreased"
    http_status = 409


class RateCapTooLowError(ReceiptError):
    code = "rate_cap_too_low"
    http_status = 422


class CreditExceededError(ReceiptError):
    code = "credit_exceeded"
    http_status = 402


#: Every refusal class, in the order of the rules above.
REFUSALS: tuple[type[ReceiptError], ...] = (
    MalformedReceiptError,
    BadSignatureError,
    SignerNotAuthorizedError,
    WrongOperatorError,
    UnknownModelError,
    NonceReusedError,
    NonceGapError,
    CumulativeDecreasedError,
    TokensOutOfRangeError,
    RateCapTooLowError,
    CreditExceededError,
)
REFUSAL_CODES = tuple(c.code for c in REFUSALS)
#: HTTP status per refusal code.
HTTP_STATUS: Mapping[str, int] = {c.code: c.http_status for c in REFUSALS}


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
    """One call's receipt: the channel's new state and a 65-byte signature (r || s || v).

    Addresses are checksummed; `signature` is by the payer or a signer it authorised."""

    payer: str
    operator: str
    model_id: int
    nonce: int
    cumulative_tokens: int
    max_rate_per_k_tokens: int
    request_hash: bytes
    signature: bytes

    @property
    def channel(self) -> tuple[str, str, int]:
        """(payer, operator, model id): the payment channel this receipt advances."""
        return (self.payer, self.operator, self.model_id)

    def to_json(self) -> dict[str, Any]:
        """The JSON form posted to an operator and kept in receipts files (PROTOCOL §8)."""
        return {
            "payer": self.payer,
            "operator": self.operator,
            "model_id": self.model_id,
            "nonce": self.nonce,
            "cumulative_tokens": self.cumulative_tokens,
            "max_rate_per_k_tokens": str(self.max_rate_per_k_tokens),
            "request_hash": "0x" + self.request_hash.hex(),
            "signature": "0x" + self.signature.hex(),
        }

    @classmethod
    def from_json(cls, data: Any, operator: str | None = None) -> SignedReceipt:
        """Parse and range-check the fields (not the signature); `operator` fills a missing one."""
        if not isinstance(data, dict):
            raise MalformedReceiptError("a receipt must be a JSON object")
        return cls(
            payer=_address(data.get("payer"), "payer"),
            operator=_address(data.get("operator", operator), "operator"),
            model_id=_uint(data.get("model_id"), "model_id", UINT64_LIMIT),
            nonce=_uint(data.get("nonce"), "nonce", UINT64_LIMIT),
            cumulative_tokens=_uint(
                data.get("cumulative_tokens"), "cumulative_tokens", UINT128_LIMIT
            ),
            max_rate_per_k_tokens=_uint(
                data.get("max_rate_per_k_tokens"), "max_rate_per_k_tokens", UINT256_LIMIT
            ),
            request_hash=_bytes(data.get("request_hash"), "request_hash", 32),
            signature=_bytes(data.get("signature"), "signature", 65),
        )


def _address(value: Any, name: str) -> str:
    if not isinstance(value, str) or not is_hex_address(value):
        raise MalformedReceiptError(f"{name} must be a 0x-prefixed 20-byte hex address")
    return to_checksum_address(value)


def _uint(value: Any, name: str, limit: int) -> int:
    if value is None:
        raise MalformedReceiptError(f"missing field {name!r}")
    if isinstance(value, str):
        try:
            value = int(value, 0)
        except ValueError:
            raise MalformedReceiptError(f"{name} {value!r} is not an integer") from None
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedReceiptError(f"{name} must be an integer, got {value!r}")
    if not 0 <= value < limit:
        raise MalformedReceiptError(
            f"{name} {value} is out of range [0, 2^{limit.bit_length() - 1})"
        )
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
    payer: str,
    operator: str,
    model_id: int,
    nonce: int,
    cumulative_tokens: int,
    max_rate_per_k_tokens: int,
    request_hash: bytes,
) -> SignableMessage:
    """The EIP-712 message of one channel state (eth-account `encode_typed_data`)."""
    return encode_typed_data(
        domain_data=domain.as_dict(),
        message_types=RECEIPT_TYPES,
        message_data={
            "payer": to_checksum_address(payer),
            "operator": to_checksum_address(operator),
            "modelId": model_id,
            "nonce": nonce,
            "cumulativeTokens": cumulative_tokens,
            "maxRatePerKTokens": max_rate_per_k_tokens,
            "requestHash": request_hash,
        },
    )


def _signable(receipt: SignedReceipt, domain: ReceiptDomain) -> SignableMessage:
    return receipt_signable(
        domain,
        receipt.payer,
        receipt.operator,
        receipt.model_id,
        receipt.nonce,
        receipt.cumulative_tokens,
        receipt.max_rate_per_k_tokens,
        receipt.request_hash,
    )


def receipt_digest(
    domain: ReceiptDomain,
    payer: str,
    operator: str,
    model_id: int,
    nonce: int,
    cumulative_tokens: int,
    max_rate_per_k_tokens: int,
    request_hash: bytes,
) -> bytes:
    """keccak256(0x19 0x01 || domainSeparator || hashStruct(receipt)), the digest signed."""
    m = receipt_signable(
        domain,
        payer,
        operator,
        model_id,
        nonce,
        cumulative_tokens,
        max_rate_per_k_tokens,
        request_hash,
    )
    return keccak(b"\x19" + m.version + m.header + m.body)


def sign_receipt(
    signer: LocalAccount,
    domain: ReceiptDomain,
    operator: str,
    model_id: int,
    nonce: int,
    cumulative_tokens: int,
    max_rate_per_k_tokens: int,
    request_hash: bytes,
    *,
    payer: str | None = None,
) -> SignedReceipt:
    """`signer`'s signed receipt of a channel state of `payer` (default: the signer itself).

    eth-account signs deterministically (RFC 6979) and always low-s."""
    payer = to_checksum_address(payer or signer.address)
    signable = receipt_signable(
        domain,
        payer,
        operator,
        model_id,
        nonce,
        cumulative_tokens,
        max_rate_per_k_tokens,
        request_hash,
    )
    return SignedReceipt(
        payer=payer,
        operator=to_checksum_address(operator),
        model_id=model_id,
        nonce=nonce,
        cumulative_tokens=cumulative_tokens,
        max_rate_per_k_tokens=max_rate_per_k_tokens,
        request_hash=request_hash,
        signature=bytes(signer.sign_message(signable).signature),
    )


def check_canonical_signature(signature: bytes) -> None:
    """Raise BadSignatureError unless `signature` is r || s || v with 0 < r < n,
    0 < s <= n/2 and v in {27, 28}: the one encoding OpenZeppelin's ECDSA.recover accepts."""
    if len(signature) != 65:
        raise BadSignatureError(f"a signature is 65 bytes (r || s || v), got {len(signature)}")
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    v = signature[64]
    if v not in (27, 28):
        raise BadSignatureError(f"signature v is {v}; only 27 or 28 is accepted")
    if not 0 < r < SECP256K1_N:
        raise BadSignatureError("signature r is not in [1, n)")
    if not 0 < s <= SECP256K1_HALF_N:
        raise BadSignatureError(
            "signature s is not in [1, n/2]: high-s signatures are malleable and refused (EIP-2)"
        )


def recover_signer(receipt: SignedReceipt, domain: ReceiptDomain) -> str:
    """The address whose key produced `receipt.signature` over the receipt (checksummed).

    Raises BadSignatureError if the signature is not canonical or cannot be recovered."""
    check_canonical_signature(receipt.signature)
    try:
        return str(Account.recover_message(_signable(receipt, domain), signature=receipt.signature))
    except Exception as error:  # eth-keys raises several types for malformed signatures
        raise BadSignatureError(f"signature cannot be recovered: {error}") from None


@dataclass(frozen=True)
class ModelRates:
    """A model's rate now and the highest rate that can apply before a new proposal could
    take effect: max(current, pending)."""

    current: int
    highest: int


@dataclass(frozen=True)
class ChannelPosition:
    """Where a channel stands: its last nonce and the cumulative tokens signed through it."""

    nonce: int
    cumulative_tokens: int


class ChainView(Protocol):
    """What admission reads from the chain (implemented by contracts.client.ChainClient)."""

    def model_count(self) -> int: ...
    def model_rates(self, model_id: int) -> ModelRates: ...
    def channel(self, payer: str, operator: str, model_id: int) -> ChannelPosition: ...
    def available_escrow(self, payer: str, operator: str) -> int: ...
    def signer_authorized_until(self, payer: str, signer: str) -> int: ...


class PendingView(Protocol):
    """What admission reads from the operator's own store: usage not yet settled."""

    def last_admitted(self, payer: str, operator: str, model_id: int) -> ChannelPosition | None: ...
    def unsettled_usage(self, payer: str) -> Mapping[int, int]: ...


@dataclass(frozen=True)
class AdmittedReceipt:
    """A receipt that passed admission, with what admission derived from it."""

    receipt: SignedReceipt
    tokens: int  # the call's tokens: cumulative minus the previous receipt's cumulative
    signer: str


def usage_cost(tokens_by_model: Mapping[int, int], rate_of: Callable[[int], int]) -> int:
    """Sum over models of tokens * rate // 1000 (the contract's per-channel rounding)."""
    return sum(tokens * rate_of(m) // TOKENS_PER_RATE_UNIT for m, tokens in tokens_by_model.items())


class Admission:
    """The operator's admission checks (rules 1-7 above), reading chain and store; writes nothing.

    `check(receipt)` returns the admitted receipt with its token count, or raises the rule's
    error. Model existence is cached (models are never removed); rates and signer
    authorisations are cached until `refresh()` (the daemon refreshes after every settlement
    and on a timer); escrow reads are reused for `escrow_ttl` seconds.
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
        self.chain = chain
        self.pending = pending
        self.domain = domain
        self.operator = to_checksum_address(operator)
        self._model_count = 0
        self._rates: dict[int, ModelRates] = {}
        self._signers: set[tuple[str, str]] = set()
        self._escrow: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def refresh(self) -> None:
        """Forget cached rates, signer authorisations and escrow reads."""
        with self._lock:
            self._rates.clear()
            self._signers.clear()
            self._escrow.clear()

    def escrow(self, payer: str) -> int:
        """The (payer, this operator) account net of thawing, read at most every `escrow_ttl` s.

        It falls only by this operator's settlements (the cache is cleared after each) and by
        withdrawal requests, which thaw; a payer whose escrow turns out short at settlement is
        held by the daemon, never double-charged."""
        now = time.monotonic()
        cached = self._escrow.get(payer)
        if cached is not None and now - cached[0] < self.escrow_ttl:
            return cached[1]
        value = self.chain.available_escrow(payer, self.operator)
        if self.escrow_ttl > 0:
            self._escrow[payer] = (now, value)
        return value

    def _model_exists(self, model_id: int) -> bool:
        if 1 <= model_id <= self._model_count:
            return True
        self._model_count = self.chain.model_count()
        return 1 <= model_id <= self._model_count

    def rates(self, model_id: int) -> ModelRates:
        with self._lock:
            rates = self._rates.get(model_id)
            if rates is None:
                rates = self.chain.model_rates(model_id)
                self._rates[model_id] = rates
            return rates

    def highest_rate(self, model_id: int) -> int:
        """The highest rate settlement may charge for usage admitted now (credit pricing)."""
        return self.rates(model_id).highest

    def _check_signer(self, receipt: SignedReceipt) -> str:
        signer = recover_signer(receipt, self.domain)
        if signer == receipt.payer or (receipt.payer, signer) in self._signers:
            return signer
        until = self.chain.signer_authorized_until(receipt.payer, signer)
        if until != AUTHORIZED_FOREVER:
            reason = "has not authorised" if until == 0 else "is revoking"
            raise SignerNotAuthorizedError(
                f"signature recovers {signer}, which payer {receipt.payer} {reason} as a signer "
                "in the settlement contract"
            )
        with self._lock:
            self._signers.add((receipt.payer, signer))
        return signer

    def check(self, receipt: SignedReceipt) -> AdmittedReceipt:
        signer = self._check_signer(receipt)
        if receipt.operator != self.operator:
            raise WrongOperatorError(
                f"receipt is for operator {receipt.operator}, this operator is {self.operator}"
            )
        if not self._model_exists(receipt.model_id):
            raise UnknownModelError(f"model {receipt.model_id} is not registered")
        channel = f"channel (payer {receipt.payer}, model {receipt.model_id})"
        previous = self.position(receipt.payer, receipt.model_id)
        expected = previous.nonce + 1
        if receipt.nonce < expected:
            raise NonceReusedError(
                f"nonce {receipt.nonce} was already used on {channel}; the next nonce is {expected}"
            )
        if receipt.nonce > expected:
            raise NonceGapError(
                f"nonce {receipt.nonce} skips ahead on {channel}; nonces must be consecutive, "
                f"the next is {expected}"
            )
        tokens = receipt.cumulative_tokens - previous.cumulative_tokens
        if tokens < 0:
            raise CumulativeDecreasedError(
                f"cumulative tokens {receipt.cumulative_tokens} is below the {channel}'s "
                f"{previous.cumulative_tokens} at nonce {previous.nonce}"
            )
        if tokens >= TOKENS_LIMIT:
            raise TokensOutOfRangeError(
                f"this call's tokens ({receipt.cumulative_tokens} - {previous.cumulative_tokens}"
                f" = {tokens}) are not in [0, 2^32)"
            )
        rates = self.rates(receipt.model_id)
        if receipt.max_rate_per_k_tokens < rates.current:
            raise RateCapTooLowError(
                f"signed rate cap {receipt.max_rate_per_k_tokens} is below model "
                f"{receipt.model_id}'s current rate {rates.current} (base units per 1,000 tokens)"
            )
        usage = dict(self.pending.unsettled_usage(receipt.payer))
        usage[receipt.model_id] = usage.get(receipt.model_id, 0) + tokens
        # The contract prices per channel aggregate, rounding down once; the sum of per-channel
        # costs at the highest applicable rate is never below what settlement will charge.
        owed = usage_cost(usage, self.highest_rate)
        escrow = self.escrow(receipt.payer)
        if owed > escrow:
            raise CreditExceededError(
                f"payer {receipt.payer}'s escrow for operator {self.operator} ({escrow} base units "
                f"net of withdrawals) does not cover its unsettled usage with this receipt "
                f"({owed} base units at the highest rate that can apply)"
            )
        return AdmittedReceipt(receipt, tokens, signer)

    def position(self, payer: str, model_id: int) -> ChannelPosition:
        """The channel's last admitted (unsettled) state, else its settled state on chain."""
        admitted = self.pending.last_admitted(payer, self.operator, model_id)
        if admitted is not None:
            return admitted
        return self.chain.channel(payer, self.operator, model_id)


__all__ = [
    "AUTHORIZED_FOREVER",
    "HTTP_STATUS",
    "RECEIPT_TYPE",
    "RECEIPT_TYPEHASH",
    "RECEIPT_TYPES",
    "REFUSALS",
    "REFUSAL_CODES",
    "Admission",
    "AdmittedReceipt",
    "BadSignatureError",
    "ChainView",
    "ChannelPosition",
    "CreditExceededError",
    "CumulativeDecreasedError",
    "MalformedReceiptError",
    "ModelRates",
    "NonceGapError",
    "NonceReusedError",
    "PendingView",
    "RateCapTooLowError",
    "ReceiptDomain",
    "ReceiptError",
    "SignedReceipt",
    "SignerNotAuthorizedError",
    "TokensOutOfRangeError",
    "UnknownModelError",
    "WrongOperatorError",
    "check_canonical_signature",
    "receipt_digest",
    "recover_signer",
    "sign_receipt",
    "usage_cost",
]
