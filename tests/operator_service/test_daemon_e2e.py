"""End to end on the embedded chain with the daemon's components in process: several payers
and models sign receipts, the operator admits, batches, proves (forked process), checks each
proof in Python, settles; balances are checked against totals computed here."""

from __future__ import annotations

import random
from collections import defaultdict
from pathlib import Path

import pytest

from contracts.client import ChainClient
from operator_service.config import DaemonConfig
from operator_service.pipeline import Operator
from operator_service.store import FAILED, SETTLED, ReceiptStore
from zkmeter.devworld import (
    DEV_LOG_SIZE,
    DEV_RATES,
    DEV_THAWING_PERIOD,
    ONE_OPEN,
    deploy_dev_world,
    development_proving_key,
)


@pytest.mark.slow
def test_several_payers_and_models_settle_exactly(tmp_path: Path) -> None:
    client = ChainClient.embedded()
    owner, operator, *payers = client.accounts[1:6]
    world = deploy_dev_world(client, payers, owner, operator)
    store = ReceiptStore(f"sqlite:///{tmp_path / 'op.db'}")
    config = DaemonConfig(k=DEV_LOG_SIZE, max_rows=20, archive=tmp_path / "archive")
    op = Operator(client, operator, store, development_proving_key(), config)

    rng = random.Random(7)
    sessions = [world.payer_channel(p, m) for p in payers for m in world.models]
    tokens_by_channel: dict[tuple[str, int], int] = defaultdict(int)
    count = 0
    for _ in range(6):
        for s in sessions:
            tokens = rng.randrange(1, 5000)
            receipt = s.sign(tokens, rng.randbytes(32))
            assert op.admit(receipt.to_json()) == "admitted"
            tokens_by_channel[(s.key.payer, s.key.model_id)] += tokens
            count += 1
    op.drain()
    counts = store.counts()
    assert counts[SETTLED] == count and counts[FAILED] == 0
    assert counts["batches"] == 2  # 36 receipts, 20 a batch

    rate = dict(zip(world.models, DEV_RATES, strict=True))
    for p in payers:
        owed = sum(t * rate[m] // 1000 for (a, m), t in tokens_by_channel.items() if a == p.address)
        assert client.escrow_balance(p.address, operator.address) == ONE_OPEN - owed
        for m in world.models:
            channel = client.channel(p.address, operator.address, m)
            assert channel.nonce == 6
            assert channel.cumulative_tokens == tokens_by_channel[(p.address, m)]
    total = sum(t * rate[m] // 1000 for (_, m), t in tokens_by_channel.items())
    assert client.earnings(owner.address) == total
    events = client.batch_events(operator=operator.address)
    assert [e.batch_seq for e in events] == [0, 1]
    assert sum(e.total_tokens for e in events) == sum(tokens_by_channel.values())
    assert (tmp_path / "archive" / "batch-00000001" / "tx.json").is_file()

    # The negative twin: the same receipts again are refused, the chain does not move.
    again = sessions[0]
    again.nonce, again.cumulative_tokens = 5, again.cumulative_tokens - 1
    with pytest.raises(Exception, match="already used"):
        op.admit(again.sign(10, b"\x00" * 32).to_json())
    op.drain()
    assert client.next_batch_seq(operator.address) == 2


def test_proof_the_python_verifier_rejects_is_never_submitted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    import operator_service.proving as daemon_module
    from operator_service.pipeline import ProofRejectedError
    from prover.prover import prove_batch

    def lying_prover(*args: object, **kwargs: object) -> object:
        result = prove_batch(*args, **kwargs)  # type: ignore[arg-type]
        first = dataclasses.replace(result.public.aggregates[0], tokens=10**6)
        result.public = dataclasses.replace(
            result.public, aggregates=(first, *result.public.aggregates[1:])
        )
        return result

    monkeypatch.setattr(daemon_module, "prove_batch", lying_prover)
    client = ChainClient.embedded()
    owner, operator, payer = client.accounts[1:4]
    world = deploy_dev_world(client, [payer], owner, operator)
    store = ReceiptStore(f"sqlite:///{tmp_path / 'op.db'}")
    config = DaemonConfig(k=DEV_LOG_SIZE, prove_in_subprocess=False)
    op = Operator(client, operator, store, development_proving_key(), config)
    session = world.payer_channel(payer, world.models[0])
    op.admit(session.sign(800, b"\x01" * 32).to_json())
    op.cut()
    with pytest.raises(ProofRejectedError):
        op.step()
    assert store.counts()["batched"] == 1
    assert client.next_batch_seq(operator.address) == 0
    assert client.escrow_balance(payer.address, operator.address) == ONE_OPEN


@pytest.mark.slow
def test_archive_audit_and_its_tampered_twin(tmp_path: Path) -> None:
    import json

    from operator_service.archive import ArchiveAuditError, audit_batch

    client = ChainClient.embedded()
    owner, operator, payer = client.accounts[1:4]
    world = deploy_dev_world(client, [payer], owner, operator)
    store = ReceiptStore(f"sqlite:///{tmp_path / 'op.db'}")
    archive = tmp_path / "archive"
    config = DaemonConfig(k=DEV_LOG_SIZE, archive=archive)
    op = Operator(client, operator, store, development_proving_key(), config)
    session = world.payer_channel(payer, world.models[0])
    for tokens in (800, 1200, 5):
        op.admit(session.sign(tokens, b"\x02" * 32).to_json())
    op.drain()
    report = audit_batch(archive, 0, development_proving_key(), client)
    assert (report.receipts, report.tokens, report.on_chain) == (3, 2005, True)

    # The archive is private: folders 0700, files 0600.
    folder = archive / "batch-00000000"
    assert folder.stat().st_mode & 0o777 == 0o700
    for name in ("receipts.json", "proof.json", "blinding.json", "tx.json"):
        assert (folder / name).stat().st_mode & 0o777 == 0o600, name

    # Tampered twins: a receipt's cumulative changed recovers a key its payer never authorised;
    # a call's tokens changed no longer adds up to the cumulative; one archived blinding
    # factor changed no longer reproduces the proof's commitment.
    receipts_path = folder / "receipts.json"
    original = receipts_path.read_text()
    data = json.loads(original)
    data["receipts"][2]["cumulative_tokens"] += 1
    data["receipts"][2]["tokens"] += 1
    receipts_path.write_text(json.dumps(data))
    with pytest.raises(ArchiveAuditError, match=r"receipt 2: .* never authorised"):
        audit_batch(archive, 0, development_proving_key(), client)
    data = json.loads(original)
    data["receipts"][1]["tokens"] += 1
    receipts_path.write_text(json.dumps(data))
    with pytest.raises(ArchiveAuditError, match="receipt 1: cumulative_tokens"):
        audit_batch(archive, 0, development_proving_key(), client)
    receipts_path.write_text(original)
    path = archive / "batch-00000000" / "blinding.json"
    blinding = json.loads(path.read_text())
    blinding["nonce"][0] = str(int(blinding["nonce"][0]) + 1)
    path.write_text(json.dumps(blinding))
    with pytest.raises(ArchiveAuditError, match="commitment to column nonce"):
        audit_batch(archive, 0, development_proving_key(), client)


@pytest.mark.slow
def test_payer_short_of_escrow_is_held_and_the_others_settle(tmp_path: Path) -> None:
    """Escrow withdrawn after admission: the chain refuses the batch (InsufficientEscrow);
    the daemon re-cuts it without that payer, holds the payer's receipts (also new ones),
    and releases them once the payer deposits again."""
    from operator_service.admission import CreditExceededError
    from operator_service.store import HELD

    client = ChainClient.embedded()
    owner, operator, good, short = client.accounts[1:5]
    world = deploy_dev_world(client, [good, short], owner, operator)
    store = ReceiptStore(f"sqlite:///{tmp_path / 'op.db'}")
    op = Operator(client, operator, store, development_proving_key(), DaemonConfig(DEV_LOG_SIZE))
    model = world.models[0]
    s_good = world.payer_channel(good, model)
    s_short = world.payer_channel(short, model)
    for _ in range(3):
        op.admit(s_good.sign(1000, b"\x01" * 32).to_json())
        op.admit(s_short.sign(1000, b"\x02" * 32).to_json())
    client.request_withdrawal(operator.address, ONE_OPEN, sender=short)
    client.advance_time(DEV_THAWING_PERIOD + 1)  # the operator let the thawing period pass
    client.withdraw(operator.address, sender=short)

    op.drain()
    assert store.counts()[HELD] == 3 and store.counts()[SETTLED] == 3
    assert client.channel(good.address, operator.address, model).nonce == 3
    assert client.channel(short.address, operator.address, model).nonce == 0
    with pytest.raises(CreditExceededError):
        op.admit(s_short.sign(1000, b"\x03" * 32).to_json())
    op.drain()  # still short: nothing moves
    assert client.channel(short.address, operator.address, model).nonce == 0

    client.approve_and_deposit(operator.address, ONE_OPEN, sender=short)
    s_short.nonce, s_short.cumulative_tokens = 3, 3000  # the refused receipt is signed again
    assert op.admit(s_short.sign(1000, b"\x03" * 32).to_json()) == HELD  # queued behind
    op.drain()
    assert store.counts()[SETTLED] == 7 and store.counts()[HELD] == 0
    assert client.channel(short.address, operator.address, model).nonce == 4
    rate = DEV_RATES[0]
    assert client.escrow_balance(short.address, operator.address) == ONE_OPEN - 4000 * rate // 1000
    assert client.escrow_balance(good.address, operator.address) == ONE_OPEN - 3000 * rate // 1000
    assert [e.batch_seq for e in client.batch_events(operator=operator.address)] == [0, 1]


def test_submission_retries_with_backoff(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The node refuses the first two sends (connection trouble): the third settles, once."""
    from contracts.client import ChainError

    client = ChainClient.embedded()
    owner, operator, payer = client.accounts[1:4]
    world = deploy_dev_world(client, [payer], owner, operator, mock_verifier=True)
    store = ReceiptStore(f"sqlite:///{tmp_path / 'op.db'}")
    config = DaemonConfig(DEV_LOG_SIZE, retries=3, backoff=0.01, prove_in_subprocess=False)
    op = Operator(client, operator, store, development_proving_key(), config)
    real_send = client.send_settle
    attempts: list[int] = []

    def flaky_send(*args: object, **kwargs: object) -> bytes:
        attempts.append(1)
        if len(attempts) < 3:
            raise ChainError("connection reset by peer")
        return real_send(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(client, "send_settle", flaky_send)
    op.admit(world.payer_channel(payer, world.models[0]).sign(8, b"\x01" * 32).to_json())
    op.drain()
    assert len(attempts) == 3 and store.counts()[SETTLED] == 1
    assert client.next_batch_seq(operator.address) == 1


def test_submission_gives_up_after_retries_and_keeps_the_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from contracts.client import ChainError
    from operator_service.store import PROVEN

    client = ChainClient.embedded()
    owner, operator, payer = client.accounts[1:4]
    world = deploy_dev_world(client, [payer], owner, operator, mock_verifier=True)
    store = ReceiptStore(f"sqlite:///{tmp_path / 'op.db'}")
    config = DaemonConfig(DEV_LOG_SIZE, retries=2, backoff=0.01, prove_in_subprocess=False)
    op = Operator(client, operator, store, development_proving_key(), config)

    def down(*args: object, **kwargs: object) -> bytes:
        raise ChainError("node down")

    monkeypatch.setattr(client, "send_settle", down)
    op.admit(world.payer_channel(payer, world.models[0]).sign(8, b"\x01" * 32).to_json())
    op.cut()
    with pytest.raises(ChainError):
        op.step()  # proves, then fails to send twice
    assert store.counts()[PROVEN] == 1 and client.next_batch_seq(operator.address) == 0


def test_payer_whose_signer_revocation_took_effect_is_held(tmp_path: Path) -> None:
    """Receipts signed by a payer's hot key, then the key's revocation takes effect before
    the operator settles: the dry run refuses (SignerNotAuthorized), the others settle, the
    payer's receipts are held, not lost, and stay held while the signer is not authorised."""
    from channels.payer import PayerChannel
    from operator_service.store import HELD
    from zkmeter.devworld import DEV_MAX_RATE

    client = ChainClient.embedded()
    owner, operator, good, payer, hot = client.accounts[1:6]
    world = deploy_dev_world(client, [good, payer], owner, operator, mock_verifier=True)
    client.authorize_signer(hot.address, sender=payer)
    store = ReceiptStore(f"sqlite:///{tmp_path / 'op.db'}")
    config = DaemonConfig(DEV_LOG_SIZE, prove_in_subprocess=False)
    op = Operator(client, operator, store, development_proving_key(), config)
    model = world.models[0]
    signed_by_hot = PayerChannel(
        hot, op.domain, operator.address, model, DEV_MAX_RATE, payer=payer.address
    )
    honest = world.payer_channel(good, model)
    for _ in range(2):
        op.admit(signed_by_hot.sign(100, b"\x01" * 32).to_json())
        op.admit(honest.sign(100, b"\x02" * 32).to_json())
    client.revoke_signer(hot.address, sender=payer)
    client.advance_time(DEV_THAWING_PERIOD + 1)
    sent_before = client.w3.eth.get_transaction_count(operator.address)
    op.drain()
    assert store.counts()[HELD] == 2 and store.counts()[SETTLED] == 2
    assert client.channel(payer.address, operator.address, model).nonce == 0
    assert (
        client.w3.eth.get_transaction_count(operator.address) == sent_before + 1
    )  # no revert sent
    assert not op.release_ready_payers()
    assert store.counts()[HELD] == 2
