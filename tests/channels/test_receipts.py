"""Receipts: the EIP-712 digest equals the contract's field by field, signing and recovery,
canonical (low-s) signatures, JSON round trips."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from eth_account import Account
from eth_utils.crypto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from channels.receipts import (
    RECEIPT_TYPEHASH,
    SECP256K1_HALF_N,
    SECP256K1_N,
    BadSignatureError,
    MalformedReceiptError,
    ReceiptDomain,
    SignedReceipt,
    UsageReceipt,
    check_canonical_signature,
    recover_signer,
    sign_receipt,
)
from tests.support.chain import World

PAYER = Account.from_key(b"\x01" * 32)
OTHER = Account.from_key(b"\x02" * 32)
DOMAIN = ReceiptDomain(31337, "0x" + "ab" * 20)
OPERATOR = "0x" + "cd" * 20
RATE = 2 * 10**15


def _receipt(**kw: Any) -> UsageReceipt:
    args: dict[str, Any] = {
        "payer": PAYER.address,
        "operator": OPERATOR,
        "model_id": 1,
        "nonce": 1,
        "cumulative_tokens": 800,
        "max_rate_per_k_tokens": RATE,
        "request_hash": b"\x00" * 32,
    }
    args.update(kw)
    return UsageReceipt(**args)


def _sign(**kw: Any) -> SignedReceipt:
    return sign_receipt(PAYER, DOMAIN, _receipt(**kw))


def _domain(w: World) -> ReceiptDomain:
    return ReceiptDomain(w.client.chain_id, w.deployment.settlement)


def _on_chain_receipt(w: World) -> UsageReceipt:
    return UsageReceipt(
        payer=w.payer.address,
        operator=w.operator.address,
        model_id=w.model_id,
        nonce=7,
        cumulative_tokens=5_600,
        max_rate_per_k_tokens=RATE,
        request_hash=b"\x42" * 32,
    )


def test_digest_equals_contract(world: World) -> None:
    receipt = _on_chain_receipt(world)
    assert receipt.digest(_domain(world)) == world.client.receipt_digest(receipt)
    assert bytes(world.client.settlement.functions.RECEIPT_TYPEHASH().call()) == RECEIPT_TYPEHASH


_BENT: dict[str, Any] = {
    "payer": "0x" + "99" * 20,
    "operator": "0x" + "98" * 20,
    "model_id": 2,
    "nonce": 8,
    "cumulative_tokens": 5_601,
    "max_rate_per_k_tokens": RATE + 1,
    "request_hash": b"\x43" * 32,
}


@pytest.mark.parametrize("field", sorted(_BENT))
def test_digest_follows_each_field_like_the_contract(world: World, field: str) -> None:
    """Python and Solidity agree on the digest with each field changed, and it changes."""
    receipt = replace(_on_chain_receipt(world), **{field: _BENT[field]})
    ours = receipt.digest(_domain(world))
    assert ours == world.client.receipt_digest(receipt)
    assert ours != _on_chain_receipt(world).digest(_domain(world))


def test_digest_depends_on_chain_and_contract(world: World) -> None:
    receipt = _on_chain_receipt(world)
    on_chain = world.client.receipt_digest(receipt)
    other_chain = ReceiptDomain(world.client.chain_id + 1, world.deployment.settlement)
    other_contract = ReceiptDomain(world.client.chain_id, "0x" + "11" * 20)
    assert receipt.digest(other_chain) != on_chain
    assert receipt.digest(other_contract) != on_chain


_UINTS = {
    "model_id": st.integers(0, 2**64 - 1),
    "nonce": st.integers(0, 2**64 - 1),
    "cumulative_tokens": st.integers(0, 2**128 - 1),
    "max_rate_per_k_tokens": st.integers(0, 2**256 - 1),
}


@settings(max_examples=40, deadline=None)
@given(
    chain_id=st.integers(1, 2**64),
    addresses=st.lists(st.binary(min_size=20, max_size=20), min_size=3, max_size=3),
    request_hash=st.binary(min_size=32, max_size=32),
    **_UINTS,
)
def test_direct_digest_equals_eth_accounts_typed_data_encoder(
    chain_id: int, addresses: list[bytes], request_hash: bytes, **uints: int
) -> None:
    """The direct hashStruct/digest (the fast path) against eth-account's general EIP-712
    encoder (the oracle), over the whole range of every field."""
    payer, operator, settlement = ("0x" + a.hex() for a in addresses)
    receipt = _receipt(payer=payer, operator=operator, request_hash=request_hash, **uints)
    domain = ReceiptDomain(chain_id, settlement)
    m = receipt.signable(domain)
    assert receipt.digest(domain) == keccak(b"\x19" + m.version + m.header + m.body)


def test_direct_digest_twin_differs_when_the_oracle_does() -> None:
    """Twin: one unit more in any field changes both the oracle's digest and ours alike."""
    base = _receipt()
    for name in _UINTS:
        bent = replace(base, **{name: getattr(base, name) + 1})
        m = bent.signable(DOMAIN)
        oracle = keccak(b"\x19" + m.version + m.header + m.body)
        assert bent.digest(DOMAIN) == oracle != base.digest(DOMAIN)


def test_fast_signing_equals_sign_message_and_recovers_like_eth_account() -> None:
    """sign_receipt signs the direct digest; eth-account's sign_message of the typed data
    gives the same bytes (RFC 6979), and eth-account's recovery agrees with ours."""
    r = _sign(nonce=3, cumulative_tokens=2_400)
    expected = PAYER.sign_message(_receipt(nonce=3, cumulative_tokens=2_400).signable(DOMAIN))
    assert r.signature == bytes(expected.signature)
    assert recover_signer(r, DOMAIN) == Account.recover_message(
        r.signable(DOMAIN), signature=r.signature
    )


@settings(max_examples=25, deadline=None)
@given(key=st.integers(1, SECP256K1_N - 1), nonce=st.integers(1, 2**64 - 1))
def test_recovery_on_libsecp256k1_agrees_with_eth_account(key: int, nonce: int) -> None:
    """Our recovery (coincurve directly) against eth-account's, for random keys; and a
    signature over another receipt recovers someone else in both."""
    account = Account.from_key(key.to_bytes(32, "big"))
    r = sign_receipt(account, DOMAIN, _receipt(nonce=nonce))
    assert recover_signer(r, DOMAIN) == account.address
    assert Account.recover_message(r.signable(DOMAIN), signature=r.signature) == account.address
    other = replace(r, nonce=nonce - 1 if nonce > 1 else 2)
    assert (
        recover_signer(other, DOMAIN)
        == Account.recover_message(other.signable(DOMAIN), signature=r.signature)
        != account.address
    )


def test_eth_keys_uses_libsecp256k1_too() -> None:
    """coincurve is installed, so eth-keys (eth-account's signing, web3) runs on it as well."""
    from eth_keys import KeyAPI
    from eth_keys.backends import CoinCurveECCBackend

    assert isinstance(KeyAPI().backend, CoinCurveECCBackend)


def test_sign_then_recover() -> None:
    assert recover_signer(_sign(), DOMAIN) == PAYER.address


def test_signer_signing_for_a_payer_names_the_payer() -> None:
    r = sign_receipt(OTHER, DOMAIN, _receipt())
    assert r.payer == PAYER.address
    assert recover_signer(r, DOMAIN) == OTHER.address


@pytest.mark.parametrize(
    "change",
    [
        {"cumulative_tokens": 801},
        {"nonce": 2},
        {"operator": OTHER.address},
        {"payer": OTHER.address},
        {"model_id": 2},
        {"max_rate_per_k_tokens": RATE + 1},
        {"request_hash": b"\x01" * 32},
    ],
    ids=lambda c: next(iter(c)),
)
def test_tampered_receipt_recovers_someone_else(change: dict[str, Any]) -> None:
    assert recover_signer(replace(_sign(), **change), DOMAIN) != PAYER.address


def test_other_domain_recovers_someone_else() -> None:
    assert recover_signer(_sign(), ReceiptDomain(1, DOMAIN.settlement)) != PAYER.address


def _high_s(signature: bytes) -> bytes:
    s = int.from_bytes(signature[32:64], "big")
    return signature[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - signature[64]])


def test_high_s_twin_is_refused_though_it_recovers_the_same_key() -> None:
    r = _sign()
    high = _high_s(r.signature)
    digest = _receipt().digest(DOMAIN)
    assert Account._recover_hash(digest, signature=high) == PAYER.address
    with pytest.raises(BadSignatureError, match="high-s"):
        recover_signer(replace(r, signature=high), DOMAIN)


@pytest.mark.parametrize("v", [0, 1, 26, 29, 255])
def test_other_recovery_ids_refused(v: int) -> None:
    r = _sign()
    with pytest.raises(BadSignatureError, match="v is"):
        recover_signer(replace(r, signature=r.signature[:64] + bytes([v])), DOMAIN)


def test_zero_and_out_of_range_r_s_refused() -> None:
    sig = _sign().signature
    for bad in (
        b"\x00" * 32 + sig[32:],
        SECP256K1_N.to_bytes(32, "big") + sig[32:],
        sig[:32] + b"\x00" * 32 + sig[64:],
        sig[:32] + (SECP256K1_HALF_N + 1).to_bytes(32, "big") + sig[64:],
    ):
        with pytest.raises(BadSignatureError):
            check_canonical_signature(bad)
    with pytest.raises(BadSignatureError, match="65 bytes"):
        check_canonical_signature(sig[:64])


@settings(max_examples=25, deadline=None)
@given(
    model_id=st.integers(1, 2**64 - 1),
    nonce=st.integers(1, 2**64 - 1),
    cumulative=st.integers(0, 2**128 - 1),
    cap=st.integers(0, 2**256 - 1),
    request_hash=st.binary(min_size=32, max_size=32),
)
def test_json_round_trip_and_signatures_are_low_s(
    model_id: int, nonce: int, cumulative: int, cap: int, request_hash: bytes
) -> None:
    r = _sign(
        model_id=model_id,
        nonce=nonce,
        cumulative_tokens=cumulative,
        max_rate_per_k_tokens=cap,
        request_hash=request_hash,
    )
    check_canonical_signature(r.signature)
    back = SignedReceipt.from_json(r.to_json())
    assert back == r
    assert recover_signer(back, DOMAIN) == PAYER.address


def test_from_json_rejects_malformed() -> None:
    good = _sign().to_json()
    for bad in (
        {**good, "payer": "0x12"},
        {**good, "nonce": "x"},
        {**good, "signature": "0x00"},
        {**good, "request_hash": 5},
        {**good, "model_id": -1},
        {**good, "cumulative_tokens": 2**128},
        {**good, "max_rate_per_k_tokens": 2**256},
        {k: v for k, v in good.items() if k != "cumulative_tokens"},
        {k: v for k, v in good.items() if k != "max_rate_per_k_tokens"},
        [good],
    ):
        with pytest.raises(MalformedReceiptError):
            SignedReceipt.from_json(bad)
