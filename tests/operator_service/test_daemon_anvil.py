"""The daemon as a subprocess against anvil: HTTP intake, CLI, and crash safety.

The daemon is SIGKILLed (with its proving process: the whole process group) while admitting,
while proving, and between submission and confirmation; after each restart every receipt the
daemon acknowledged settles exactly once, and the chain's totals equal the receipts' sums.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from channels.payer import PayerChannel
from channels.receipts import SignedReceipt
from contracts.client import ChainClient
from tests.support import REPO_ROOT
from tests.support.anvil import anvil_keys, requires_anvil
from zkmeter.commands.payer import post_json
from zkmeter.devworld import (
    DEV_LOG_SIZE,
    DEV_RATES,
    ONE_OPEN,
    deploy_dev_world,
    development_proving_key,
)

pytestmark = [pytest.mark.slow, pytest.mark.anvil, requires_anvil]

ROOT = REPO_ROOT


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Setup:
    client: ChainClient
    world: Any
    url: str
    args: list[str]
    env: dict[str, str]
    db: Path


@pytest.fixture(scope="module")
def setup(anvil_url: str, tmp_path_factory: pytest.TempPathFactory) -> Setup:
    keys = anvil_keys(6)
    client = ChainClient.connect(anvil_url, keys[0], extra_keys=keys[1:])
    _deployer, owner, operator, *payers = client.accounts
    world = deploy_dev_world(client, payers, owner, operator)
    tmp = tmp_path_factory.mktemp("daemon")
    client.deployment.save(tmp / "deployment.json")  # type: ignore[union-attr]
    development_proving_key().srs.save(tmp / "dev.srs")
    port = _free_port()
    args = [
        sys.executable, "-m", "zkmeter.cli", "daemon",
        "--rpc-url", anvil_url, "--deployment", str(tmp / "deployment.json"),
        "--srs", str(tmp / "dev.srs"), "--db", f"sqlite:///{tmp / 'op.db'}",
        "--archive", str(tmp / "archive"), "--port", str(port),
        "--log-size", str(DEV_LOG_SIZE), "--max-rows", "8", "--max-age", "0.5",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ZKMETER_PRIVATE_KEY": keys[2]}
    return Setup(client, world, f"http://127.0.0.1:{port}", args, env, tmp / "op.db")


class Daemon:
    def __init__(self, s: Setup) -> None:
        self.s = s
        log = open(s.db.with_suffix(".log"), "a")  # noqa: SIM115
        self.proc = subprocess.Popen(
            s.args, env=s.env, stdout=log, stderr=log, start_new_session=True
        )
        for _ in range(600):
            try:
                if post_json(s.url + "/receipts", "x")[0] == 400:
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("daemon did not start")

    def health(self) -> dict[str, Any]:
        import urllib.request

        with urllib.request.urlopen(self.s.url + "/health", timeout=10) as r:
            return dict(json.loads(r.read()))

    def wait_for(self, state: str, timeout: float = 120) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.health()["receipts"][state] > 0:
                return
            time.sleep(0.02)
        raise RuntimeError(f"no receipt reached {state}")

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


@pytest.fixture
def sessions(setup: Setup) -> Iterator[list[PayerChannel]]:
    w = setup.world
    yield [w.payer_channel(p, m) for p in w.payers for m in w.models]


def _send(url: str, receipt: SignedReceipt) -> bool:
    """Post until the daemon answers; True if admitted now or before (an identical receipt
    already stored is acknowledged again)."""
    status, reply = post_json(url + "/receipts", receipt.to_json())
    if status == 202:
        return True
    raise AssertionError(f"refused: {reply}")


def test_crash_at_every_stage_settles_each_receipt_once(
    setup: Setup, sessions: list[PayerChannel]
) -> None:
    client, w = setup.client, setup.world
    #: (receipt, its call's tokens): acknowledged, or in flight when the daemon died
    sent: list[tuple[SignedReceipt, int]] = []
    unanswered: list[tuple[SignedReceipt, int]] = []

    def stream(n: int) -> None:
        for i in range(n):
            s = sessions[i % len(sessions)]
            tokens = 100 + 37 * len(sent)
            r = s.sign(tokens, os.urandom(32))
            try:
                _send(setup.url, r)
            except OSError:
                unanswered.append((r, tokens))  # maybe admitted, maybe not: resent later
                return
            sent.append((r, tokens))

    # 1. killed while admitting: a client streams receipts while the daemon is killed
    d = Daemon(setup)
    streamer = threading.Thread(target=stream, args=(10_000,))
    streamer.start()
    time.sleep(1.0)
    d.kill()
    streamer.join()
    assert unanswered, "the kill should interrupt the stream"
    d = Daemon(setup)
    for r, tokens in unanswered:
        assert _send(setup.url, r)  # admitted before the kill or now
        sent.append((r, tokens))
    stream(5)
    # 2. killed while proving
    d.wait_for("batched")
    d.kill()
    d = Daemon(setup)
    stream(3)
    # 3. killed between submission and confirmation: blocks stop being mined
    client.rpc("evm_setAutomine", [False])
    d.wait_for("submitted")
    d.kill()
    client.rpc("evm_setAutomine", [True])
    client.rpc("evm_mine", [])
    d = Daemon(setup)
    end = time.monotonic() + 300
    while time.monotonic() < end:
        counts = d.health()["receipts"]
        assert counts["failed"] == 0
        if counts["settled"] == len(sent):
            break
        time.sleep(0.2)
    d.kill()
    assert counts["settled"] == len(sent) == counts["receipts"]

    # exactly once: each channel's nonce advanced by its receipts, no more; totals match
    for s in sessions:
        payer, model = s.key.payer, s.key.model_id
        mine = [(r, t) for r, t in sent if r.payer == payer and r.model_id == model]
        channel = client.channel(payer, w.operator.address, model)
        assert channel.nonce == len(mine)
        assert channel.cumulative_tokens == sum(t for _, t in mine) == s.cumulative_tokens
    events = client.batch_events(operator=w.operator.address)
    assert [e.batch_seq for e in events] == list(range(len(events)))
    assert sum(e.total_tokens for e in events) == sum(t for _, t in sent)
    rate = dict(zip(w.models, DEV_RATES, strict=True))
    owed = sum(t * rate[r.model_id] // 1000 for r, t in sent)  # exact: rates % 1000 == 0
    assert sum(c.amount for e in events for c in e.channels) == owed
    assert client.earnings(w.owner.address) == owed
    log_text = setup.db.with_suffix(".log").read_text()
    assert "batch settled" in log_text
    assert setup.env["ZKMETER_PRIVATE_KEY"].removeprefix("0x") not in log_text  # never logged
    for p in w.payers:
        mine = sum(t * rate[r.model_id] // 1000 for r, t in sent if r.payer == p.address)
        assert client.escrow_balance(p.address, w.operator.address) == ONE_OPEN - mine


def test_cli_audits_the_archived_batches(setup: Setup) -> None:
    """`zkmeter verify --archive` on what the crash test archived (runs after it)."""
    from click.testing import CliRunner

    from zkmeter.cli import main

    archive = setup.db.parent / "archive"
    if not (archive / "batch-00000000").is_dir():
        pytest.skip("needs the crash test's archive")
    args = ["verify", "--archive", str(archive), "--batch", "0", "--srs"]
    args += [str(setup.db.parent / "dev.srs"), "--rpc-url", setup.args[5]]
    args += ["--deployment", str(setup.db.parent / "deployment.json")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "ACCEPTED: batch 0" in result.output and "settled on chain" in result.output
    proof = archive / "batch-00000000" / "proof.json"
    data = json.loads(proof.read_text())
    data["public"]["aggregates"][0]["tokens"] += 1
    proof.write_text(json.dumps(data))
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1 and "REJECTED" in result.output
