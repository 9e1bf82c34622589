"""UsageSettlement on the embedded chain: the worked example, and every rejection leaving
balances, nonces and the batch sequence unchanged."""

from __future__ import annotations

import pytest
from eth_abi import encode
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.client import Aggregate, ContractRevertError
from tests.chain_world import (
    EXAMPLE_CALLS,
    EXAMPLE_ROYALTY,
    EXAMPLE_TOKENS,
    LOG_N,
    ONE_OPEN,
    RATE_0_002_OPEN,
    RATE_NOTICE_PERIOD,
    THAWING_PERIOD,
    World,
    world,
    world_module,
)

__all__ = ["world", "world_module"]  # fixtures


def settle(
    w: World,
    aggregates: list[Aggregate],
    seq: int | None = None,
    log_n: int = LOG_N,
    proof: bytes = b"proof",
) -> dict:
    c = w.client
    if seq is None:
        seq = c.next_batch_seq(w.operator.address)
    return c.settle(w.operator, seq, log_n, aggregates, proof)


def rejected(
    w: World, error: str, aggregates: list[Aggregate], **kw: object
) -> ContractRevertError:
    """Settling must revert with `error` and change nothing."""
    before = w.state()
    with pytest.raises(ContractRevertError) as info:
        settle(w, aggregates, **kw)  # type: ignore[arg-type]
    assert info.value.error == error, info.value
    assert w.state() == before
    return info.value


# ---------------------------------------------------------------- the worked example


def test_worked_example_pays_creator_exactly_0_0192_open(world: World) -> None:
    w, c = world, world.client
    receipt = settle(w, [w.aggregate()], proof=b"commitments")
    assert c.earnings(w.owner.address) == EXAMPLE_ROYALTY == 192 * 10**14
    assert c.escrow_balance(w.payer.address) == ONE_OPEN - EXAMPLE_ROYALTY
    assert c.last_nonce(w.payer.address, w.operator.address, w.model_id) == EXAMPLE_CALLS
    assert c.next_batch_seq(w.operator.address) == 1
    (batch,) = c.batch_events()
    assert batch.operator == w.operator.address
    assert (batch.batch_seq, batch.log_domain_size) == (0, LOG_N)
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
    assert (ch.rate_per_k_tokens, ch.amount, ch.model_owner) == (
        RATE_0_002_OPEN,
        EXAMPLE_ROYALTY,
        w.owner.address,
    )
    assert receipt["gasUsed"] < 200_000


def test_worked_example_rejected_when_verifier_says_no(world: World) -> None:
    world.mock.functions.setAccept(False).transact({"from": world.owner.address, "gas": 100_000})
    rejected(world, "InvalidProof", [world.aggregate()])


def test_next_batch_continues_nonces_and_ignores_callers_first_nonce(world: World) -> None:
    w, c = world, world.client
    settle(w, [w.aggregate(first_nonce=77)])
    settle(w, [w.aggregate(count=3, tokens=100, first_nonce=5)])
    second = c.batch_events()[1]
    assert second.batch_seq == 1
    assert second.channels[0].first_nonce == EXAMPLE_CALLS + 1
    assert c.last_nonce(w.payer.address, w.operator.address, w.model_id) == EXAMPLE_CALLS + 3
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
                [a.as_tuple() for a in aggs],
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


def test_settle_accepts_plain_tuples_and_duck_typed_aggregates(world: World) -> None:
    from types import SimpleNamespace

    w, c = world, world.client
    a = w.aggregate()
    settle(w, [(a.payer, a.model_id, 0, a.count, a.tokens)])  # type: ignore[list-item]
    duck = SimpleNamespace(payer=a.payer, model_id=a.model_id, first_nonce=0, count=1, tokens=5)
    settle(w, [duck])  # type: ignore[list-item]
    assert c.last_nonce(w.payer.address, w.operator.address, w.model_id) == EXAMPLE_CALLS + 1


def test_only_token_owner_mints(world: World) -> None:
    with pytest.raises(ContractRevertError) as info:
        world.client.mint(world.payer.address, 1, sender=world.payer)
    assert info.value.error == "OwnableUnauthorizedAccount"
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


# ---------------------------------------------------------------- rejections


def test_replayed_batch_rejected(world: World) -> None:
    settle(world, [world.aggregate()], seq=0)
    err = rejected(world, "WrongBatchSeq", [world.aggregate()], seq=0)
    assert err.args_ == (world.operator.address, 1, 0)


def test_future_batch_seq_rejected(world: World) -> None:
    rejected(world, "WrongBatchSeq", [world.aggregate()], seq=1)


def test_payer_did_not_authorise_operator(world: World) -> None:
    w = world
    stranger = w.client.accounts[6]
    w.client.mint(stranger.address, ONE_OPEN)
    w.client.approve_and_deposit(ONE_OPEN, sender=stranger)
    err = rejected(w, "OperatorNotAuthorized", [w.aggregate(payer=stranger)])
    assert err.args_ == (stranger.address, w.operator.address)


def test_insufficient_escrow(world: World) -> None:
    w = world
    tokens = 2**40  # 2^40 * 2e15 / 1000 base units: far beyond 1 OPEN
    err = rejected(w, "InsufficientEscrow", [w.aggregate(tokens=tokens)])
    assert err.args_ == (w.payer.address, tokens * RATE_0_002_OPEN // 1000, ONE_OPEN)


def test_insufficient_escrow_in_a_later_channel_undoes_the_earlier_ones(world: World) -> None:
    w = world
    aggs = sorted([w.aggregate(), w.aggregate(payer=w.payer2, tokens=2**40)], key=lambda a: a.key)
    rejected(w, "InsufficientEscrow", aggs)


def test_non_increasing_keys(world: World) -> None:
    w = world
    aggs = sorted([w.aggregate(), w.aggregate(payer=w.payer2)], key=lambda a: a.key, reverse=True)
    err = rejected(w, "KeysNotIncreasing", aggs)
    assert err.args_ == (1, aggs[0].key, aggs[1].key)


def test_duplicate_key(world: World) -> None:
    w = world
    err = rejected(w, "DuplicateChannel", [w.aggregate(), w.aggregate(count=1, tokens=5)])
    assert err.args_ == (1, w.payer.address, w.model_id)


def test_unregistered_model(world: World) -> None:
    err = rejected(world, "UnknownModel", [world.aggregate(model_id=3)])
    assert err.args_ == (0, 3)
    rejected(world, "UnknownModel", [world.aggregate(model_id=0)])


def test_zero_count(world: World) -> None:
    err = rejected(world, "ZeroCount", [world.aggregate(count=0, tokens=0)])
    assert err.args_ == (0, world.payer.address, world.model_id)


def test_empty_batch(world: World) -> None:
    rejected(world, "EmptyBatch", [])


def test_no_verifier_for_domain_size(world: World) -> None:
    err = rejected(world, "NoVerifier", [world.aggregate()], log_n=LOG_N + 1)
    assert err.args_ == (LOG_N + 1,)


def test_only_owner_sets_verifier(world: World) -> None:
    with pytest.raises(ContractRevertError) as info:
        world.client.set_verifier(world.mock.address, owner=world.payer)
    assert info.value.error == "OwnableUnauthorizedAccount"


# ---------------------------------------------------------------- rates and notice


def test_rate_change_before_notice_ends_uses_old_rate(world: World) -> None:
    w, c = world, world.client
    effective = c.propose_rate(w.model_id, 4 * 10**15, sender=w.owner)
    assert effective >= c.latest_timestamp() + RATE_NOTICE_PERIOD - 1
    c.advance_time(RATE_NOTICE_PERIOD - 10)
    settle(w, [w.aggregate()])
    assert c.earnings(w.owner.address) == EXAMPLE_ROYALTY


def test_rate_change_after_notice_ends_uses_new_rate(world: World) -> None:
    w, c = world, world.client
    c.propose_rate(w.model_id, 4 * 10**15, sender=w.owner)
    c.advance_time(RATE_NOTICE_PERIOD)
    settle(w, [w.aggregate()])
    assert c.earnings(w.owner.address) == 2 * EXAMPLE_ROYALTY


# ---------------------------------------------------------------- escrow


def test_withdrawal_before_thawing_ends_rejected(world: World) -> None:
    w, c = world, world.client
    ready_at = c.request_withdrawal(ONE_OPEN // 2, sender=w.payer)
    c.advance_time(THAWING_PERIOD - 10)
    before = w.state()
    with pytest.raises(ContractRevertError) as info:
        c.withdraw(sender=w.payer)
    assert info.value.error == "StillThawing"
    assert info.value.args_[:2] == (w.payer.address, ready_at)
    assert w.state() == before


def test_withdrawal_after_thawing_pays(world: World) -> None:
    w, c = world, world.client
    c.request_withdrawal(ONE_OPEN // 2, sender=w.payer)
    c.advance_time(THAWING_PERIOD)
    assert c.withdraw(sender=w.payer) == ONE_OPEN // 2
    assert c.escrow_balance(w.payer.address) == ONE_OPEN // 2
    assert c.token_balance(w.payer.address) == 9 * ONE_OPEN + ONE_OPEN // 2


def test_thawing_funds_still_back_settlements(world: World) -> None:
    w, c = world, world.client
    c.request_withdrawal(ONE_OPEN, sender=w.payer)
    settle(w, [w.aggregate()])
    c.advance_time(THAWING_PERIOD)
    assert c.withdraw(sender=w.payer) == ONE_OPEN - EXAMPLE_ROYALTY  # min(requested, balance)
    assert c.escrow_balance(w.payer.address) == 0


def test_withdraw_without_request_and_over_balance_rejected(world: World) -> None:
    w, c = world, world.client
    with pytest.raises(ContractRevertError) as info:
        c.withdraw(sender=w.payer)
    assert info.value.error == "NoWithdrawalRequested"
    with pytest.raises(ContractRevertError) as info:
        c.request_withdrawal(ONE_OPEN + 1, sender=w.payer)
    assert info.value.error == "WithdrawalExceedsBalance"


def test_revoked_operator_may_settle_until_thawing_ends(world: World) -> None:
    w, c = world, world.client
    c.revoke_operator(w.operator.address, sender=w.payer)
    assert c.is_authorized(w.payer.address, w.operator.address)
    settle(w, [w.aggregate()])
    c.advance_time(THAWING_PERIOD)
    assert not c.is_authorized(w.payer.address, w.operator.address)
    rejected(w, "OperatorNotAuthorized", [w.aggregate()])


def test_earnings_withdrawal_pays_once(world: World) -> None:
    w, c = world, world.client
    settle(w, [w.aggregate()])
    assert c.withdraw_earnings(sender=w.owner) == EXAMPLE_ROYALTY
    assert c.token_balance(w.owner.address) == EXAMPLE_ROYALTY
    assert c.earnings(w.owner.address) == 0
    with pytest.raises(ContractRevertError) as info:
        c.withdraw_earnings(sender=w.owner)
    assert info.value.error == "NothingToWithdraw"


# ---------------------------------------------------------------- EIP-712


def _receipt_typed_data(w: World, nonce: int) -> dict:
    return {
        "domain": {
            "name": "zkmeter",
            "version": "1",
            "chainId": w.client.chain_id,
            "verifyingContract": w.deployment.settlement,
        },
        "types": {
            "UsageReceipt": [
                {"name": "operator", "type": "address"},
                {"name": "modelId", "type": "uint64"},
                {"name": "nonce", "type": "uint64"},
                {"name": "tokens", "type": "uint32"},
                {"name": "requestHash", "type": "bytes32"},
            ]
        },
        "primaryType": "UsageReceipt",
        "message": {
            "operator": w.operator.address,
            "modelId": w.model_id,
            "nonce": nonce,
            "tokens": 800,
            "requestHash": b"\x07" * 32,
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
    digest = s.receiptDigest(w.operator.address, w.model_id, 1, 800, b"\x07" * 32).call()
    signed = Account.sign_typed_data(w.payer.key, full_message=_receipt_typed_data(w, 1))
    assert bytes(digest) == bytes(signed.message_hash)
    msg = encode_typed_data(full_message=_receipt_typed_data(w, 1))
    assert Account.recover_message(msg, signature=signed.signature) == w.payer.address


def test_receipt_digest_differs_for_another_nonce(world: World) -> None:
    w = world
    digest = w.client.settlement.functions.receiptDigest(
        w.operator.address, w.model_id, 1, 800, b"\x07" * 32
    ).call()
    signed = Account.sign_typed_data(w.payer.key, full_message=_receipt_typed_data(w, 2))
    assert bytes(digest) != bytes(signed.message_hash)


# ---------------------------------------------------------------- property


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
            assert c.escrow_balance(w.payer.address) == ONE_OPEN - needed
    finally:
        c.revert(snap)
