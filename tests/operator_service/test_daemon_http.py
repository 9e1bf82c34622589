"""The daemon's HTTP front in process (embedded chain): status codes and error bodies per
rule, malformed JSON, lists, /health and /metrics; a refusal changes nothing stored."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from channels.payer import PayerChannel
from contracts.client import ChainClient
from operator_service.config import DaemonConfig
from operator_service.http import INLINE_VERIFY_RECEIPTS, make_app
from operator_service.pipeline import Operator
from operator_service.store import ReceiptStore
from tests.support.http import serving
from zkmeter.devworld import (
    DEV_LOG_SIZE,
    deploy_dev_world,
    development_proving_key,
)


@pytest.fixture(scope="module")
def chain() -> Any:
    client = ChainClient.embedded()
    owner, operator, payer = client.accounts[1:4]
    return client, deploy_dev_world(client, [payer], owner, operator, mock_verifier=True)


@pytest.fixture
def op(chain: Any, tmp_path: Path) -> Iterator[Operator]:
    client, world = chain
    snap = client.snapshot()
    store = ReceiptStore(f"sqlite:///{tmp_path / 'op.db'}")
    yield Operator(
        client, world.operator, store, development_proving_key(), DaemonConfig(DEV_LOG_SIZE)
    )
    client.revert(snap)


class CountingExecutor(ThreadPoolExecutor):
    """A verify pool that counts the requests handed to it."""

    def __init__(self) -> None:
        super().__init__(1)
        self.calls = 0

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return super().submit(fn, *args, **kwargs)


def _run(
    op: Operator, requests: list[tuple[str, str, Any]], intake: ThreadPoolExecutor | None = None
) -> list[tuple[int, Any]]:
    async def go(intake: ThreadPoolExecutor) -> list[tuple[int, Any]]:
        async with TestClient(TestServer(make_app(op, intake))) as client:
            out = []
            for method, path, body in requests:
                if method == "POST":
                    kwargs = {"data": body} if isinstance(body, str) else {"json": body}
                    resp = await client.post(path, **kwargs)
                    out.append((resp.status, await resp.json()))
                else:
                    resp = await client.get(path)
                    text = await resp.text()
                    out.append((resp.status, text))
        intake.shutdown()
        return out

    return asyncio.run(go(intake or ThreadPoolExecutor(1)))


def _session(op: Operator, chain: Any) -> PayerChannel:
    _, world = chain
    return world.payer_channel(world.payers[0], world.models[0])


def test_admits_one_and_a_list(op: Operator, chain: Any) -> None:
    s = _session(op, chain)
    one = s.sign(800, b"\x01" * 32).to_json()
    two = [s.sign(800, b"\x02" * 32).to_json(), s.sign(1, b"\x03" * 32).to_json()]
    (a, b) = _run(op, [("POST", "/receipts", one), ("POST", "/receipts", two)])
    assert a == (202, {"state": "admitted"})
    assert b == (202, {"states": ["admitted", "admitted"]})


def test_large_lists_are_verified_off_the_event_loop_with_the_same_answers(
    op: Operator, chain: Any
) -> None:
    """A list longer than INLINE_VERIFY_RECEIPTS goes to the verify threads, a short one is
    verified on the event loop; both answer the same way, refusals included."""
    s = _session(op, chain)
    big = [s.sign(1, bytes([i % 256]) * 32).to_json() for i in range(INLINE_VERIFY_RECEIPTS + 1)]
    forged = s.sign(1, b"\x05" * 32).to_json()
    forged["signature"] = big[0]["signature"]
    refused = [s.sign(1, b"\x06" * 32).to_json() for _ in range(INLINE_VERIFY_RECEIPTS)]
    a, b = _run(op, [("POST", "/receipts", big), ("POST", "/receipts", [forged, *refused])])
    assert a == (202, {"states": ["admitted"] * (INLINE_VERIFY_RECEIPTS + 1)})
    assert (b[0], b[1]["error"], b[1]["index"], b[1]["admitted"]) == (
        403,
        "signer_not_authorized",
        0,
        0,
    )
    assert op.store.counts()["admitted"] == INLINE_VERIFY_RECEIPTS + 1


def test_the_event_loop_never_waits_for_the_chain(op: Operator, chain: Any) -> None:
    """A payer's first request needs the chain (its model's rates; with a TTL, its escrow):
    it is verified in the verify threads. Its next one is verified on the event loop. A
    receipt from a signer the daemon has not seen (a chain read of its authorisation) goes
    to the threads again, and is refused there as before."""
    s = _session(op, chain)
    pool = CountingExecutor()
    first, second = s.sign(1, b"\x07" * 32).to_json(), s.sign(1, b"\x08" * 32).to_json()
    stranger = s.sign(1, b"\x09" * 32).to_json()
    stranger["signature"] = first["signature"]  # recovers someone the payer never authorised
    answers = _run(
        op,
        [("POST", "/receipts", first), ("POST", "/receipts", second)],
        pool,
    )
    assert answers == [(202, {"state": "admitted"})] * 2 and pool.calls == 1
    pool = CountingExecutor()
    ((status, body),) = _run(op, [("POST", "/receipts", stranger)], pool)
    assert (status, body["error"], pool.calls) == (403, "signer_not_authorized", 1)


def test_malformed_json_is_400_and_changes_nothing(op: Operator) -> None:
    before = op.store.snapshot()
    ((status, body),) = _run(op, [("POST", "/receipts", "{not json")])
    assert status == 400 and body["error"] == "malformed_receipt"
    assert op.store.snapshot() == before


def test_missing_field_is_400(op: Operator, chain: Any) -> None:
    receipt = _session(op, chain).sign(800, b"\x01" * 32).to_json()
    del receipt["signature"]
    ((status, body),) = _run(op, [("POST", "/receipts", receipt)])
    assert (status, body["error"]) == (400, "malformed_receipt")
    assert "signature" in body["message"]


def test_refusal_in_a_list_names_index_and_keeps_earlier(op: Operator, chain: Any) -> None:
    s = _session(op, chain)
    first = s.sign(800, b"\x01" * 32).to_json()
    s.nonce += 1  # a gap
    gap = s.sign(800, b"\x02" * 32).to_json()
    ((status, body),) = _run(op, [("POST", "/receipts", [first, gap])])
    assert (status, body["error"], body["index"], body["admitted"]) == (409, "nonce_gap", 1, 1)
    assert "consecutive" in body["message"]
    assert op.store.counts()["admitted"] == 1


def test_health_and_metrics(op: Operator, chain: Any) -> None:
    s = _session(op, chain)
    good = s.sign(800, b"\x01" * 32).to_json()
    bad = {**good, "signature": "0x" + "00" * 65}
    results = _run(
        op,
        [
            ("POST", "/receipts", good),
            ("POST", "/receipts", bad),
            ("GET", "/health", None),
            ("GET", "/metrics", None),
        ],
    )
    assert results[1][0] == 401 and results[1][1]["error"] == "bad_signature"
    assert '"admitted": 1' in results[2][1]
    metrics = results[3][1]
    assert "zkmeter_receipts_admitted_total 1" in metrics
    assert 'zkmeter_receipts_refused_total{reason="bad_signature"} 1' in metrics
    assert "# TYPE zkmeter_receipts_admitted_total counter" in metrics


def test_refusal_codes_carry_their_http_status(op: Operator, chain: Any) -> None:
    s = _session(op, chain)
    s.set_max_rate(1)  # below the model's rate
    ((status, body),) = _run(op, [("POST", "/receipts", s.next_receipt(5, b"\x01" * 32).to_json())])
    assert (status, body["error"]) == (422, "rate_cap_too_low")


def test_cli_receipts_sign_extends_a_file(
    op: Operator, chain: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from click.testing import CliRunner

    from channels.receipts import SignedReceipt, recover_signer
    from zkmeter.cli import main

    client, world = chain
    client.deployment.save(tmp_path / "dep.json")
    monkeypatch.setenv("ZKMETER_PAYER_KEY", world.payers[0].key.hex())
    monkeypatch.setenv("ZKMETER_PAYER_STATE", str(tmp_path / "payer.db"))
    out = tmp_path / "r.json"
    base = ["receipts", "sign", "--deployment", str(tmp_path / "dep.json"), "--output", str(out)]
    base += ["--operator", world.operator.address, "--model", str(world.models[0])]
    first = CliRunner().invoke(main, [*base, "--tokens", "800", "--tokens", "5"])
    assert first.exit_code != 0 and "needs a rate cap" in first.output
    cap = ["--max-rate", "0.01"]
    assert (
        CliRunner().invoke(main, [*base, *cap, "--tokens", "800", "--tokens", "5"]).exit_code == 0
    )
    result = CliRunner().invoke(main, [*base, "--tokens", "7"])  # continues from the book
    assert result.exit_code == 0 and "nonces 3..3" in result.output
    assert "channel at 812 tokens" in result.output
    items = json.loads(out.read_text())["receipts"]
    receipts = [SignedReceipt.from_json(item) for item in items]
    assert [(r.nonce, r.cumulative_tokens) for r in receipts] == [(1, 800), (2, 805), (3, 812)]
    assert [item["tokens"] for item in items] == [800, 5, 7]
    assert {r.max_rate_per_k_tokens for r in receipts} == {10**16}
    assert {recover_signer(r, op.domain) for r in receipts} == {world.payers[0].address}
    # each is admitted by the operator, in order
    assert [op.admit(item) for item in items] == ["admitted"] * 3
    monkeypatch.delenv("ZKMETER_PAYER_KEY")
    assert CliRunner().invoke(main, [*base, "--tokens", "7"]).exit_code != 0


def test_daemon_config_toml_and_flags(tmp_path: Path) -> None:
    import click

    from zkmeter.commands.operator import load_daemon_config

    path = tmp_path / "op.toml"
    path.write_text(
        '[daemon]\nrpc_url = "http://127.0.0.1:1"\ndeployment = "d.json"\n'
        'srs = "s.srs"\nmax_rows = 64\nport = 9000\n'
    )
    settings = load_daemon_config(path, {"port": 9100, "max_age": None})
    assert (settings["max_rows"], settings["port"], "max_age" in settings) == (64, 9100, False)
    path.write_text('rpc_url = "x"\nprivate_key = "0x01"\n')
    with pytest.raises(click.ClickException, match="unknown setting"):
        load_daemon_config(path, {})
    with pytest.raises(click.ClickException, match="missing --srs"):
        load_daemon_config(None, {"rpc_url": "x", "deployment": "d"})


def test_cli_receipts_submit_posts_to_a_daemon(
    op: Operator, chain: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from click.testing import CliRunner

    from zkmeter.cli import main

    client, world = chain
    client.deployment.save(tmp_path / "dep.json")
    monkeypatch.setenv("ZKMETER_PAYER_KEY", world.payers[0].key.hex())
    out = tmp_path / "r.json"
    sign = ["receipts", "sign", "--deployment", str(tmp_path / "dep.json"), "--output", str(out)]
    sign += ["--operator", world.operator.address, "--model", str(world.models[0])]
    sign += ["--max-rate", "0.01", "--state", str(tmp_path / "payer.db")]
    assert CliRunner().invoke(main, [*sign, "--tokens", "3", "--tokens", "4"]).exit_code == 0

    forked = tmp_path / "forked.json"
    data = json.loads(out.read_text())
    forked_receipt = world.payer_channel(world.payers[0], world.models[0])
    forked_receipt.nonce = 1
    data["receipts"] = [{**forked_receipt.sign(99, b"\x09" * 32).to_json(), "tokens": 99}]
    forked.write_text(json.dumps(data))
    with ThreadPoolExecutor(1) as intake, serving(make_app(op, intake)) as url:
        first = CliRunner().invoke(main, ["receipts", "submit", str(out), "--url", url])
        again = CliRunner().invoke(main, ["receipts", "submit", str(out), "--url", url])
        fork = CliRunner().invoke(main, ["receipts", "submit", str(forked), "--url", url])
    assert first.exit_code == 0 and "2 receipt(s) admitted" in first.output
    # Sending the same receipts again (a payer retrying after a timeout) is harmless...
    assert again.exit_code == 0 and "2 receipt(s) admitted" in again.output
    # ... but another state for a used nonce (a forked channel) is refused.
    assert fork.exit_code != 0 and "nonce_reused" in fork.output
    assert op.store.counts()["admitted"] == 2
