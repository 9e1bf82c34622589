"""ModelRegistry on the embedded chain: registration, rates with notice, ownership."""

from __future__ import annotations

import pytest

from contracts.client import ContractRevertError
from tests.support.chain import (
    EXAMPLE_ROYALTY,
    RATE_0_002_OPEN,
    RATE_NOTICE_PERIOD,
    World,
    settle,
)


def test_ids_count_from_one_and_model_is_discoverable(world: World) -> None:
    c = world.client
    assert (world.model_id, world.model2_id) == (1, 2)
    assert c.model_count() == 2
    info = c.model(1)
    assert info.model_hash == b"\x11" * 32
    assert info.owner == world.owner.address
    assert info.current_rate == RATE_0_002_OPEN
    assert info.metadata_uri == "ipfs://model-1"
    assert c.registry.functions.modelIdOf(b"\x11" * 32).call() == 1
    assert c.registry.functions.ownerOf(1).call() == world.owner.address
    logs = c.registry.events.ModelRegistered().get_logs(from_block=0)
    assert [log["args"]["modelId"] for log in logs] == [1, 2]


def test_duplicate_and_zero_model_hash_rejected(world: World) -> None:
    c = world.client
    with pytest.raises(ContractRevertError) as info:
        c.register_model(b"\x11" * 32, 1, sender=world.payer)
    assert (info.value.error, info.value.args_) == ("ModelHashTaken", (b"\x11" * 32, 1))
    with pytest.raises(ContractRevertError) as info:
        c.register_model(b"\x00" * 32, 1, sender=world.payer)
    assert info.value.error == "ZeroModelHash"
    assert c.model_count() == 2


def test_unknown_model_rejected(world: World) -> None:
    for model_id in (0, 3):
        with pytest.raises(ContractRevertError) as info:
            world.client.model(model_id)
        assert (info.value.error, info.value.args_) == ("UnknownModel", (model_id,))


def test_new_rate_applies_only_after_notice(world: World) -> None:
    c, m = world.client, world.model_id
    proposed_at = c.latest_timestamp()
    effective = c.propose_rate(m, 5, sender=world.owner)
    assert proposed_at < effective <= proposed_at + RATE_NOTICE_PERIOD + 1
    info = c.model(m)
    assert (info.current_rate, info.pending_rate, info.pending_rate_effective_from) == (
        RATE_0_002_OPEN,
        5,
        effective,
    )
    assert c.rate_at(m, effective - 1) == RATE_0_002_OPEN
    assert c.rate_at(m, effective) == 5
    c.advance_time(RATE_NOTICE_PERIOD - 5)
    assert c.current_rate(m) == RATE_0_002_OPEN
    c.advance_time(10)
    assert c.current_rate(m) == 5
    # History stays queryable.
    assert c.rate_at(m, proposed_at) == RATE_0_002_OPEN


def test_pending_rate_replaced_by_a_newer_proposal(world: World) -> None:
    c, m = world.client, world.model_id
    first = c.propose_rate(m, 5, sender=world.owner)
    c.advance_time(100)
    second = c.propose_rate(m, 7, sender=world.owner)
    assert second > first
    c.advance_time(RATE_NOTICE_PERIOD - 50)  # past `first`, before `second`
    assert c.current_rate(m) == RATE_0_002_OPEN
    c.advance_time(100)
    assert c.current_rate(m) == 7


def test_rate_history_binary_search(world: World) -> None:
    c, m = world.client, world.model_id
    starts = []
    for rate in (10, 20, 30, 40):
        starts.append(c.propose_rate(m, rate, sender=world.owner))
        c.advance_time(RATE_NOTICE_PERIOD + 1)
    for start, rate in zip(starts, (10, 20, 30, 40), strict=True):
        assert c.rate_at(m, start) == rate
        assert c.rate_at(m, start + 1) == rate
    assert c.rate_at(m, starts[0] - 1) == RATE_0_002_OPEN
    registered = c.model(m).registered_at
    with pytest.raises(ContractRevertError) as info:
        c.rate_at(m, registered - 1)
    assert info.value.args_ == (m, registered - 1, registered)
    assert info.value.error == "NoRateAt"


def test_only_owner_proposes_rates(world: World) -> None:
    with pytest.raises(ContractRevertError) as info:
        world.client.propose_rate(world.model_id, 1, sender=world.payer)
    assert info.value.error == "NotModelOwner"
    assert info.value.args_ == (world.model_id, world.payer.address, world.owner.address)
    assert world.client.current_rate(world.model_id) == RATE_0_002_OPEN


def test_ownership_transfer_moves_future_royalties(world: World) -> None:
    c = world.client
    new_owner = c.accounts[7]
    c.transfer_model_ownership(world.model_id, new_owner.address, sender=world.owner)
    assert c.model(world.model_id).owner == new_owner.address
    with pytest.raises(ContractRevertError) as info:
        c.transfer_model_ownership(world.model_id, world.owner.address, sender=world.owner)
    assert info.value.error == "NotModelOwner"
    settle(world, [world.aggregate()])
    assert c.earnings(new_owner.address) == EXAMPLE_ROYALTY
    assert c.earnings(world.owner.address) == 0


@pytest.mark.parametrize("period", [2**64, 2**64 - 1, 366 * 24 * 3600])
def test_notice_period_beyond_a_year_refused(period: int) -> None:
    """A notice period near 2^64 used to wrap `uint64(now + period)` to no notice at all."""
    from contracts.client import ChainClient

    c = ChainClient.embedded()
    with pytest.raises(ContractRevertError) as info:
        c.deploy_contract("ModelRegistry", period)
    assert info.value.error == "PeriodTooLong"
    assert c.deploy_contract("ModelRegistry", 365 * 24 * 3600).address
