"""A hostile token that calls settlement back during a payout cannot re-enter it."""

from __future__ import annotations

from typing import Any

from eth_utils.abi import function_signature_to_4byte_selector

from channels.receipts import ReceiptDomain, UsageReceipt, sign_receipt
from circuits.public_inputs import Aggregate
from contracts.client import ChainClient, SignedState, decode_revert

RATE = 2 * 10**15


def _world_with_hostile_token() -> tuple[ChainClient, Any, list[Any]]:
    c = ChainClient.embedded()
    hostile = c.deploy_contract("ReentrantToken")
    mock = c.deploy_contract("MockUsageVerifier", 10, True)
    dep = c.deploy_all(2, 1, [mock.address], token=hostile.address)
    owner, payer, operator = c.accounts[1:4]
    model_id = c.register_model(b"\x01" * 32, RATE, sender=owner)
    c.mint(payer.address, 10**18)  # ReentrantToken.mint has the same ABI as OpenToken.mint
    c.approve_and_deposit(operator.address, 10**18, sender=payer)
    domain = ReceiptDomain(c.chain_id, dep.settlement)
    state = UsageReceipt(payer.address, operator.address, model_id, 12, 9_600, RATE, b"\x00" * 32)
    r = sign_receipt(payer, domain, state)
    consent = SignedState.of(r)
    c.settle(
        operator,
        0,
        10,
        [Aggregate(int(payer.address, 16), model_id, 0, 12, 9_600)],
        [consent],
        b"p",
    )
    return c, hostile, [owner, payer, operator]


def test_withdraw_earnings_cannot_be_reentered() -> None:
    c, hostile, (owner, _payer, _operator) = _world_with_hostile_token()
    call = function_signature_to_4byte_selector("withdrawEarnings()")
    hostile.functions.arm(c.deployment.settlement, call).transact(
        {"from": c.accounts[0].address, "gas": 200_000}
    )
    earned = c.earnings(owner.address)
    assert c.withdraw_earnings(sender=owner) == earned
    f = hostile.functions
    assert f.attempted().call() and not f.reentered().call()
    assert decode_revert(bytes(f.reentryRevertData().call())).error == (
        "ReentrancyGuardReentrantCall"
    )
    # Paid exactly once; nothing left behind.
    assert c.token_balance(owner.address) == earned
    assert c.earnings(owner.address) == 0


def test_plain_token_payout_is_not_flagged_as_reentry() -> None:
    """Twin: without the hostile callback armed, no re-entry is attempted."""
    c, hostile, (owner, _payer, _operator) = _world_with_hostile_token()
    earned = c.earnings(owner.address)
    assert c.withdraw_earnings(sender=owner) == earned
    assert not hostile.functions.attempted().call()
