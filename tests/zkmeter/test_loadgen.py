"""`zkmeter bench load`: loopback only unless told, pre-signed receipts, counts and latency
percentiles against a daemon's HTTP front in process (embedded chain)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from channels.receipts import SignedReceipt
from contracts.client import ChainClient
from operator_service.config import DaemonConfig
from operator_service.http import make_app
from operator_service.pipeline import Operator
from operator_service.store import ReceiptStore
from tests.support.http import serving
from zkmeter.cli import main
from zkmeter.commands.bench import load_channels
from zkmeter.devworld import (
    DEV_LOG_SIZE,
    DEV_MAX_RATE,
    deploy_dev_world,
    development_proving_key,
)
from zkmeter.loadgen import LoadError, LoadResult, check_loopback, presign, run_load


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8787", "http://localhost:1", "http://[::1]:9", "http://127.5.6.7"]
)
def test_loopback_targets_pass(url: str) -> None:
    check_loopback([url])


@pytest.mark.parametrize(
    "url", ["http://192.0.2.1:8787", "http://10.0.0.1", "http://[2001:db8::1]:80"]
)
def test_other_targets_are_refused(url: str) -> None:
    with pytest.raises(LoadError, match="not a loopback address"):
        check_loopback([url, "http://127.0.0.1:1"])


def test_cli_refuses_a_remote_target_before_sending(tmp_path: Path) -> None:
    (tmp_path / "keys.txt").write_text("0x" + "11" * 32 + "\n")
    (tmp_path / "dep.json").write_text("{}")
    args = ["bench", "load", "--url", "http://192.0.2.1:8787", "--deployment"]
    args += [str(tmp_path / "dep.json"), "--operator", "0x" + "22" * 20]
    args += ["--keys", str(tmp_path / "keys.txt")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code != 0 and "--allow-remote" in result.output


def test_percentiles_are_nearest_rank() -> None:
    result = LoadResult(latencies=[i / 1000 for i in range(1, 101)])
    assert result.percentile(50) == 0.05 and result.percentile(99) == 0.099
    assert result.percentile(100) == 0.1


def test_settle_lag_is_the_time_after_the_load() -> None:
    result = LoadResult(admitted=600, seconds=60.0, settled=600, settle_seconds=71.5)
    assert result.settle_lag == 11.5 and result.settled_per_second == 600 / 71.5
    assert "the last 11.5 s after the load stopped" in result.summary()
    assert LoadResult(seconds=60.0).settle_lag == 0.0  # settlement not measured


def test_warmup_latencies_are_reported_apart() -> None:
    """The steady state's percentiles leave out the warm-up's latencies, which are given on
    their own; without a warm-up nothing of the kind is reported."""
    result = LoadResult(latencies=[0.002] * 99 + [0.004], warmup=2.0, warmup_latencies=[0.3, 0.1])
    assert result.percentile(99) == 0.002 and result.percentile(99, warmup=True) == 0.3
    figures = result.to_json()
    assert (figures["latency_max_ms"], figures["warmup_latency_max_ms"]) == (4.0, 300.0)
    assert "warm-up   the first 2 s (not in the line above): p99 300.0 ms" in result.summary()
    assert "warmup_seconds" not in LoadResult(latencies=[0.1]).to_json()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any, Operator]]:
    """A daemon's HTTP front on a free loopback port, on the embedded chain."""
    client = ChainClient.embedded()
    owner, operator, *payers = client.accounts[1:6]
    world = deploy_dev_world(client, payers, owner, operator, mock_verifier=True)
    db = tmp_path_factory.mktemp("load") / "op.db"
    op = Operator(
        client,
        operator,
        ReceiptStore(f"sqlite:///{db}"),
        development_proving_key(),
        DaemonConfig(DEV_LOG_SIZE, escrow_ttl=5.0),
    )
    with serving(make_app(op, ThreadPoolExecutor(2))) as url:
        yield url, world, op


def test_every_presigned_receipt_is_admitted_and_timed(served: tuple[str, Any, Operator]) -> None:
    url, world, op = served
    channels = load_channels(
        [p.key for p in world.payers], world.deployment, world.operator.address,
        [world.models[0]], DEV_MAX_RATE,
    )  # fmt: skip
    signed = presign(channels, 25)
    before = op.store.counts()["admitted"]
    result = run_load([url], signed, lanes=3, batch=4, duration=60)
    assert (result.admitted, dict(result.refused)) == (75, {})
    assert len(result.latencies) == 75 and 0 < result.percentile(50) <= result.percentile(99)
    assert op.store.counts()["admitted"] == before + 75
    figures = result.to_json()
    assert figures["admitted_per_second"] > 0 and figures["latency_p99_ms"] > 0

    # A warm-up longer than the run: every request's latency is the warm-up's.
    more = run_load([url], presign(channels, 4), lanes=3, batch=4, duration=60, warmup=60)
    assert (more.admitted, more.latencies, len(more.warmup_latencies)) == (12, [], 12)


def test_a_refused_channel_stops_and_the_others_go_on(served: tuple[str, Any, Operator]) -> None:
    """Twin: one channel's third receipt is forged (its signature recovers nobody the payer
    authorised): that channel stops there, the other two finish; the unsent rest of the
    refused request is sent again."""
    url, world, _ = served
    channels = load_channels(
        [p.key for p in world.payers], world.deployment, world.operator.address,
        [world.models[1]], DEV_MAX_RATE,
    )  # fmt: skip
    signed = presign(channels, 10)
    forged = SignedReceipt.from_json(json.loads(signed[0][2]))
    signed[0][2] = json.dumps(replace(forged, cumulative_tokens=10**9).to_json())
    result = run_load([url], signed, lanes=1, batch=8, duration=60)
    assert dict(result.refused) == {"signer_not_authorized": 1}
    assert result.admitted == 2 + 10 + 10


def test_settlement_is_followed_with_its_backlog() -> None:
    """A stand-in daemon admits everything and settles each receipt 1.5 s after admitting
    it: every admitted receipt is counted settled, the last one after the load, and the
    backlog sampled during the load is what was admitted in the last 1.5 s at most."""
    import time as clock

    from aiohttp import web

    admitted_at: list[float] = []

    async def post(request: web.Request) -> web.Response:
        body = await request.json()
        admitted_at.extend([clock.monotonic()] * len(body))
        return web.json_response({"states": ["admitted"] * len(body)}, status=202)

    async def health(_: web.Request) -> web.Response:
        settled = sum(t <= clock.monotonic() - 1.5 for t in admitted_at)
        return web.json_response({"receipts": {"settled": settled}})

    app = web.Application()
    app.router.add_post("/receipts", post)
    app.router.add_get("/health", health)
    signed = [[json.dumps({"n": i, "c": c}) for i in range(200)] for c in range(4)]
    with serving(app) as url:
        result = run_load([url], signed, lanes=4, batch=5, rate=200, duration=3, settle_wait=30)
    assert result.admitted == len(admitted_at) > 0 and result.settled == result.admitted
    assert result.settle_seconds > result.seconds  # the last ones settle after the load
    assert 0 < result.backlog_max <= result.admitted
    assert "admitted and not yet settled during the load" in result.summary()
