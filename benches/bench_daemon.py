"""Daemon throughput in one process on the embedded chain: receipts admitted per second over
loopback HTTP (the HTTP front in a thread, the load generator of `zkmeter bench load` with
pre-signed receipts), and receipts settled per second end to end (admit, batch, prove in a
forked process, Python-verify, settle through the real UsageVerifier8).

Chain reads during admission go to the in-process py-evm chain here (escrow reads every
second per payer); benches/bench_load.py measures the daemon's processes against anvil, on
SQLite and PostgreSQL.

    pytest benches/bench_daemon.py -k small --benchmark-disable   # quick check
    pytest benches/bench_daemon.py --benchmark-only               # the lead's measurement
"""

from __future__ import annotations

import asyncio
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from contracts.client import ChainClient
from operator_service.config import DaemonConfig
from operator_service.http import make_app
from operator_service.pipeline import Operator
from operator_service.store import ReceiptStore
from zkmeter.commands.bench import load_channels
from zkmeter.devworld import (
    DEV_LOG_SIZE,
    DEV_MAX_RATE,
    deploy_dev_world,
    development_proving_key,
)
from zkmeter.loadgen import presign, run_load


def _operator(payers: int, max_rows: int | None = None) -> tuple[Operator, Any]:
    client = ChainClient.embedded()
    owner, operator = client.accounts[1:3]
    keys = client.accounts[3 : 3 + payers]
    world = deploy_dev_world(client, keys, owner, operator)
    db = Path(tempfile.mkdtemp(prefix="bench-daemon-")) / "op.db"
    config = DaemonConfig(DEV_LOG_SIZE, max_rows=max_rows, escrow_ttl=1.0)
    return Operator(
        client, operator, ReceiptStore(f"sqlite:///{db}"), development_proving_key(), config
    ), world


def _serve_in_thread(op: Operator) -> tuple[str, Any]:
    """Start the HTTP front on a free loopback port in a thread; returns (url, stop)."""
    loop = asyncio.new_event_loop()
    intake = ThreadPoolExecutor(1)
    runner = web.AppRunner(make_app(op, intake))
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = runner.addresses[0][1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    def stop() -> None:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        intake.shutdown()

    return f"http://127.0.0.1:{port}", stop


@pytest.mark.parametrize(
    ("payers", "receipts"), [pytest.param(2, 10, id="small"), pytest.param(6, 300, id="large")]
)
def test_admission_receipts_per_second(benchmark: Any, payers: int, receipts: int) -> None:
    op, world = _operator(payers)
    url, stop = _serve_in_thread(op)
    channels = load_channels(
        [p.key for p in world.payers],
        world.deployment,
        world.operator.address,
        [world.models[0]],
        DEV_MAX_RATE,
    )
    signed = presign(channels, receipts)  # before the clock: the generator must not limit
    try:

        def play() -> dict[str, Any]:
            return run_load([url], signed, lanes=payers, batch=16, duration=600).to_json()

        result = benchmark.pedantic(play, rounds=1, iterations=1)
    finally:
        stop()
    assert result["admitted"] == payers * receipts and not result["refused"]
    benchmark.extra_info.update(result)
    print(f"\nadmission: {result['admitted_per_second']:.1f} receipts/s ({payers} payers)")


@pytest.mark.parametrize("receipts", [pytest.param(16, id="small"), pytest.param(512, id="large")])
def test_settled_receipts_per_second(benchmark: Any, receipts: int) -> None:
    op, world = _operator(2, max_rows=1 << DEV_LOG_SIZE)
    sessions = [world.payer_channel(p, m) for p in world.payers for m in world.models]

    def run() -> None:
        for i in range(receipts):
            op.admit(sessions[i % len(sessions)].sign(100, i.to_bytes(32, "big")).to_json())
        op.drain()

    benchmark.pedantic(run, rounds=1, iterations=1)
    assert op.store.counts()["settled"] == receipts
    seconds = benchmark.stats.stats.max if benchmark.stats else 0.0
    if seconds:
        benchmark.extra_info["receipts_per_second"] = receipts / seconds
        print(f"\nend to end: {receipts / seconds:.1f} receipts settled/s")
