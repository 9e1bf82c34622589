"""The daemon as processes against anvil, on each store: two intake processes, a batcher and a
proving worker sharing one store (the multi-machine layout, on one machine), and crashes.

Per store, one run: receipts stream into both intakes while (1) the two intakes are handed two
different states for the same nonce at once, again and again, and (2) one intake is SIGKILLed
mid-stream (its client fails over to the other and resends what was unanswered); (3) the
proving worker is SIGKILLed while it holds the claim on a batch, and a new worker takes the
batch over when the lease lapses; (4) the batcher is SIGKILLed between submission and
confirmation (blocks stop being mined); on PostgreSQL also (5) the server restarts under load:
intake answers 503 with Retry-After and recovers. After the last restart every receipt the
daemon acknowledged with 202 settles exactly once, and the chain's totals equal what the
payers signed.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from channels.payer import PayerChannel
from channels.receipts import SignedReceipt
from operator_service.store import ReceiptStore, StoreUnavailableError
from tests.support.anvil import requires_anvil
from tests.support.postgres import requires_postgres
from zkmeter.devcluster import (
    DEV_MAX_RATE,
    OperatorWorld,
    deploy_operator_world,
    free_port,
    kill_group,
)
from zkmeter.devworld import DEV_RATES

pytestmark = [pytest.mark.slow, pytest.mark.anvil, requires_anvil]


@pytest.fixture(scope="module")
def world(anvil_url: str, tmp_path_factory: pytest.TempPathFactory) -> OperatorWorld:
    return deploy_operator_world(anvil_url, tmp_path_factory.mktemp("operator"), payers=3)


class Client:
    """A payer-side client that fails over between intakes and retries 503s, as a load
    balancer in front of several intake processes would."""

    def __init__(self, urls: Sequence[str]) -> None:
        self.urls = list(urls)
        self.unavailable = 0
        self.lock = threading.Lock()

    def post(self, url: str, receipt: SignedReceipt) -> tuple[int, dict[str, Any], str]:
        request = urllib.request.Request(
            url + "/receipts",
            data=json.dumps(receipt.to_json()).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as reply:
                return reply.status, json.loads(reply.read()), ""
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}"), error.headers.get("Retry-After")

    def send(self, receipt: SignedReceipt, deadline: float = 120) -> None:
        """Post until some intake acknowledges it (202); raise on a refusal."""
        end = time.monotonic() + deadline
        turn = 0
        while time.monotonic() < end:
            url = self.urls[turn % len(self.urls)]
            try:
                status, reply, retry_after = self.post(url, receipt)
            except OSError:
                turn += 1  # that intake is gone: the next one (the receipt is resent)
                time.sleep(0.05)
                continue
            if status == 202:
                return
            if status == 503:
                assert retry_after == "1", "503 must say when to retry"
                with self.lock:
                    self.unavailable += 1
                time.sleep(float(retry_after))
                continue
            raise AssertionError(f"refused by {url}: {status} {reply}")
        raise AssertionError("no intake acknowledged the receipt in time")


def _channels(world: OperatorWorld) -> list[PayerChannel]:
    """Every (payer, model) channel, continuing from its settled state on chain."""
    out = []
    for payer in world.payers:
        for model in world.models:
            settled = world.client.channel(payer.address, world.operator, model)
            out.append(
                PayerChannel(
                    payer,
                    _domain(world),
                    world.operator,
                    model,
                    DEV_MAX_RATE,
                    nonce=settled.nonce,
                    cumulative_tokens=settled.cumulative_tokens,
                )
            )
    return out


def _domain(world: OperatorWorld) -> Any:
    from channels.receipts import ReceiptDomain

    return ReceiptDomain(world.client.chain_id, world.deployment.settlement)


def _wait(predicate: Any, what: str, timeout: float = 120, every: float = 0.005) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if predicate():
                return
        except StoreUnavailableError:
            pass  # the test's own connection to a database that restarted: the next try
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=requires_postgres)])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_crashes_settle_each_acknowledged_receipt_once(
    world: OperatorWorld, store_kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    cluster = request.getfixturevalue("postgres") if store_kind == "postgresql" else None
    db = cluster.new_schema() if cluster is not None else f"sqlite:///{tmp_path / 'op.db'}"
    client = world.client
    log = tmp_path / "daemon.log"
    archive = tmp_path / "archive"
    common = ("--archive", str(archive), "--max-rows", "8", "--max-age", "0.5")
    batcher_args = ("--roles", "batcher", *common)
    prover_args = ("--roles", "prover", "--operator", world.operator, "--claim-lease", "3")
    first_seq = client.next_batch_seq(world.operator)
    start_state = {
        (p.address, m): client.channel(p.address, world.operator, m)
        for p in world.payers
        for m in world.models
    }
    p1, p2 = free_port(), free_port()
    a = world.start_daemon(db, p1, "--roles", "intake", log=log)
    b = world.start_daemon(db, p2, "--roles", "intake", log=log)
    batcher = world.start_daemon(db, free_port(), *batcher_args, log=log)
    url_a, url_b = f"http://127.0.0.1:{p1}", f"http://127.0.0.1:{p2}"
    store = ReceiptStore(db)
    processes = [a, b, batcher]
    acked: list[tuple[SignedReceipt, int]] = []
    acked_lock = threading.Lock()
    try:
        channels = _channels(world)
        race_channel, streamed = channels[-1], channels[:-1]

        def stream(client_: Client, mine: Sequence[PayerChannel], n: int) -> None:
            for i in range(n):
                channel = mine[i % len(mine)]
                tokens = 100 + 37 * i
                receipt = channel.sign(tokens, i.to_bytes(32, "big"))
                client_.send(receipt)
                with acked_lock:
                    acked.append((receipt, tokens))

        # (1) racing intakes on one channel, (2) an intake killed mid-stream
        via_a, via_b = Client([url_a, url_b]), Client([url_b, url_a])
        streamers = [
            threading.Thread(target=stream, args=(via_a, streamed[:3], 60)),
            threading.Thread(target=stream, args=(via_b, streamed[3:], 40)),
        ]
        for t in streamers:
            t.start()
        for round_ in range(8):
            forks = [race_channel.next_receipt(10 + k, bytes([round_, k]) * 16) for k in range(2)]
            answers: list[int] = [0, 0]

            def race(k: int, forks: list[SignedReceipt] = forks, answers: list[int] = answers,
                     urls: tuple[str, str] = (url_a, url_b)) -> None:  # fmt: skip
                answers[k] = via_a.post(urls[k], forks[k])[0]

            racers = [threading.Thread(target=race, args=(k,)) for k in range(2)]
            for t in racers:
                t.start()
            for t in racers:
                t.join()
            assert sorted(answers) == [202, 409], answers  # exactly one state per nonce
            k = answers.index(202)
            race_channel.record(forks[k])
            acked.append((forks[k], 10 + k))
        time.sleep(0.3)
        kill_group(a)  # mid-stream: the via_a client fails over to b
        for t in streamers:
            t.join()
        stored = store.counts()["receipts"]
        assert stored == len(acked), (stored, len(acked))

        # (3) a proving worker killed while it holds the claim on a batch
        _wait(lambda: store.batches(("batched",)), "a batch to prove")
        prover = world.start_daemon(db, free_port(), *prover_args, log=log)
        processes.append(prover)

        def claimed() -> bool:
            return any(x.claimed_by for x in store.batches(("batched",)))

        _wait(claimed, "the worker's claim", every=0.002)
        kill_group(prover)
        assert store.batches(("batched",)), "killed after it finished: kill sooner"
        prover = world.start_daemon(db, free_port(), *prover_args, log=log)
        processes.append(prover)

        # (4) the batcher killed between submission and confirmation
        client.rpc("evm_setAutomine", [False])
        try:
            stream(via_b, streamed, 12)
            _wait(lambda: store.batches(("submitted",)), "a submitted batch")
            kill_group(batcher)
        finally:
            client.rpc("evm_setAutomine", [True])
        client.rpc("evm_mine", [])
        epoch = store.leadership()[0]
        batcher = world.start_daemon(db, free_port(), *batcher_args, log=log)
        processes.append(batcher)
        _wait(lambda: store.leadership()[0] > epoch, "a new batcher", every=0.1)

        # (5) the database restarts under load (PostgreSQL)
        if cluster is not None:
            restarted = threading.Event()

            def load_until_restarted() -> None:
                while not restarted.is_set():
                    stream(via_b, streamed, 1)
                stream(via_b, streamed, 10)

            loader = threading.Thread(target=load_until_restarted)
            loader.start()
            time.sleep(0.5)
            cluster.stop("fast")
            time.sleep(2.0)
            cluster.start()
            restarted.set()
            loader.join()
            assert via_b.unavailable > 0, "the restart should have been answered 503"
        stream(via_b, streamed, 5)

        def all_settled() -> bool:
            counts = store.counts()
            assert counts["failed"] == 0
            return counts["settled"] == len(acked)

        _wait(all_settled, "every acknowledged receipt to settle", timeout=240, every=0.2)
        counts = store.counts()
        assert counts["settled"] == counts["receipts"] == len(acked)
    finally:
        for proc in processes:
            kill_group(proc)
        store.close()

    # exactly once: each channel advanced by its acknowledged receipts, no more
    for channel in channels:
        payer, model = channel.key.payer, channel.key.model_id
        mine = [(r, t) for r, t in acked if r.payer == payer and r.model_id == model]
        before = start_state[(payer, model)]
        now = client.channel(payer, world.operator, model)
        assert now.nonce == before.nonce + len(mine) == channel.nonce
        assert now.cumulative_tokens == channel.cumulative_tokens
        assert now.cumulative_tokens - before.cumulative_tokens == sum(t for _, t in mine)
    events = [e for e in client.batch_events(operator=world.operator) if e.batch_seq >= first_seq]
    assert [e.batch_seq for e in events] == list(range(first_seq, first_seq + len(events)))
    assert sum(e.total_tokens for e in events) == sum(t for _, t in acked)
    rate = dict(zip(world.models, DEV_RATES, strict=True))
    owed = sum(t * rate[r.model_id] // 1000 for r, t in acked)  # exact: rates % 1000 == 0
    assert sum(c.amount for e in events for c in e.channels) == owed
    log_text = log.read_text()
    assert "batch settled" in log_text and "elected batcher" in log_text
    assert world.operator_key.removeprefix("0x") not in log_text  # never logged
    (request.config._tmp_path_factory.getbasetemp() / f"archive-{store_kind}").symlink_to(archive)  # type: ignore[attr-defined]


def test_cli_audits_the_archived_batches(
    world: OperatorWorld, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """`zkmeter verify --archive` on a batch the crash test archived (runs after it)."""
    from click.testing import CliRunner

    from zkmeter.cli import main

    archive = tmp_path_factory.getbasetemp() / "archive-sqlite"
    if not archive.exists() or not any(archive.glob("batch-*")):
        pytest.skip("needs the crash test's archive")
    folder = sorted(archive.glob("batch-*"))[0]
    seq = int(folder.name.split("-")[1])
    args = ["verify", "--archive", str(archive), "--batch", str(seq), "--srs"]
    args += [str(world.folder / "dev.srs"), "--rpc-url", world.rpc_url]
    args += ["--deployment", str(world.folder / "deployment.json")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert f"ACCEPTED: batch {seq}" in result.output and "settled on chain" in result.output
    proof = folder / "proof.json"
    data = json.loads(proof.read_text())
    data["public"]["aggregates"][0]["tokens"] += 1
    proof.write_text(json.dumps(data))
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1 and "REJECTED" in result.output


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.update(int(x) for x in text)
    return found


def test_intake_processes_share_a_port_and_a_dead_one_is_replaced(
    world: OperatorWorld, tmp_path: Path
) -> None:
    """`--intake-processes 2`: two processes answer on one port; SIGKILL one and the
    supervisor starts another; /metrics sums the processes' counters."""
    import os
    import signal

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    daemon = world.start_daemon(
        f"sqlite:///{tmp_path / 'op.db'}", port, "--intake-processes", "2", "--provers", "0",
        "--max-age", "600", log=tmp_path / "daemon.log",
    )  # fmt: skip
    try:
        _wait(lambda: len(_children(daemon.pid)) == 2, "two intake processes", timeout=60)
        before = _children(daemon.pid)
        victim = min(before)
        os.kill(victim, signal.SIGKILL)
        _wait(
            lambda: len(_children(daemon.pid)) == 2 and victim not in _children(daemon.pid),
            "a replacement intake process",
            timeout=60,
            every=0.1,
        )
        channel = _channels(world)[0]
        sender = Client([url])
        for i in range(6):  # connections land on both processes
            sender.send(channel.sign(5, bytes([i]) * 32))
        with urllib.request.urlopen(url + "/metrics", timeout=10) as reply:
            metrics = reply.read().decode()
        assert "zkmeter_receipts_admitted_total 6.0" in metrics
        assert "zkmeter_admission_seconds_bucket" in metrics
    finally:
        kill_group(daemon)
