"""End-to-end settlement on a real JSON-RPC node (anvil): the worked example with the payer's
signed channel state, and the main consent attacks refused there too."""

from __future__ import annotations

from dataclasses import replace

import pytest

from channels.receipts import ReceiptDomain, UsageReceipt, sign_receipt
from circuits.public_inputs import Aggregate
from contracts.client import (
    ANVIL_CHAIN_ID,
    ChainClient,
    ContractRevertError,
    Deployment,
    SignedState,
)
from tests.support.anvil import anvil_keys, requires_anvil

pytestmark = [pytest.mark.anvil, requires_anvil]

RATE = 2 * 10**15
NOTICE, THAWING, DELAY = 7200, 3600, 5400


def _consent(
    c: ChainClient,
    signer: object,
    payer: str,
    operator: str,
    model: int,
    nonce: int,
    cum: int,
    cap: int,
) -> SignedState:
    domain = ReceiptDomain(c.chain_id, c.deployment.settlement)  # type: ignore[union-attr]
    state = UsageReceipt(payer, operator, model, nonce, cum, cap, b"\x01" * 32)
    r = sign_receipt(signer, domain, state)  # type: ignore[arg-type]
    return SignedState.of(r)


def _refused(error: str, fn: object, *args: object, **kw: object) -> None:
    with pytest.raises(ContractRevertError) as info:
        fn(*args, **kw)  # type: ignore[operator]
    assert info.value.error == error, info.value


def test_worked_example_and_consent_attacks_on_anvil(anvil_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    keys = anvil_keys(5)
    c = ChainClient.connect(anvil_url, keys[0], extra_keys=keys[1:])
    assert c.chain_id == ANVIL_CHAIN_ID
    _deployer, owner, payer, operator, stranger = c.accounts
    mock = c.deploy_contract("MockUsageVerifier", 10, True)
    dep = c.deploy_all(NOTICE, THAWING, [mock.address], verifier_change_delay=DELAY)
    dep.save(tmp_path / "deployment.json")
    assert Deployment.load(tmp_path / "deployment.json") == dep
    assert dep.verifiers == {10: mock.address}

    model_id = c.register_model(b"\x42" * 32, RATE, "ipfs://m", sender=owner)
    c.mint(payer.address, 10**18)
    c.approve_and_deposit(operator.address, 10**17, sender=payer)
    agg = Aggregate(int(payer.address, 16), model_id, 0, 12, 9_600)
    honest = _consent(c, payer, payer.address, operator.address, model_id, 12, 9_600, RATE)

    # Attacks first: no valid signature, another key's, a state one token off.
    _refused(
        "InvalidSignature", c.settle, operator, 0, 10, [agg], [replace(honest, signature=b"")], b"p"
    )
    by_operator = _consent(c, operator, payer.address, operator.address, model_id, 12, 9_600, RATE)
    _refused("SignerNotAuthorized", c.settle, operator, 0, 10, [agg], [by_operator], b"p")
    off = _consent(c, payer, payer.address, operator.address, model_id, 12, 9_601, RATE)
    _refused("SignerNotAuthorized", c.settle, operator, 0, 10, [agg], [off], b"p")
    assert c.earnings(owner.address) == 0

    receipt = c.settle(operator, 0, 10, [agg], [honest], b"proof")
    assert receipt["status"] == 1
    assert c.earnings(owner.address) == 19_200_000_000_000_000
    assert c.channel(payer.address, operator.address, model_id).cumulative_tokens == 9_600
    (batch,) = c.batch_events()
    assert batch.channels[0].first_nonce == 1

    # The replay is refused with the decoded custom error; so is the old consent in a new batch.
    _refused("WrongBatchSeq", c.settle, operator, 0, 10, [agg], [honest], b"proof")
    _refused("SignerNotAuthorized", c.settle, operator, 1, 10, [agg], [honest], b"proof")
    assert c.earnings(owner.address) == 19_200_000_000_000_000

    # Another operator holding the payer's consent for it cannot draw on this account.
    other = _consent(c, payer, payer.address, stranger.address, model_id, 12, 9_600, RATE)
    _refused("InsufficientEscrow", c.settle, stranger, 0, 10, [agg], [other], b"p")

    # A rate rise after serving is charged at the signed cap.
    nxt = Aggregate(int(payer.address, 16), model_id, 0, 1, 1_000)
    capped = _consent(c, payer, payer.address, operator.address, model_id, 13, 10_600, RATE)
    c.propose_rate(model_id, 50 * RATE, sender=owner)
    c.advance_time(NOTICE)
    c.settle(operator, 1, 10, [nxt], [capped], b"p")
    assert c.earnings(owner.address) == 19_200_000_000_000_000 + 1_000 * RATE // 1000

    # An immediate verifier swap is refused; after the delay it applies.
    evil = c.deploy_contract("MockUsageVerifier", 10, True)
    c.propose_verifier(10, evil.address)
    _refused("VerifierChangeNotReady", c.apply_verifier, 10)
    c.advance_time(DELAY)
    assert c.apply_verifier(10) == evil.address

    # Time travel on anvil: the thawing period.
    c.request_withdrawal(operator.address, 10**16, sender=payer)
    _refused("StillThawing", c.withdraw, operator.address, sender=payer)
    c.advance_time(THAWING)
    assert c.withdraw(operator.address, sender=payer) == 10**16


def test_one_word_views_by_raw_call_match_web3_and_reverts_keep_their_error(
    anvil_url: str,
) -> None:
    """`call_uint` (one raw eth_call, the daemon's escrow reads) answers what web3's contract
    call answers; a revert goes the ordinary way and keeps its decoded error."""
    keys = anvil_keys(3)
    c = ChainClient.connect(anvil_url, keys[0], extra_keys=keys[1:])
    _deployer, owner, payer = c.accounts
    mock = c.deploy_contract("MockUsageVerifier", 10, True)
    c.deploy_all(NOTICE, THAWING, [mock.address], verifier_change_delay=DELAY)
    model_id = c.register_model(b"\x43" * 32, RATE, "ipfs://m", sender=owner)
    registry = c.registry
    assert c.call_uint(registry, "currentRate", model_id) == RATE
    assert c.call_uint(registry, "modelCount") == c.call(registry.functions.modelCount()) == 1
    assert c.available_escrow(payer.address, owner.address) == c.call(
        c.settlement.functions.availableEscrow(payer.address, owner.address)
    )
    _refused("UnknownModel", c.call_uint, registry, "currentRate", model_id + 1)
