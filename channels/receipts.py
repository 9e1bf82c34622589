"""Usage receipts: EIP-712 channel states signed by payers (PROTOCOL §11).

A payer and an operator share one unidirectional payment channel per model (DESIGN
"Receipts", as in The Graph's TAP). For every call the payer (or a signer it authorised on
chain) signs the EIP-712 typed data (https://eips.ethereum.org/EIPS/eip-712)

    UsageReceipt(address payer,address operator,uint64 modelId,uint64 nonce,
                 uint128 cumulativeTokens,uint256 maxRatePerKTokens,bytes32 requestHash)

under the domain {name "zkmeter", version "1", chainId, verifyingContract = settlement}: the
channel's new state after this call. Nonces count 1, 2, ...; `cumulativeTokens` is the
channel's total through this call, so the call's own token count is the difference of
consecutive cumulative values and is never signed (nor shown on chain) by itself. The latest
receipt is the payer's consent to everything before it. The digest signed is
keccak256(0x19 0x01 || domainSeparator || hashStruct(receipt)), the same bytes as
`UsageSettlement.receiptDigest(...)` on chain. Every field is a static type, so hashStruct is
keccak256 of the type hash and seven 32-byte words (EIP-712 `encodeData`); `receipt_digest`
computes it directly (tens of microseconds), and the tests hold it to eth-account's
`encode_typed_data` (the general encoder, ~100x slower) and to the contract's.

Recovery runs on libsecp256k1 (coincurve, the backend eth-keys itself uses when installed):
about 0.1 ms a receipt where eth-keys' pure-Python fallback takes about 12 ms; keccak256 is
pycryptodome's, called directly, and checksummed addresses are memoised (payers recur).

Signatures are canonical, as OpenZeppelin's ECDSA requires on chain: 65 bytes r || s || v
with 0 < r < n, 0 < s <= n/2 (EIP-2, "low s") and v in {27, 28}; any other encoding of the
same signature is refused, so what an operator admits the contract accepts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

import coincurve
from Crypto.Hash import keccak as _keccak_hash
from eth_account.messages import SignableMessage, encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_utils.address import is_hex_address, to_checksum_address


def keccak(data: bytes = b"", *, text: str | None = None) -> bytes:
    """keccak256 (pycryptodome, without eth-utils' argument conversion)."""
    if text is not None:
        data = text.encode()
    return bytes(_keccak_hash.new(digest_bits=256, data=data).digest())


@lru_cache(maxsize=1 << 16)
def checksum_address(address: str) -> str:
    """The EIP-55 checksummed form of a 0x-prefixed 20-byte hex address (memoised)."""
    return str(to_checksum_address(address))


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
#: keccak256 of the EIP-712 domain type zkmeter's domain uses (all four fields).
DOMAIN_TYPEHASH = keccak(
    text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)


class ReceiptError(ValueError):
    """A receipt is malformed or refused: `code` names the rule (the HTTP API's error code),
    `http_status` is the status the operator's daemon answers with."""

    code = "malformed_receipt"
    http_status = 400


class MalformedReceiptError(ReceiptError):
    code = "malformed_receipt"
    http_status = 400


class BadSignatureError(ReceiptError):
    code = "bad_signature"
    http_status = 401


@dataclass(frozen=True)
class ReceiptDomain:
    """The EIP-712 domain receipts are signed under: one chain, one settlement contract."""

    chain_id: int
    settlement: str
    #: keccak256(DOMAIN_TYPEHASH || keccak("zkmeter") || keccak("1") || chainId ||
    #: verifyingContract): computed once per domain.
    separator: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        separator = keccak(
            DOMAIN_TYPEHASH
            + keccak(text=DOMAIN_NAME)
            + keccak(text=DOMAIN_VERSION)
            + _word(self.chain_id)
            + _address_word(self.settlement)
        )
        object.__setattr__(self, "separator", separator)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": DOMAIN_NAME,
            "version": DOMAIN_VERSION,
            "chainId": self.chain_id,
            "verifyingContract": to_checksum_address(self.settlement),
        }


@dataclass(frozen=True)
class UsageReceipt:
    """The message a payer signs: its channel's state after one call. Addresses checksummed."""

    payer: str
    operator: str
    model_id: int
    nonce: int
    cumulative_tokens: int
    max_rate_per_k_tokens: int
    request_hash: bytes

    @property
    def channel(self) -> tuple[str, str, int]:
        """(payer, operator, model id): the payment channel this receipt advances."""
        return (self.payer, self.operator, self.model_id)

    def signable(self, domain: ReceiptDomain) -> SignableMessage:
        """The EIP-712 message (eth-account `encode_typed_data`)."""
        return encode_typed_data(
            domain_data=domain.as_dict(),
            message_types=RECEIPT_TYPES,
            message_data={
                "payer": to_checksum_address(self.payer),
                "operator": to_checksum_address(self.operator),
                "modelId": self.model_id,
                "nonce": self.nonce,
                "cumulativeTokens": self.cumulative_tokens,
                "maxRatePerKTokens": self.max_rate_per_k_tokens,
                "requestHash": self.request_hash,
            },
        )

    def struct_hash(self) -> bytes:
        """hashStruct(receipt) = keccak256(RECEIPT_TYPEHASH || the seven fields as 32-byte
        words, in the type's order): addresses and integers left-padded, requestHash as is."""
        if len(self.request_hash) != 32:
            raise MalformedReceiptError("request_hash must be 32 bytes")
        return keccak(
            RECEIPT_TYPEHASH
            + _address_word(self.payer)
            + _address_word(self.operator)
            + _word(self.model_id)
            + _word(self.nonce)
            + _word(self.cumulative_tokens)
            + _word(self.max_rate_per_k_tokens)
            + self.request_hash
        )

    def digest(self, domain: ReceiptDomain) -> bytes:
        """keccak256(0x19 0x01 || domainSeparator || hashStruct(receipt)): what is signed."""
        return keccak(b"\x19\x01" + domain.separator + self.struct_hash())


@dataclass(frozen=True)
class SignedReceipt(UsageReceipt):
    """One call's receipt with its 65-byte signature (r || s || v), by the payer or a signer
    it authorised."""

    signature: bytes

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


def _word(value: int) -> bytes:
    """An unsigned integer as one 32-byte big-endian ABI word."""
    return value.to_bytes(32, "big")


def _address_word(address: str) -> bytes:
    """A 0x-prefixed 20-byte address as one left-padded 32-byte ABI word."""
    raw = bytes.fromhex(address[2:])
    if len(raw) != 20:
        raise MalformedReceiptError(f"{address!r} is not a 20-byte address")
    return bytes(12) + raw


def _address(value: Any, name: str) -> str:
    if not isinstance(value, str) or not _is_address(value):
        raise MalformedReceiptError(f"{name} must be a 0x-prefixed 20-byte hex address")
    return checksum_address(value)


@lru_cache(maxsize=1 << 16)
def _is_address(value: str) -> bool:
    return bool(is_hex_address(value))


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
        bits = limit.bit_length() - 1
        raise MalformedReceiptError(f"{name} {value} is out of range [0, 2^{bits})")
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


def sign_receipt(
    signer: LocalAccount, domain: ReceiptDomain, receipt: UsageReceipt
) -> SignedReceipt:
    """`signer`'s signature on `receipt` (for its own channels, or a payer's that authorised
    it). eth-account signs deterministically (RFC 6979) and always low-s."""
    message = UsageReceipt(
        payer=to_checksum_address(receipt.payer),
        operator=to_checksum_address(receipt.operator),
        model_id=receipt.model_id,
        nonce=receipt.nonce,
        cumulative_tokens=receipt.cumulative_tokens,
        max_rate_per_k_tokens=receipt.max_rate_per_k_tokens,
        request_hash=receipt.request_hash,
    )
    # The same bytes as signer.sign_message(message.signable(domain)) (tested): libsecp256k1's
    # RFC 6979 signature, low s, of the digest computed directly.
    rsv = coincurve.PrivateKey(bytes(signer.key)).sign_recoverable(
        message.digest(domain), hasher=None
    )
    signature = rsv[:64] + bytes([rsv[64] + 27])
    return SignedReceipt(**asdict(message), signature=signature)


def latest_receipts(receipts: Iterable[SignedReceipt]) -> dict[tuple[int, int], SignedReceipt]:
    """The receipt of highest nonce per channel, keyed (payer as an integer, model id): the
    channel state that ends a batch's run, which settlement needs the payer's consent to."""
    latest: dict[tuple[int, int], SignedReceipt] = {}
    for r in receipts:
        key = (int(r.payer, 16), r.model_id)
        current = latest.get(key)
        if current is None or r.nonce > current.nonce:
            latest[key] = r
    return latest


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
    sig = receipt.signature
    try:
        public_key = coincurve.PublicKey.from_signature_and_message(
            sig[:64] + bytes([sig[64] - 27]), receipt.digest(domain), hasher=None
        )
    except ValueError as error:
        raise BadSignatureError(f"signature cannot be recovered: {error}") from None
    address = keccak(public_key.format(compressed=False)[1:])[-20:]
    return checksum_address("0x" + address.hex())


__all__ = [
    "DOMAIN_TYPEHASH",
    "RECEIPT_TYPE",
    "RECEIPT_TYPEHASH",
    "RECEIPT_TYPES",
    "SECP256K1_HALF_N",
    "SECP256K1_N",
    "TOKENS_LIMIT",
    "TOKENS_PER_RATE_UNIT",
    "BadSignatureError",
    "MalformedReceiptError",
    "ReceiptDomain",
    "ReceiptError",
    "SignedReceipt",
    "UsageReceipt",
    "check_canonical_signature",
    "checksum_address",
    "keccak",
    "latest_receipts",
    "recover_signer",
    "sign_receipt",
]
