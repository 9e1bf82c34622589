"""Receipts: EIP-712 digest equals the contract's, signing/recovery, payer sessions."""

from __future__ import annotations

import pytest
from eth_account import Account
from hypothesis import given, settings
from hypothesis import strategies as st

from prover.receipts import (
    RECEIPT_TYPEHASH,
    MalformedReceiptError,
    PayerSession,
    ReceiptDomain,
    SignedReceipt,
    TokensOutOfRangeError,
    receipt_digest,
    recover_payer,
    sign_receipt,
)
from tests.chain_world import World, world, world_module  # noqa: F401

PAYER = Account.from_key(b"\x01" * 32)
OTHER = Account.from_key(b"\x02" * 32)
DOMAIN = ReceiptDomain(31337, "0x" + "ab" * 20)
OPERATOR = "0x" + "cd" * 20


def _domain(w: World) -> ReceiptDomain:
    return ReceiptDomain(w.client.chain_id, w.deployment.settlement)


def test_digest_equals_contract(world: World) -> None:  # noqa: F811
    domain = _domain(world)
    args = (world.operator.address, world.model_id, 7, 800, b"\x42" * 32)
    on_chain = bytes(world.client.settlement.functions.receiptDigest(*args).call())
    assert receipt_digest(domain, *args) == on_chain
    assert bytes(world.client.settlement.functions.RECEIPT_TYPEHASH().call()) == RECEIPT_TYPEHASH


def test_digest_tampered_differs_from_contract(world: World) -> None:  # noqa: F811
    domain = _domain(world)
    args = (world.operator.address, world.model_id, 7, 800, b"\x42" * 32)
    on_chain = bytes(world.client.settlement.functions.receiptDigest(*args).call())
    assert (
        receipt_digest(domain, world.operator.address, world.model_id, 7, 801, b"\x42" * 32)
        != on_chain
    )
    other_domain = ReceiptDomain(world.client.chain_id + 1, world.deployment.settlement)
    assert receipt_digest(other_domain, *args) != on_chain


def test_sign_then_recover() -> None:
    r = sign_receipt(PAYER, DOMAIN, OPERATOR, 1, 1, 800, b"\x00" * 32)
    assert recover_payer(r, DOMAIN) == PAYER.address


def test_tampered_receipt_recovers_someone_else() -> None:
    r = sign_receipt(PAYER, DOMAIN, OPERATOR, 1, 1, 800, b"\x00" * 32)
    for tampered in (
        SignedReceipt(**{**r.__dict__, "tokens": 801}),
        SignedReceipt(**{**r.__dict__, "nonce": 2}),
        SignedReceipt(**{**r.__dict__, "operator": OTHER.address}),
    ):
        assert recover_payer(tampered, DOMAIN) != PAYER.address
    assert recover_payer(r, ReceiptDomain(1, DOMAIN.settlement)) != PAYER.address


@settings(max_examples=25, deadline=None)
@given(
    model_id=st.integers(1, 2**64 - 1),
    nonce=st.integers(1, 2**64 - 1),
    tokens=st.integers(0, 2**32 - 1),
    request_hash=st.binary(min_size=32, max_size=32),
)
def test_json_round_trip(model_id: int, nonce: int, tokens: int, request_hash: bytes) -> None:
    r = sign_receipt(PAYER, DOMAIN, OPERATOR, model_id, nonce, tokens, request_hash)
    back = SignedReceipt.from_json(r.to_json())
    assert back == r
    assert recover_payer(back, DOMAIN) == PAYER.address


def test_from_json_rejects_malformed() -> None:
    good = sign_receipt(PAYER, DOMAIN, OPERATOR, 1, 1, 800, b"\x00" * 32).to_json()
    for bad in (
        {**good, "payer": "0x12"},
        {**good, "nonce": "x"},
        {**good, "signature": "0x00"},
        {**good, "request_hash": 5},
        {**good, "model_id": -1},
        [good],
    ):
        with pytest.raises(MalformedReceiptError):
            SignedReceipt.from_json(bad)


def test_tokens_at_2_32_cannot_be_signed() -> None:
    with pytest.raises(TokensOutOfRangeError):
        sign_receipt(PAYER, DOMAIN, OPERATOR, 1, 1, 2**32, b"\x00" * 32)


def test_payer_session_counts_nonces() -> None:
    s = PayerSession(PAYER, DOMAIN, OPERATOR, 3)
    a, b = s.sign(10, b"\x01" * 32), s.sign(20, b"\x02" * 32)
    assert (a.nonce, b.nonce, s.next_nonce) == (1, 2, 3)
    assert recover_payer(b, DOMAIN) == PAYER.address
