"""contracts.client.index: event scans into typed records, checked against the contracts' own
getters (accountOf, rateAt, modelOf, channelOf, nextBatchSeq), incremental and reorg-safe scanning,
lazy reads (gas, signed caps, transactions), and clear errors for a node that is down."""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from contracts.client import Deployment
from contracts.client.index import (
    AddressError,
    BatchRecord,
    ChainIndex,
    ChainIndexError,
    ChannelSettlement,
    EventDecoder,
    EventRef,
    ModelRegistration,
    NodeUnavailableError,
    RawLog,
    checksum_address,
)
from tests.support.chain import ONE_OPEN, RATE_0_002_OPEN, World, build_world, settle

DAY = 24 * 3600
CAP = 5 * 10**15  # the cap payer 1 signs in batch 0: above the rate, so rate charged != cap


@dataclass
class History:
    """A world with every kind of event, and what the test needs to know about it."""

    world: World
    batch0: dict[str, Any]
    batch1: dict[str, Any]
    replaced_at: int  # when the replaced proposal was made
    final_rate_from: int  # when the replacing proposal applies


@pytest.fixture(scope="module")
def history() -> History:
    w = build_world()
    c = w.client
    a0 = w.aggregate()
    batch0 = settle(w, [a0], [w.consent(a0, max_rate=CAP)])
    c.advance_time(3600)
    c.propose_rate(w.model_id, 3 * 10**15, sender=w.owner)
    replaced_at = c.latest_timestamp()
    c.advance_time(3600)
    final_rate_from = c.propose_rate(w.model_id, 4 * 10**15, sender=w.owner)
    both = sorted(
        [w.aggregate(model_id=w.model2_id), w.aggregate(payer=w.payer2, model_id=w.model2_id)],
        key=lambda a: a.key,
    )
    batch1 = settle(w, both)
    c.request_withdrawal(w.operator.address, ONE_OPEN // 10, sender=w.payer)
    c.request_withdrawal(w.operator.address, ONE_OPEN // 5, sender=w.payer2)
    c.cancel_withdrawal(w.operator.address, sender=w.payer2)
    c.authorize_signer(w.signer.address, sender=w.payer)
    c.revoke_signer(w.signer.address, sender=w.payer)
    c.transfer_model_ownership(w.model2_id, w.payer2.address, sender=w.owner)
    c.withdraw_earnings(sender=w.owner)
    c.advance_time(4 * DAY)
    c.withdraw(w.operator.address, sender=w.payer)
    c.approve_and_deposit(w.operator2.address, ONE_OPEN // 2, sender=w.payer2)
    c.advance_time(7 * DAY)
    return History(w, batch0, batch1, replaced_at, final_rate_from)


@pytest.fixture(scope="module")
def index(history: History) -> ChainIndex:
    idx = ChainIndex.for_client(history.world.client)
    idx.refresh()
    return idx


def test_escrow_accounts_equal_the_contracts(history: History, index: ChainIndex) -> None:
    c = history.world.client
    assert len(index.accounts) == 3  # payer/op, payer2/op, payer2/op2
    for (payer, operator), account in index.accounts.items():
        live = c.escrow_account(payer, operator)
        assert (account.balance, account.thawing, account.thaw_ends_at) == (
            live.balance,
            live.thawing,
            live.thaw_ends_at,
        )
        assert account.available == c.available_escrow(payer, operator)
        assert account.deposited - account.spent - account.withdrawn == account.balance
    w = history.world
    payer = index.accounts[(w.payer.address, w.operator.address)]
    assert payer.withdrawn == ONE_OPEN // 10
    assert payer.spent == 19_200_000_000_000_000 + 28_800_000_000_000_000  # batches 0 and 1


def test_rate_schedule_replays_the_registry(history: History, index: ChainIndex) -> None:
    """Including a pending proposal replaced by a later one (which the registry drops)."""
    w, c = history.world, history.world.client
    model = index.models[w.model_id]
    assert [cp.rate_per_k_tokens for cp in model.schedule] == [RATE_0_002_OPEN, 4 * 10**15]
    assert len(model.proposals) == 2
    registered = model.registration.ref.timestamp
    for t in (
        registered,
        history.replaced_at,
        history.final_rate_from - 1,
        history.final_rate_from,
        index.chain_time,
    ):
        assert model.rate_at(t) == c.rate_at(w.model_id, t), t
    assert model.rate_at(registered - 1) == 0  # the registry has no rate before registration
    live = c.model(w.model_id)
    assert model.rate_at(index.chain_time) == live.current_rate == 4 * 10**15
    assert model.pending(index.chain_time) is None and live.pending_rate_effective_from == 0
    earlier = history.final_rate_from - 1
    pending = model.pending(earlier)
    assert pending is not None and pending.rate_per_k_tokens == 4 * 10**15
    assert pending.effective_from == history.final_rate_from


def test_models_owners_channels_and_batches(history: History, index: ChainIndex) -> None:
    w, c = history.world, history.world.client
    for model_id, model in index.models.items():
        live = c.model(model_id)
        assert model.owner == live.owner
        assert model.registration.model_hash == "0x" + live.model_hash.hex()
        assert model.registration.metadata_uri == live.metadata_uri
    assert index.models[w.model2_id].owner == w.payer2.address
    assert index.models_owned_by(w.payer2.address) == [w.model2_id]
    assert index.models_owned_by(w.owner.address) == [w.model_id]
    assert index.models[w.model_id].earned == 19_200_000_000_000_000
    assert index.models[w.model2_id].earned == 2 * 28_800_000_000_000_000

    for (payer, operator, model_id), channel in index.channels.items():
        live = c.channel(payer, operator, model_id)
        assert (channel.nonce, channel.cumulative_tokens) == (live.nonce, live.cumulative_tokens)
    operator = index.operators[w.operator.address]
    assert len(operator.batches) == c.next_batch_seq(w.operator.address) == 2
    b0, b1 = operator.batches
    assert (b0.batch_seq, b0.rows, len(b0.channels), b0.total_tokens) == (0, 12, 1, 9_600)
    assert (b1.batch_seq, b1.rows, len(b1.channels)) == (1, 24, 2)
    assert b1.total_amount == sum(ch.amount for ch in b1.channels)
    assert b0.ref.tx_hash == "0x" + bytes(history.batch0["transactionHash"]).hex()
    assert index.batch(w.operator.address, 1) == b1
    assert index.batch(w.operator.address, 2) is None
    assert index.batch(w.payer.address, 0) is None
    assert [e.amount for e in index.withdrawals[w.owner.address]] == [
        19_200_000_000_000_000 + 2 * 28_800_000_000_000_000
    ]
    kinds = [s.kind for s in index.signers[w.payer.address]]
    assert kinds == ["authorized", "revoked"]


def test_lazy_reads_gas_caps_and_transactions(history: History, index: ChainIndex) -> None:
    w = history.world
    b0, b1 = index.operators[w.operator.address].batches
    gas = index.gas_used([b0.ref.tx_hash, b1.ref.tx_hash])
    assert gas == {
        b0.ref.tx_hash: history.batch0["gasUsed"],
        b1.ref.tx_hash: history.batch1["gasUsed"],
    }
    (s0,) = b0.channels
    assert s0.rate_per_k_tokens == RATE_0_002_OPEN  # charged: min(rate, cap)
    assert index.signed_cap(s0) == CAP  # signed: from the settle calldata
    assert [index.signed_cap(ch) for ch in b1.channels] == [3 * 10**15, 3 * 10**15]

    tx = index.transaction(b1.ref.tx_hash)
    assert tx is not None
    assert (tx.contract, tx.function, tx.status) == ("UsageSettlement", "settle", 1)
    assert tx.sender == w.operator.address and tx.gas_used == history.batch1["gasUsed"]
    assert tx.records == tuple(index.records_of(b1.ref.tx_hash))
    assert [type(r).__name__ for r in tx.records] == [
        "ChannelSettlement",
        "ChannelSettlement",
        "BatchRecord",
    ]
    assert index.transaction("0x" + "00" * 32) is None


def test_scans_are_incremental(history: History, monkeypatch: pytest.MonkeyPatch) -> None:
    c = history.world.client
    idx = ChainIndex.for_client(c)
    calls: list[tuple[int, int]] = []
    real = c.w3.eth.get_logs

    def counting(params: Any) -> Any:
        calls.append((params["fromBlock"], params["toBlock"]))
        return real(params)

    monkeypatch.setattr(c.w3.eth, "get_logs", counting)
    scanned = idx.refresh()
    latest = c.w3.eth.block_number
    assert scanned == latest - c.deployment.block_number + 1  # type: ignore[union-attr]
    assert calls == [(c.deployment.block_number, latest)]  # type: ignore[union-attr]
    records = idx.stats().records
    assert idx.refresh() == 0 and len(calls) == 1  # nothing new: no log request at all

    snap = c.snapshot()
    try:
        c.approve_and_deposit(history.world.operator.address, 7, sender=history.world.payer)
        assert idx.refresh() == 2  # approve and deposit: two blocks, scanned alone
        assert calls[-1] == (latest + 1, latest + 2)
        assert idx.stats().records == records + 1
        assert idx.stats().rescans == 0
    finally:
        c.revert(snap)


def test_a_reverted_chain_is_rescanned(history: History) -> None:
    """A dev chain reverted to a snapshot (or a reorganisation) replaces scanned blocks."""
    w, c = history.world, history.world.client
    idx = ChainIndex.for_client(c)
    snap = c.snapshot()
    try:
        settle(w, [w.aggregate()])
        idx.refresh()
        assert len(idx.operators[w.operator.address].batches) == 3
    finally:
        c.revert(snap)
    c.advance_time(1)  # the same height again, other blocks
    idx.refresh()
    assert idx.stats().rescans == 1
    assert len(idx.operators[w.operator.address].batches) == 2
    assert idx.accounts[(w.payer.address, w.operator.address)].balance == (
        c.escrow_account(w.payer.address, w.operator.address).balance
    )


def test_small_log_chunks_give_the_same_records(history: History, index: ChainIndex) -> None:
    idx = ChainIndex.for_client(history.world.client, chunk_blocks=1)
    idx.refresh()
    assert idx.by_tx == index.by_tx
    with pytest.raises(ValueError, match="chunk_blocks"):
        ChainIndex.for_client(history.world.client, chunk_blocks=0)


def test_ingested_records_build_the_same_state() -> None:
    """Synthetic histories (benchmarks) go through the same bookkeeping as scanned ones."""
    idx = ChainIndex.for_client(build_world().client)
    owner, payer, operator = "0x" + "11" * 20, "0x" + "22" * 20, "0x" + "33" * 20
    reg = EventRef(1, 0, "0x" + "aa" * 32, 1_000)
    tx = "0x" + "bb" * 32
    idx.ingest(
        [
            ModelRegistration(7, owner, "0x" + "cc" * 32, RATE_0_002_OPEN, "", reg),
            ChannelSettlement(
                operator,
                payer,
                7,
                0,
                1,
                12,
                9_600,
                9_600,
                RATE_0_002_OPEN,
                19_200,
                owner,
                EventRef(2, 0, tx, 2_000),
            ),
            BatchRecord(
                operator, 0, 8, "0x" + "dd" * 32, b"", 9_600, 19_200, EventRef(2, 1, tx, 2_000), ()
            ),
        ]
    )
    (batch,) = idx.operators[operator].batches
    assert batch.rows == 12 and len(batch.channels) == 1
    assert idx.models[7].earned == 19_200
    assert idx.accounts[(payer, operator)].spent == 19_200
    assert [type(r).__name__ for r in idx.records_of(tx)] == ["ChannelSettlement", "BatchRecord"]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_node_that_is_down_is_a_clear_error(history: History, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    idx = ChainIndex.for_node(url, history.world.deployment)
    with pytest.raises(NodeUnavailableError, match="cannot reach the node at " + re.escape(url)):
        idx.refresh()
    with pytest.raises(NodeUnavailableError):  # and again: it retries each time
        idx.refresh()
    assert idx.stats().scanned_to is None

    with pytest.raises(ChainIndexError, match="cannot read deployment file"):
        ChainIndex.for_node(url, tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ChainIndexError, match=r"bad\.json"):
        ChainIndex.for_node(url, tmp_path / "bad.json")


def test_checksum_address() -> None:
    lower = "0x6813eb9362372eef6200f3b1dbc3f819671cba69"
    good = "0x6813Eb9362372EEF6200f3b1dbC3f819671cBA69"
    assert checksum_address(lower) == good
    assert checksum_address(good) == good
    assert checksum_address(" " + lower.upper().replace("0X", "0x") + " ") == good
    with pytest.raises(AddressError, match="checksum"):
        checksum_address(good.replace("Eb", "eB"))
    for bad in ("", "0x1234", "zzz", lower + "00"):
        with pytest.raises(AddressError, match="not an address"):
            checksum_address(bad)


def test_deployment_round_trip_is_what_for_node_reads(history: History, tmp_path: Path) -> None:
    path = tmp_path / "deployment.json"
    history.world.deployment.save(path)
    idx = ChainIndex.for_node("http://127.0.0.1:1", path)
    assert idx.deployment == Deployment.load(path)


def test_the_event_decoder_agrees_with_web3(history: History) -> None:
    """Every log of every kind decodes to exactly the arguments web3's process_log gives."""
    c = history.world.client
    dep = c.deployment
    assert dep is not None
    logs = c.w3.eth.get_logs(
        {"address": [dep.registry, dep.settlement], "fromBlock": 0, "toBlock": "latest"}
    )
    decoders = {}
    for contract in (c.registry, c.settlement):
        for abi in contract.abi:
            if abi.get("type") == "event":
                decoder = EventDecoder.of(abi)
                decoders[decoder.topic] = (decoder, contract)
    names = set()
    for log in logs:
        decoder, contract = decoders[bytes(log["topics"][0])]
        raw = RawLog.of(log)
        expected = dict(contract.events[decoder.name]().process_log(log)["args"])
        assert decoder.decode(raw.topics, raw.data) == expected
        names.add(decoder.name)
    assert names >= {
        "ModelRegistered",
        "RateProposed",
        "ModelOwnershipTransferred",
        "Deposited",
        "WithdrawalRequested",
        "WithdrawalCancelled",
        "Withdrawn",
        "SignerAuthorized",
        "SignerRevoked",
        "ChannelSettled",
        "BatchSettled",
        "EarningsWithdrawn",
    }
    with pytest.raises(ChainIndexError, match="topics"):
        decoder.decode(raw.topics[:1], raw.data)
