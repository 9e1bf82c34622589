"""UsageSettlement on the embedded chain: the worked example, payer consent, escrow per
operator, rate caps, bounded periods, delayed verifier changes; every rejection leaves balances,
channels and batch sequences unchanged.

The attacks of issue 9 are here as negative tests, each with its honest twin: on the contract
before payment channels (no signature checked, one escrow per payer, rate at settlement,
instant verifier swaps) every one of them went through."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from eth_abi import encode
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from channels.receipts import SECP256K1_N, UsageReceipt
from circuits.public_inputs import Aggregate
from contracts.client import ChainClient, ChainError, ContractRevertError, SignedState, checksum
from contracts.client.codec import aggregate_abi
from tests.support.chain import (
    EXAMPLE_CALLS,
    EXAMPLE_ROYALTY,
    EXAMPLE_TOKENS,
    LOG_N,
    ONE_OPEN,
    RATE_0_002_OPEN,
    RATE_NOTICE_PERIOD,
    REQUEST,
    THAWING_PERIOD,
    VERIFIER_CHANGE_DELAY,
    World,
    settle,
)


def rejected(
    w: World,
    error: str,
    aggregates: list[Aggregate],
    states: list[SignedState] | None = None,
    **kw: Any,
) -> ContractRevertError:
    """Settling must revert with `error` and change nothing."""
    before = w.state()
    with pytest.raises(ContractRevertError) as info:
        settle(w, aggregates, states, **kw)
    assert info.value.error == error, info.value
    assert w.state() == before
    return info.value


def reverts(error: str, fn: Any, *args: Any, **kw: Any) -> ContractRevertError:
    with pytest.raises(ContractRevertError) as info:
        fn(*args, **kw)
    assert info.value.error == error, info.value
    return info.value


# ---------------------------------------------------------------- the worked example


def test_worked_example_pays_creator_exactly_0_0192_open(world: World) -> None:
    w, c = world, world.client
    receipt = settle(w, [w.aggregate()], proof=b"commitments")
    assert c.earnings(w.owner.address) == EXAMPLE_ROYALTY == 192 * 10**14
    assert c.escrow_balance(w.payer.address, w.operator.address) == ONE_OPEN - EXAMPLE_ROYALTY
    channel = c.channel(w.payer.address, w.operator.address, w.model_id)
    assert (channel.nonce, channel.cumulative_tokens) == (EXAMPLE_CALLS, EXAMPLE_TOKENS)
    assert c.next_batch_seq(w.operator.address) == 1
    (batch,) = c.batch_events()
    assert batch.operator == w.operator.address
    assert (batch.batch_seq, batch.k) == (0, LOG_N)
    assert batch.proof_hash == keccak(b"commitments")
    assert batch.witness_commitments == b"commitments"
    assert (batch.total_tokens, batch.total_amount) == (EXAMPLE_TOKENS, EXAMPLE_ROYALTY)
    (ch,) = batch.channels
    assert (ch.payer, ch.model_id, ch.first_nonce, ch.count, ch.tokens) == (
        w.payer.address,
        w.model_id,
        1,
        EXAMPLE_CALLS,
        EXAMPLE_TOKENS,
    )
    assert (ch.cumulative_tokens, ch.rate_per_k_tokens, ch.amount, ch.model_owner) == (
        EXAMPLE_TOKENS,
        RATE_0_002_OPEN,
        EXAMPLE_ROYALTY,
        w.owner.address,
    )
    assert receipt["gasUsed"] < 200_000


def test_worked_example_rejected_when_verifier_says_no(world: World) -> None:
    world.mock.functions.setAccept(False).transact({"from": world.owner.address, "gas": 100_000})
    rejected(world, "InvalidProof", [world.aggregate()])


def test_next_batch_continues_nonces_and_cumulative_and_ignores_callers_first_nonce(
    world: World,
) -> None:
    w, c = world, world.client
    settle(w, [w.aggregate(first_nonce=77)])
    settle(w, [w.aggregate(count=3, tokens=100, first_nonce=5)])
    second = c.batch_events()[1]
    assert second.batch_seq == 1
    assert second.channels[0].first_nonce == EXAMPLE_CALLS + 1
    assert second.channels[0].cumulative_tokens == EXAMPLE_TOKENS + 100
    channel = c.channel(w.payer.address, w.operator.address, w.model_id)
    assert (channel.nonce, channel.cumulative_tokens) == (EXAMPLE_CALLS + 3, EXAMPLE_TOKENS + 100)
    assert c.earnings(w.owner.address) == EXAMPLE_ROYALTY + 100 * RATE_0_002_OPEN // 1000


def _inputs_hash(w: World, seq: int, aggs: list[Aggregate]) -> bytes:
    return keccak(
        encode(
            ["uint256", "address", "address", "uint64", "(address,uint64,uint64,uint64,uint64)[]"],
            [
                w.client.chain_id,
                w.deployment.settlement,
                w.operator.address,
                seq,
                [aggregate_abi(a) for a in aggs],
            ],
        )
    )


def test_verifier_sees_chain_contract_operator_seq_and_filled_nonces(world: World) -> None:
    w = world
    filled = [w.aggregate(first_nonce=1)]
    w.mock.functions.setExpectedInputsHash(_inputs_hash(w, 0, filled)).transact(
        {"from": w.owner.address, "gas": 100_000}
    )
    settle(w, [w.aggregate(first_nonce=999)])  # the contract fills in 1
    assert w.client.next_batch_seq(w.operator.address) == 1


def test_verify_batch_call_matches_what_settle_passes(world: World) -> None:
    w, c = world, world.client
    filled = [w.aggregate(first_nonce=1)]
    w.mock.functions.setExpectedInputsHash(_inputs_hash(w, 0, filled)).transact(
        {"from": w.owner.address, "gas": 100_000}
    )
    assert c.verify_batch_call(w.mock.address, w.operator.address, 0, filled, b"p")
    assert not c.verify_batch_call(w.mock.address, w.operator.address, 1, filled, b"p")


def test_verifier_rejects_inputs_with_wrong_first_nonce(world: World) -> None:
    w = world
    wrong = [w.aggregate(first_nonce=999)]
    w.mock.functions.setExpectedInputsHash(_inputs_hash(w, 0, wrong)).transact(
        {"from": w.owner.address, "gas": 100_000}
    )
    rejected(w, "InvalidProof", [w.aggregate(first_nonce=999)])


def test_payer_with_a_leading_zero_byte_settles(world: World) -> None:
    """An aggregate's payer is an integer; one below 2^152 (address 0x00...) keeps its
    leading zero byte on the way to the contract (to_checksum_address(int) would drop it)."""
    from eth_account import Account

    w, c = world, world.client
    payer = next(
        a
        for i in range(1, 10_000)
        if (a := Account.from_key(i.to_bytes(32, "big"))).address.startswith("0x00")
    )
    c.accounts.append(payer)
    c.w3.eth.send_transaction({"from": w.owner.address, "to": payer.address, "value": 10**18})
    c.mint(payer.address, ONE_OPEN)
    c.approve_and_deposit(w.operator.address, ONE_OPEN, sender=payer)
    a = w.aggregate(payer=payer)
    assert a.payer < 1 << 152
    settle(w, [a])
    assert c.channel(payer.address, w.operator.address, w.model_id).nonce == EXAMPLE_CALLS
    assert c.batch_events()[0].channels[0].payer == payer.address


def test_only_token_owner_mints(world: World) -> None:
    reverts(
        "OwnableUnauthorizedAccount", world.client.mint, world.payer.address, 1, sender=world.payer
    )
    assert world.client.token_balance(world.payer.address) == 9 * ONE_OPEN


def test_several_channels_in_one_batch(world: World) -> None:
    w, c = world, world.client
    aggs = sorted(
        [
            w.aggregate(),
            w.aggregate(model_id=w.model2_id, count=2, tokens=1000),
            w.aggregate(payer=w.payer2, count=1, tokens=1),
        ],
        key=lambda a: a.key,
    )
    settle(w, aggs)
    expected = EXAMPLE_ROYALTY + 1000 * 3 * 10**15 // 1000 + 1 * RATE_0_002_OPEN // 1000
    assert c.earnings(w.owner.address) == expected
    assert c.batch_events()[0].total_amount == expected
    assert len(c.batch_events()[0].channels) == 3


# ---------------------------------------------------------------- consent: who may bill whom


def test_no_signature_rejected(world: World) -> None:
    """Attack 1: an operator bills a payer who signed nothing."""
    w, c = world, world.client
    a = w.aggregate()
    with pytest.raises(ChainError, match="signed state for every channel"):
        settle(w, [a], [])  # the client refuses before sending; the contract too:
    before = w.state()
    raw = c.settlement.functions.settle(0, LOG_N, [aggregate_abi(a)], [], b"proof")
    reverts("StatesLengthMismatch", c.send, raw, w.operator, 3_000_000)
    assert w.state() == before
    err = rejected(w, "InvalidSignature", [a], [SignedState(RATE_0_002_OPEN, REQUEST, b"")])
    assert err.args_ == (0, w.payer.address)
    rejected(w, "InvalidSignature", [a], [SignedState(RATE_0_002_OPEN, REQUEST, b"\x01" * 65)])


def test_invented_call_for_a_payer_with_no_receipts_rejected(world: World) -> None:
    """Attack 1: one invented call of 500,000 tokens, signed by the operator itself."""
    w = world
    a = w.aggregate(count=1, tokens=500_000)
    err = rejected(w, "SignerNotAuthorized", [a], [w.consent(a, signer=w.operator)])
    assert err.args_ == (w.payer.address, w.operator.address)


def test_operator_own_model_at_huge_rate_rejected(world: World) -> None:
    """Attack 1: the operator registers its own model at a huge rate and bills another payer
    one token on it; the payer only ever signed for model 1."""
    w, c = world, world.client
    own = c.register_model(b"\x66" * 32, 5 * ONE_OPEN * 1000, sender=w.operator)
    a = w.aggregate(model_id=own, count=1, tokens=1)
    signed_for_model_1 = w.consent(a, model_id=w.model_id)
    rejected(w, "SignerNotAuthorized", [a], [signed_for_model_1])
    rejected(w, "SignerNotAuthorized", [a], [w.consent(a, signer=w.operator)])
    assert c.escrow_balance(w.payer.address, w.operator.address) == ONE_OPEN


def test_another_payers_signature_rejected(world: World) -> None:
    w = world
    a = w.aggregate()
    rejected(w, "SignerNotAuthorized", [a], [w.consent(a, signer=w.payer2)])
    # ... even on a state naming payer2 as the payer: the digest names the billed payer.
    rejected(w, "SignerNotAuthorized", [a], [w.consent(a, signer=w.payer2, payer=w.payer2.address)])


@pytest.mark.parametrize(
    "bend",
    [
        {"operator": "operator2"},
        {"model_id": 2},
        {"chain_id": 1},
        {"settlement": "0x" + "5e" * 20},
        {"nonce_delta": -1},
        {"nonce_delta": 1},
        {"cumulative_delta": -1},
        {"cumulative_delta": 1},
    ],
    ids=lambda b: next(iter(b)) + "=" + str(next(iter(b.values()))),
)
def test_signature_on_another_state_rejected(world: World, bend: dict[str, Any]) -> None:
    """A signature for another operator / model / chain / contract, or one nonce or one token
    off the state the contract derives, recovers someone else."""
    w = world
    if bend.get("operator") == "operator2":
        bend = {"operator": w.operator2}
    a = w.aggregate()
    rejected(w, "SignerNotAuthorized", [a], [w.consent(a, **bend)])


def test_aggregate_count_or_tokens_one_off_the_signed_state_rejected(world: World) -> None:
    """The signed state fixes count and tokens: an aggregate one call or one token off fails."""
    w = world
    a = w.aggregate()
    honest = w.consent(a)
    for bent in (replace(a, count=a.count - 1), replace(a, count=a.count + 1)):
        rejected(w, "SignerNotAuthorized", [bent], [honest])
    for bent in (replace(a, tokens=a.tokens - 1), replace(a, tokens=a.tokens + 1)):
        rejected(w, "SignerNotAuthorized", [bent], [honest])
    settle(w, [a], [honest])


def test_older_receipt_cannot_bill_again(world: World) -> None:
    """A receipt that settled once (or any older one) is not consent to a new batch."""
    w = world
    first = w.aggregate(count=3, tokens=300)
    old = w.consent(first)
    settle(w, [first], [old])
    rejected(w, "SignerNotAuthorized", [w.aggregate(count=3, tokens=300)], [old])
    # A receipt from before the settled one (nonce 2, cumulative 200).
    earlier = w.consent(w.aggregate(count=1, tokens=100), nonce_delta=-2, cumulative_delta=-400)
    rejected(w, "SignerNotAuthorized", [w.aggregate(count=1, tokens=100)], [earlier])


def test_high_s_signature_rejected_by_the_contract(world: World) -> None:
    w = world
    a = w.aggregate()
    honest = w.consent(a)
    r, s, v = (
        honest.signature[:32],
        int.from_bytes(honest.signature[32:64], "big"),
        honest.signature[64],
    )
    high = r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])  # 27 <-> 28
    assert (
        Account._recover_hash(  # the same signer under the malleable encoding
            receipt_digest_of(w, a), signature=high
        )
        == w.payer.address
    )
    rejected(w, "InvalidSignature", [a], [replace(honest, signature=high)])
    settle(w, [a], [honest])


def receipt_digest_of(w: World, a: Aggregate) -> bytes:
    settled = w.client.channel(checksum(a.payer), w.operator.address, a.model_id)
    receipt = UsageReceipt(
        checksum(a.payer),
        w.operator.address,
        a.model_id,
        settled.nonce + a.count,
        settled.cumulative_tokens + a.tokens,
        w.client.current_rate(a.model_id),
        REQUEST,
    )
    return receipt.digest(w.domain)


# ---------------------------------------------------------------- signers


def test_authorised_signer_may_sign_for_the_payer(world: World) -> None:
    w, c = world, world.client
    a = w.aggregate()
    rejected(w, "SignerNotAuthorized", [a], [w.consent(a, signer=w.signer)])
    c.authorize_signer(w.signer.address, sender=w.payer)
    assert c.is_authorized_signer(w.payer.address, w.signer.address)
    settle(w, [a], [w.consent(a, signer=w.signer)])
    assert c.earnings(w.owner.address) == EXAMPLE_ROYALTY


def test_signer_of_one_payer_cannot_sign_for_another(world: World) -> None:
    w, c = world, world.client
    c.authorize_signer(w.signer.address, sender=w.payer)
    a = w.aggregate(payer=w.payer2)
    rejected(w, "SignerNotAuthorized", [a], [w.consent(a, signer=w.signer)])


def test_revoked_signer_may_sign_until_thawing_ends(world: World) -> None:
    w, c = world, world.client
    c.authorize_signer(w.signer.address, sender=w.payer)
    effective = c.revoke_signer(w.signer.address, sender=w.payer)
    assert effective >= c.latest_timestamp() + THAWING_PERIOD - 1
    first = w.aggregate(count=1, tokens=10)
    settle(w, [first], [w.consent(first, signer=w.signer)])
    c.advance_time(THAWING_PERIOD)
    assert not c.is_authorized_signer(w.payer.address, w.signer.address)
    a = w.aggregate(count=1, tokens=10)
    rejected(w, "SignerNotAuthorized", [a], [w.consent(a, signer=w.signer)])
    settle(w, [a], [w.consent(a)])  # the payer's own key still signs


def test_signer_authorisation_edge_cases(world: World) -> None:
    w, c = world, world.client
    reverts("SignerIsPayer", c.authorize_signer, w.payer.address, sender=w.payer)
    reverts("SignerNotAuthorized", c.revoke_signer, w.signer.address, sender=w.payer)
    reverts("ZeroAddress", c.authorize_signer, "0x" + "00" * 20, sender=w.payer)


# ---------------------------------------------------------------- escrow per operator


def test_operator_draws_only_on_its_own_account(world: World) -> None:
    """A valid consent for operator2 cannot draw on the payer's account for operator."""
    w, c = world, world.client
    a = w.aggregate()
    err = rejected(
        w, "InsufficientEscrow", [a], [w.consent(a, operator=w.operator2)], operator=w.operator2
    )
    assert err.args_ == (w.payer.address, EXAMPLE_ROYALTY, 0)
    c.approve_and_deposit(w.operator2.address, ONE_OPEN, sender=w.payer)
    settle(w, [a], operator=w.operator2)
    assert c.escrow_balance(w.payer.address, w.operator2.address) == ONE_OPEN - EXAMPLE_ROYALTY
    assert c.escrow_balance(w.payer.address, w.operator.address) == ONE_OPEN


def test_self_settlement_touches_only_the_payers_own_account(world: World) -> None:
    """Attack 2: a payer acting as its own operator, on its own model, settles invented usage
    against itself and tries to take the money out at once. It can only draw on (payer,
    payer), earns what it paid itself, and the honest operator's account is untouched."""
    w, c = world, world.client
    p = w.payer
    own = c.register_model(b"\x77" * 32, RATE_0_002_OPEN * 1000, sender=p)
    c.approve_and_deposit(p.address, ONE_OPEN // 2, sender=p)
    a = w.aggregate(model_id=own, count=1, tokens=250)  # 0.5 OPEN at 2 OPEN per 1k
    settle(w, [a], operator=p)
    assert c.escrow_balance(p.address, p.address) == 0
    assert c.escrow_balance(p.address, w.operator.address) == ONE_OPEN
    assert c.earnings(p.address) == ONE_OPEN // 2
    # The honest operator's account still backs the calls it served, and cannot leave early.
    c.request_withdrawal(w.operator.address, ONE_OPEN, sender=p)
    reverts("StillThawing", c.withdraw, w.operator.address, sender=p)
    settle(w, [w.aggregate()])
    assert c.earnings(w.owner.address) == EXAMPLE_ROYALTY


def test_withdrawal_before_thawing_ends_rejected(world: World) -> None:
    w, c = world, world.client
    ready_at = c.request_withdrawal(w.operator.address, ONE_OPEN // 2, sender=w.payer)
    c.advance_time(THAWING_PERIOD - 10)
    before = w.state()
    err = reverts("StillThawing", c.withdraw, w.operator.address, sender=w.payer)
    assert err.args_[:3] == (w.payer.address, w.operator.address, ready_at)
    assert w.state() == before


def test_withdrawal_after_thawing_pays(world: World) -> None:
    w, c = world, world.client
    c.request_withdrawal(w.operator.address, ONE_OPEN // 2, sender=w.payer)
    assert c.available_escrow(w.payer.address, w.operator.address) == ONE_OPEN // 2
    c.advance_time(THAWING_PERIOD)
    assert c.withdraw(w.operator.address, sender=w.payer) == ONE_OPEN // 2
    account = c.escrow_account(w.payer.address, w.operator.address)
    assert (account.balance, account.thawing, account.thaw_ends_at) == (ONE_OPEN // 2, 0, 0)
    assert c.token_balance(w.payer.address) == 9 * ONE_OPEN + ONE_OPEN // 2


def test_thawing_funds_still_back_settlements(world: World) -> None:
    """An operator that settles within the thawing period is paid for what it served."""
    w, c = world, world.client
    c.request_withdrawal(w.operator.address, ONE_OPEN, sender=w.payer)
    assert c.available_escrow(w.payer.address, w.operator.address) == 0
    c.advance_time(THAWING_PERIOD - 60)
    settle(w, [w.aggregate()])
    c.advance_time(60)
    assert c.withdraw(w.operator.address, sender=w.payer) == ONE_OPEN - EXAMPLE_ROYALTY
    assert c.escrow_balance(w.payer.address, w.operator.address) == 0


def test_cancelled_withdrawal(world: World) -> None:
    w, c = world, world.client
    c.request_withdrawal(w.operator.address, ONE_OPEN, sender=w.payer)
    c.cancel_withdrawal(w.operator.address, sender=w.payer)
    assert c.available_escrow(w.payer.address, w.operator.address) == ONE_OPEN
    c.advance_time(THAWING_PERIOD)
    reverts("NoWithdrawalRequested", c.withdraw, w.operator.address, sender=w.payer)
    reverts("NoWithdrawalRequested", c.cancel_withdrawal, w.operator.address, sender=w.payer)


def test_withdraw_without_request_and_over_balance_rejected(world: World) -> None:
    w, c = world, world.client
    reverts("NoWithdrawalRequested", c.withdraw, w.operator.address, sender=w.payer)
    reverts(
        "WithdrawalExceedsBalance",
        c.request_withdrawal,
        w.operator.address,
        ONE_OPEN + 1,
        sender=w.payer,
    )
    reverts("ZeroAmount", c.request_withdrawal, w.operator.address, 0, sender=w.payer)


def test_earnings_withdrawal_pays_once(world: World) -> None:
    w, c = world, world.client
    settle(w, [w.aggregate()])
    assert c.withdraw_earnings(sender=w.owner) == EXAMPLE_ROYALTY
    assert c.token_balance(w.owner.address) == EXAMPLE_ROYALTY
    assert c.earnings(w.owner.address) == 0
    reverts("NothingToWithdraw", c.withdraw_earnings, sender=w.owner)


def test_insufficient_escrow(world: World) -> None:
    w = world
    tokens = 2**40  # 2^40 * 2e15 / 1000 base units: far beyond 1 OPEN
    err = rejected(w, "InsufficientEscrow", [w.aggregate(tokens=tokens)])
    assert err.args_ == (w.payer.address, tokens * RATE_0_002_OPEN // 1000, ONE_OPEN)


def test_insufficient_escrow_in_a_later_channel_undoes_the_earlier_ones(world: World) -> None:
    w = world
    aggs = sorted([w.aggregate(), w.aggregate(payer=w.payer2, tokens=2**40)], key=lambda a: a.key)
    rejected(w, "InsufficientEscrow", aggs)


# ---------------------------------------------------------------- batch structure


def test_replayed_batch_rejected(world: World) -> None:
    settle(world, [world.aggregate()], seq=0)
    err = rejected(world, "WrongBatchSeq", [world.aggregate()], seq=0)
    assert err.args_ == (world.operator.address, 1, 0)


def test_future_batch_seq_rejected(world: World) -> None:
    rejected(world, "WrongBatchSeq", [world.aggregate()], seq=1)


def test_non_increasing_keys(world: World) -> None:
    w = world
    aggs = sorted([w.aggregate(), w.aggregate(payer=w.payer2)], key=lambda a: a.key, reverse=True)
    err = rejected(w, "KeysNotIncreasing", aggs)
    assert err.args_ == (1, aggs[0].key, aggs[1].key)


def test_duplicate_key(world: World) -> None:
    w = world
    a, b = w.aggregate(), w.aggregate(count=1, tokens=5)
    err = rejected(w, "DuplicateChannel", [a, b], [w.consent(a), w.consent(b)])
    assert err.args_ == (1, w.payer.address, w.model_id)


def test_unregistered_model(world: World) -> None:
    w = world
    for model_id in (3, 0):
        a = w.aggregate(model_id=model_id)
        err = rejected(w, "UnknownModel", [a], [w.consent(w.aggregate())])
        assert err.args_ == (0, model_id)


def test_zero_count(world: World) -> None:
    err = rejected(world, "ZeroCount", [world.aggregate(count=0, tokens=0)])
    assert err.args_ == (0, world.payer.address, world.model_id)


def test_empty_batch(world: World) -> None:
    rejected(world, "EmptyBatch", [])


def test_no_verifier_for_domain_size(world: World) -> None:
    err = rejected(world, "NoVerifier", [world.aggregate()], k=LOG_N + 1)
    assert err.args_ == (LOG_N + 1,)


# ---------------------------------------------------------------- rates, notice and caps


def test_rate_change_before_notice_ends_uses_old_rate(world: World) -> None:
    w, c = world, world.client
    effective = c.propose_rate(w.model_id, 4 * 10**15, sender=w.owner)
    assert effective >= c.latest_timestamp() + RATE_NOTICE_PERIOD - 1
    c.advance_time(RATE_NOTICE_PERIOD - 10)
    settle(w, [w.aggregate()])
    assert c.earnings(w.owner.address) == EXAMPLE_ROYALTY


def test_rate_rise_after_serving_is_charged_at_the_signed_cap(world: World) -> None:
    """Attack 3: calls served at 0.002 are settled after a 50x rise took effect; the payer
    signed a cap of 0.002, so that is what it pays."""
    w, c = world, world.client
    a = w.aggregate()
    consent = w.consent(a, max_rate=RATE_0_002_OPEN)
    c.propose_rate(w.model_id, 50 * RATE_0_002_OPEN, sender=w.owner)
    c.advance_time(RATE_NOTICE_PERIOD)
    assert c.current_rate(w.model_id) == 50 * RATE_0_002_OPEN
    settle(w, [a], [consent])
    assert c.earnings(w.owner.address) == EXAMPLE_ROYALTY
    assert c.batch_events()[0].channels[0].rate_per_k_tokens == RATE_0_002_OPEN


def test_rate_rise_is_charged_when_the_payer_signed_for_it(world: World) -> None:
    """Twin: a payer whose cap covers the new rate pays the new rate."""
    w, c = world, world.client
    c.propose_rate(w.model_id, 2 * RATE_0_002_OPEN, sender=w.owner)
    c.advance_time(RATE_NOTICE_PERIOD)
    a = w.aggregate()
    settle(w, [a], [w.consent(a, max_rate=10 * RATE_0_002_OPEN)])
    assert c.earnings(w.owner.address) == 2 * EXAMPLE_ROYALTY


def test_rate_cut_below_the_cap_charges_the_lower_rate(world: World) -> None:
    w, c = world, world.client
    a = w.aggregate()
    consent = w.consent(a, max_rate=RATE_0_002_OPEN)
    c.propose_rate(w.model_id, RATE_0_002_OPEN // 2, sender=w.owner)
    c.advance_time(RATE_NOTICE_PERIOD)
    settle(w, [a], [consent])
    assert c.earnings(w.owner.address) == EXAMPLE_ROYALTY // 2


def test_payer_who_leaves_at_a_rise_announcement_is_gone_before_it_applies(world: World) -> None:
    """THAWING_PERIOD < RATE_NOTICE_PERIOD: a payer withdrawing when a rise is announced
    has its money back before the rise could touch it."""
    w, c = world, world.client
    rise_from = c.propose_rate(w.model_id, 50 * RATE_0_002_OPEN, sender=w.owner)
    ready_at = c.request_withdrawal(w.operator.address, ONE_OPEN, sender=w.payer)
    assert ready_at < rise_from
    c.advance_time(THAWING_PERIOD)
    assert c.current_rate(w.model_id) == RATE_0_002_OPEN
    assert c.withdraw(w.operator.address, sender=w.payer) == ONE_OPEN


# ---------------------------------------------------------------- periods and verifier changes


def _deploy(c: ChainClient, notice: int, thawing: int, delay: int | None = None) -> Any:
    return c.deploy_all(notice, thawing, verifier_change_delay=delay)


@pytest.mark.parametrize(
    ("notice", "thawing", "delay", "error"),
    [
        (2**64, 3600, 7200, "PeriodTooLong"),
        (2**64 - 10, 3600, 7200, "PeriodTooLong"),
        (366 * 86400, 3600, 7200, "PeriodTooLong"),
        (7200, 3600, 2**64, "PeriodTooLong"),
        (7200, 0, 3600, "ZeroThawingPeriod"),
        (7200, 7200, 9000, "ThawingNotShorterThanRateNotice"),
        (7200, 2**64, 9000, "ThawingNotShorterThanRateNotice"),
        (7200, 3600, 3600, "VerifierDelayTooShort"),
    ],
)
def test_unsafe_periods_refused_at_deployment(
    notice: int, thawing: int, delay: int, error: str
) -> None:
    """Attack 4: a period near 2^64 used to wrap `uint64(now + period)` to no delay at all."""
    c = ChainClient.embedded()
    reverts(error, _deploy, c, notice, thawing, delay)


def test_sane_periods_deploy() -> None:
    c = ChainClient.embedded()
    dep = _deploy(c, 365 * 86400, 365 * 86400 - 1, 365 * 86400)
    assert (dep.rate_notice_period, dep.thawing_period, dep.verifier_change_delay) == (
        365 * 86400,
        365 * 86400 - 1,
        365 * 86400,
    )


def test_immediate_verifier_swap_refused(world: World) -> None:
    """Attack 5: the owner installs an always-true verifier with no warning to payers."""
    w, c = world, world.client
    evil = c.deploy_contract("MockUsageVerifier", LOG_N, True)
    ready_at = c.propose_verifier(LOG_N, evil.address)
    assert ready_at >= c.latest_timestamp() + VERIFIER_CHANGE_DELAY - 1
    assert c.verifier_for(LOG_N) == w.mock.address
    err = reverts("VerifierChangeNotReady", c.apply_verifier, LOG_N)
    assert err.args_[:2] == (LOG_N, ready_at)
    c.advance_time(VERIFIER_CHANGE_DELAY - 60)
    reverts("VerifierChangeNotReady", c.apply_verifier, LOG_N)
    assert c.verifier_for(LOG_N) == w.mock.address
    # The delay exceeds the thawing period: a payer who starts leaving at the proposal is out.
    assert VERIFIER_CHANGE_DELAY > THAWING_PERIOD
    c.advance_time(60)
    assert c.apply_verifier(LOG_N) == evil.address
    assert c.verifier_for(LOG_N) == evil.address
    logs = c.settlement.events.VerifierSet().get_logs(from_block=0)
    assert [(x["args"]["logDomainSize"], x["args"]["verifier"]) for x in logs][-1] == (
        LOG_N,
        evil.address,
    )


def test_verifier_changes_only_by_owner_and_only_matching_domain(world: World) -> None:
    w, c = world, world.client
    other = c.deploy_contract("MockUsageVerifier", LOG_N + 1, True)
    reverts(
        "OwnableUnauthorizedAccount", c.propose_verifier, LOG_N + 1, other.address, owner=w.payer
    )
    err = reverts("VerifierDomainMismatch", c.propose_verifier, LOG_N, other.address)
    assert err.args_ == (other.address, LOG_N, LOG_N + 1)
    reverts("NoVerifierProposal", c.apply_verifier, LOG_N + 1)
    c.propose_verifier(LOG_N + 1, other.address)
    c.cancel_verifier_proposal(LOG_N + 1)
    c.advance_time(VERIFIER_CHANGE_DELAY)
    reverts("NoVerifierProposal", c.apply_verifier, LOG_N + 1)


def test_verifier_removal_waits_too(world: World) -> None:
    w, c = world, world.client
    c.propose_verifier(LOG_N, None)
    settle(w, [w.aggregate(count=1, tokens=1)])
    c.advance_time(VERIFIER_CHANGE_DELAY)
    c.apply_verifier(LOG_N)
    rejected(w, "NoVerifier", [w.aggregate(count=1, tokens=1)])


# ---------------------------------------------------------------- EIP-712


def _receipt_typed_data(w: World, nonce: int) -> dict[str, Any]:
    return {
        "domain": {
            "name": "zkmeter",
            "version": "1",
            "chainId": w.client.chain_id,
            "verifyingContract": w.deployment.settlement,
        },
        "types": {
            "UsageReceipt": [
                {"name": "payer", "type": "address"},
                {"name": "operator", "type": "address"},
                {"name": "modelId", "type": "uint64"},
                {"name": "nonce", "type": "uint64"},
                {"name": "cumulativeTokens", "type": "uint128"},
                {"name": "maxRatePerKTokens", "type": "uint256"},
                {"name": "requestHash", "type": "bytes32"},
            ]
        },
        "primaryType": "UsageReceipt",
        "message": {
            "payer": w.payer.address,
            "operator": w.operator.address,
            "modelId": w.model_id,
            "nonce": nonce,
            "cumulativeTokens": 800 * nonce,
            "maxRatePerKTokens": RATE_0_002_OPEN,
            "requestHash": REQUEST,
        },
    }


def test_eip712_domain_and_receipt_digest_match_eth_account(world: World) -> None:
    w = world
    s = w.client.settlement.functions
    _fields, name, version, chain_id, contract, *_ = s.eip712Domain().call()
    assert (name, version, chain_id, contract) == (
        "zkmeter",
        "1",
        w.client.chain_id,
        w.deployment.settlement,
    )
    digest = w.client.receipt_digest(
        UsageReceipt(
            w.payer.address, w.operator.address, w.model_id, 1, 800, RATE_0_002_OPEN, REQUEST
        )
    )
    signed = Account.sign_typed_data(w.payer.key, full_message=_receipt_typed_data(w, 1))
    assert digest == bytes(signed.message_hash)
    msg = encode_typed_data(full_message=_receipt_typed_data(w, 1))
    assert Account.recover_message(msg, signature=signed.signature) == w.payer.address


def test_receipt_digest_differs_for_another_nonce(world: World) -> None:
    w = world
    digest = w.client.receipt_digest(
        UsageReceipt(
            w.payer.address, w.operator.address, w.model_id, 1, 800, RATE_0_002_OPEN, REQUEST
        )
    )
    signed = Account.sign_typed_data(w.payer.key, full_message=_receipt_typed_data(w, 2))
    assert digest != bytes(signed.message_hash)


# ---------------------------------------------------------------- properties

_channels = st.lists(
    st.tuples(
        st.sampled_from((0, 1)), st.sampled_from((1, 2)), st.integers(1, 40), st.integers(0, 20_000)
    ),
    min_size=1,
    max_size=4,
    unique_by=lambda t: (t[0], t[1]),
)


def _batch(w: World, channels: list[tuple[int, int, int, int]]) -> list[Aggregate]:
    payers = (w.payer, w.payer2)
    return sorted(
        (
            w.aggregate(payer=payers[p], model_id=m, count=n, tokens=t * n)
            for p, m, n, t in channels
        ),
        key=lambda a: a.key,
    )


@pytest.mark.slow
@settings(max_examples=12, deadline=None)
@given(batches=st.lists(_channels, min_size=1, max_size=3))
def test_random_honest_channels_settle_to_the_exact_sums(
    world_module: World, batches: list[list[tuple[int, int, int, int]]]
) -> None:
    w, c = world_module, world_module.client
    snap = c.snapshot()
    try:
        expected_earned = 0
        totals: dict[tuple[str, int], tuple[int, int]] = {}
        for batch in batches:
            aggs = _batch(w, batch)
            cost = sum(a.tokens * c.current_rate(a.model_id) // 1000 for a in aggs)
            affordable = all(
                sum(b.tokens * c.current_rate(b.model_id) // 1000 for b in aggs if b.payer == p)
                <= c.escrow_balance(p, w.operator.address)
                for p in {a.payer for a in aggs}
            )
            if not affordable:
                rejected(w, "InsufficientEscrow", aggs)
                continue
            settle(w, aggs)
            expected_earned += cost
            for a in aggs:
                n, t = totals.get((a.payer, a.model_id), (0, 0))
                totals[(a.payer, a.model_id)] = (n + a.count, t + a.tokens)
        assert c.earnings(w.owner.address) == expected_earned
        for (payer, model_id), (n, t) in totals.items():
            channel = c.channel(payer, w.operator.address, model_id)
            assert (channel.nonce, channel.cumulative_tokens) == (n, t)
    finally:
        c.revert(snap)


_FIELDS = ("count", "tokens", "max_rate", "request_hash", "signature", "model", "payer")


@pytest.mark.slow
@settings(max_examples=14, deadline=None)
@given(
    channels=_channels,
    index=st.integers(0, 3),
    field=st.sampled_from(_FIELDS),
    delta=st.integers(1, 5),
)
def test_any_single_field_change_is_refused(
    world_module: World,
    channels: list[tuple[int, int, int, int]],
    index: int,
    field: str,
    delta: int,
) -> None:
    w, c = world_module, world_module.client
    snap = c.snapshot()
    try:
        # At most 10^5 tokens a channel: all of a payer's channels stay within its 1 OPEN escrow
        # (500,000 tokens at 0.002), so the revert is the consent check's, not the escrow's.
        aggs = [replace(a, tokens=min(a.tokens, 10**5)) for a in _batch(w, channels)]
        states = [w.consent(a) for a in aggs]
        i = index % len(aggs)
        a, s = aggs[i], states[i]
        if field == "count":
            aggs[i] = replace(a, count=a.count + delta)
        elif field == "tokens":
            aggs[i] = replace(a, tokens=a.tokens + delta)
        elif field == "max_rate":
            states[i] = replace(s, max_rate_per_k_tokens=s.max_rate_per_k_tokens + delta)
        elif field == "request_hash":
            states[i] = replace(
                s, request_hash=bytes([s.request_hash[0] ^ delta]) + s.request_hash[1:]
            )
        elif field == "signature":
            sig = bytearray(s.signature)
            sig[delta] ^= 1
            states[i] = replace(s, signature=bytes(sig))
        elif field == "model":
            other = 2 if a.model_id == 1 else 1
            if any(b.payer == a.payer and b.model_id == other for b in aggs):
                return  # would duplicate a channel: another rule's test
            aggs[i] = replace(a, model_id=other)
            order = sorted(range(len(aggs)), key=lambda j: aggs[j].key)
            aggs, states = [aggs[j] for j in order], [states[j] for j in order]
        elif field == "payer":
            mine, theirs = int(w.payer.address, 16), int(w.payer2.address, 16)
            other = theirs if a.payer == mine else mine
            if any(b.payer == other and b.model_id == a.model_id for b in aggs):
                return
            aggs[i] = replace(a, payer=other)
            order = sorted(range(len(aggs)), key=lambda j: aggs[j].key)
            aggs, states = [aggs[j] for j in order], [states[j] for j in order]
        before = w.state()
        with pytest.raises(ContractRevertError) as info:
            settle(w, aggs, states)
        assert info.value.error in ("SignerNotAuthorized", "InvalidSignature"), info.value
        assert w.state() == before
    finally:
        c.revert(snap)


@pytest.mark.slow
@settings(max_examples=15, deadline=None)
@given(tokens=st.integers(0, 2**40), count=st.integers(1, 2**20))
def test_amount_is_tokens_times_rate_over_1000_rounded_down(
    world_module: World, tokens: int, count: int
) -> None:
    w, c = world_module, world_module.client
    snap = c.snapshot()
    try:
        needed = tokens * RATE_0_002_OPEN // 1000
        if needed > ONE_OPEN:
            rejected(w, "InsufficientEscrow", [w.aggregate(count=count, tokens=tokens)])
        else:
            settle(w, [w.aggregate(count=count, tokens=tokens)])
            assert c.earnings(w.owner.address) == needed
            assert c.escrow_balance(w.payer.address, w.operator.address) == ONE_OPEN - needed
    finally:
        c.revert(snap)


def test_refused_settlement_is_caught_by_the_dry_run_and_sends_nothing(world: World) -> None:
    """`send_settle` (the daemon's path) simulates first: a refusal costs no transaction."""
    w, c = world, world.client
    a = w.aggregate(tokens=2**40)
    sent_before = c.w3.eth.get_transaction_count(w.operator.address)
    with pytest.raises(ContractRevertError) as info:
        c.send_settle(w.operator, 0, LOG_N, [a], [w.consent(a)], b"p")
    assert info.value.error == "InsufficientEscrow"
    assert c.w3.eth.get_transaction_count(w.operator.address) == sent_before
    tx = c.send_settle(w.operator, 0, LOG_N, [w.aggregate()], [w.consent(w.aggregate())], b"p")
    assert c.settle_outcome(tx) is not None
    assert c.w3.eth.get_transaction_count(w.operator.address) == sent_before + 1
