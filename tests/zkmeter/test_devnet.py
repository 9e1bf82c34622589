"""`zkmeter devnet`: its own anvil only, a directory it owns, a `.env` of public test keys
only, a clean stop on Ctrl-C; and the token and earnings commands on the chain it deploys."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from click.testing import CliRunner
from eth_account import Account

from circuits.public_inputs import Aggregate
from contracts.client import ChainClient, Deployment, SignedState
from tests.support import REPO_ROOT
from tests.support.anvil import anvil_keys, requires_anvil, running_anvil
from zkmeter.cli import main
from zkmeter.commands.options import format_ether
from zkmeter.devnet import (
    MARKER,
    DevnetError,
    dev_keys,
    ensure_own_anvil,
    env_text,
    prepare_directory,
    write_env,
)
from zkmeter.devworld import (
    ANVIL_MNEMONIC,
    DEV_RATES,
    AnvilError,
    AnvilProcess,
    deploy_dev_world,
    free_port,
    port_is_free,
)


def test_a_devnet_directory_is_cleared_only_if_it_is_a_devnets(tmp_path: Path) -> None:
    fresh = tmp_path / "new"
    assert prepare_directory(fresh) == [] and fresh.is_dir()
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(DevnetError, match="not empty and was not made by zkmeter devnet"):
        prepare_directory(foreign)
    assert (foreign / "notes.txt").read_text() == "keep me"
    (fresh / MARKER).write_text("devnet")
    (fresh / "payer.db").write_text("old chain's channel book")
    (fresh / "archive").mkdir()
    (fresh / "archive" / "batch-00000000").mkdir()
    (fresh / "notes.txt").write_text("keep me too")
    assert sorted(prepare_directory(fresh)) == sorted([MARKER, "payer.db", "archive"])
    assert [p.name for p in fresh.iterdir()] == ["notes.txt"]


def test_ether_is_shown_to_four_places_rounded_down() -> None:
    """ETH for gas in `token balance` and the devnet's summary: short, never rounded up, exact
    at any size (a node may report 2^256 - 1 wei)."""
    assert format_ether(9_999_987_566_866_136_996_417) == "9999.9875"
    assert format_ether(10**22) == "10000" and format_ether(0) == "0"
    assert format_ether(99_999 * 10**13) == "0.9999"  # 0.99999 ETH: not "1"
    assert format_ether(10**14 - 1) == "0"
    assert format_ether(2**256 - 1).endswith(".584")


def _fake_net(keys: list[str], tmp_path: Path) -> Any:
    accounts = {
        r: Account.from_key(k)
        for r, k in zip(("deployer", "creator", "payer", "operator"), keys, strict=True)
    }
    return SimpleNamespace(
        anvil=SimpleNamespace(url="http://127.0.0.1:8545"),
        client=SimpleNamespace(chain_id=31337),
        accounts=accounts,
        keys=dict(zip(accounts, keys, strict=True)),
        model_id=1,
        directory=tmp_path,
        daemon_url="http://127.0.0.1:8787",
        path=lambda name: (tmp_path / name).resolve(),
    )


def test_env_holds_only_anvils_public_keys_and_says_so(tmp_path: Path) -> None:
    keys = dev_keys(4)
    net = _fake_net(keys, tmp_path)
    path = write_env(net)
    text = path.read_text()
    assert text == env_text(net)
    assert "PUBLIC TEST KEYS" in text and ANVIL_MNEMONIC in text
    assert "never use these keys on any other chain" in text
    assert os.stat(path).st_mode & 0o777 == 0o600
    for key in keys:
        assert text.count(key) == 1
    values = dict(line.split("=", 1) for line in text.splitlines() if not line.startswith("#"))
    assert values["ZKMETER_RPC_URL"] == "http://127.0.0.1:8545"
    assert values["DEV_PAYER"] == Account.from_key(keys[2]).address
    assert "ZKMETER_PRIVATE_KEY" not in values  # which role signs is chosen per command


def test_env_refuses_any_other_key(tmp_path: Path) -> None:
    """Twin: a key that is not one of anvil's public keys is never written."""
    keys = [*dev_keys(3), "0x" + Account.create().key.hex()]
    with pytest.raises(DevnetError, match="not anvil's public test keys"):
        write_env(_fake_net(keys, tmp_path))
    assert not (tmp_path / ".env").exists()


@pytest.mark.anvil
@requires_anvil
def test_devnet_runs_only_against_its_own_anvil(tmp_path: Path) -> None:
    with running_anvil(chain_id=1) as foreign_url:
        foreign_port = int(foreign_url.rsplit(":", 1)[1])
        foreign = ChainClient.connect(foreign_url)
        # A port where another node listens: refused before anything is deployed.
        result = CliRunner().invoke(
            main, ["devnet", "--dir", str(tmp_path / "d"), "--port", str(foreign_port)]
        )
        assert result.exit_code == 1, result.output
        assert f"port {foreign_port} on 127.0.0.1 (anvil) is in use" in result.output
        assert foreign.w3.eth.block_number == 0
        # Our anvil is not even started on that port (the other node would answer instead).
        with pytest.raises(AnvilError, match=f"port {foreign_port} on 127.0.0.1 is in use"):
            AnvilProcess(foreign_port).start()
        # A node that is not the anvil we started (another URL; another chain id).
        ours = AnvilProcess(free_port())
        with pytest.raises(DevnetError, match="runs only against the anvil it starts"):
            ensure_own_anvil(foreign, ours)
        ours.port = foreign_port
        with pytest.raises(DevnetError, match="is chain id 1, not the devnet's anvil"):
            ensure_own_anvil(foreign, ours)
        assert foreign.w3.eth.block_number == 0


def _wait_for_line(proc: subprocess.Popen[str], prefix: str, timeout: float) -> list[str]:
    assert proc.stdout is not None
    lines: list[str] = []
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"devnet ended before {prefix!r}: {lines}")
        lines.append(line)
        if line.startswith(prefix):
            return lines
    raise AssertionError(f"no {prefix!r} within {timeout} s: {lines}")


@pytest.mark.anvil
@requires_anvil
def test_devnet_deploys_funds_writes_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    port, daemon_port = free_port(), free_port()
    directory = tmp_path / "devnet"
    args = [
        "devnet",
        "--dir",
        str(directory),
        "--port",
        str(port),
        "--daemon-port",
        str(daemon_port),
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "zkmeter.cli", *args],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "ZKMETER_RPC_URL": "http://example.invalid:8545"},
    )
    try:
        lines = _wait_for_line(proc, "Ctrl-C stops anvil", timeout=180)
        assert lines[0].startswith(
            f"devnet ready: anvil at http://127.0.0.1:{port} (chain id 31337"
        )
        output = "".join(lines)
        for key in dev_keys(4):
            assert key.removeprefix("0x") not in output  # keys only in the .env
        dep = Deployment.load(directory / "deployment.json")
        keys = dev_keys(4)
        env = dict(
            line.split("=", 1)
            for line in (directory / ".env").read_text().splitlines()
            if line and not line.startswith("#")
        )
        assert env["ZKMETER_RPC_URL"] == f"http://127.0.0.1:{port}"
        assert env["DEV_DAEMON_URL"] == f"http://127.0.0.1:{daemon_port}"
        assert [env[f"DEV_{r}_KEY"] for r in ("DEPLOYER", "CREATOR", "PAYER", "OPERATOR")] == keys
        assert f"port = {daemon_port}" in (directory / "daemon.toml").read_text()
        client = ChainClient.connect(env["ZKMETER_RPC_URL"])
        client.use(dep)
        assert set(dep.verifiers) == {8}
        model = client.model(int(env["DEV_MODEL"]))
        assert (model.owner, model.current_rate) == (env["DEV_CREATOR"], DEV_RATES[0])
        for role in ("CREATOR", "PAYER", "OPERATOR"):
            assert client.token_balance(env[f"DEV_{role}"]) == 10 * 10**18
            assert client.eth_balance(env[f"DEV_{role}"]) > 10**21
        # The token commands on it: the deployer mints, anyone else is refused.
        common = [
            "--rpc-url",
            env["ZKMETER_RPC_URL"],
            "--deployment",
            str(directory / "deployment.json"),
        ]
        runner = CliRunner()
        r = runner.invoke(
            main,
            ["token", "mint", *common, env["DEV_PAYER"], "2.5"],
            env={"ZKMETER_PRIVATE_KEY": env["DEV_DEPLOYER_KEY"]},
        )
        assert r.exit_code == 0, r.output
        assert f"minted 2.5 OPEN to {env['DEV_PAYER']}; it holds 12.5 OPEN" in r.output
        r = runner.invoke(
            main,
            ["token", "mint", *common, env["DEV_PAYER"], "1"],
            env={"ZKMETER_PRIVATE_KEY": env["DEV_PAYER_KEY"]},
        )
        assert r.exit_code == 1 and isinstance(r.exception, SystemExit)
        assert f"only the token's owner {env['DEV_DEPLOYER']} can mint" in r.output
        r = runner.invoke(main, ["token", "balance", *common, env["DEV_PAYER"], env["DEV_CREATOR"]])
        assert r.exit_code == 0, r.output
        assert r.output.splitlines() == [
            f"{env['DEV_PAYER']}: 12.5 OPEN, 10000 ETH",
            f"{env['DEV_CREATOR']}: 10 OPEN, {r.output.splitlines()[1].split(', ')[1]}",
        ]
        assert r.output.splitlines()[1].endswith(" ETH")
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGINT)  # what Ctrl-C in its terminal does
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "stopped anvil" in out
    assert "ZKMETER_RPC_URL is ignored" in err
    with pytest.raises(ConnectionRefusedError):  # anvil is gone
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    assert port_is_free(port)


@pytest.mark.anvil
@requires_anvil
def test_earnings_per_model_and_in_total(anvil_url: str, tmp_path: Path) -> None:
    """Two models of one creator paid in one batch: each model's tokens and OPEN, the total,
    and what is left to withdraw after a withdrawal."""
    keys = anvil_keys(4)
    client = ChainClient.connect(anvil_url, keys[0], extra_keys=keys[1:])
    _, creator, operator, payer = client.accounts
    world = deploy_dev_world(client, [payer], creator, operator, mock_verifier=True)
    calls = {world.models[0]: 9_600, world.models[1]: 1_000}
    aggregates, states = [], []
    for model_id, tokens in calls.items():
        channel = world.payer_channel(payer, model_id)
        receipts = [channel.sign(tokens // 4, bytes(32)) for _ in range(4)]
        aggregates.append(Aggregate(int(payer.address, 16), model_id, 1, 4, tokens))
        states.append(SignedState.of(receipts[-1]))
    client.settle(operator, 0, 8, aggregates, states, b"proof")
    path = tmp_path / "deployment.json"
    world.deployment.save(path)
    common = ["--rpc-url", anvil_url, "--deployment", str(path)]
    runner = CliRunner()
    r = runner.invoke(main, ["models", "earnings", *common, creator.address])
    assert r.exit_code == 0, r.output
    assert [t * rate // 1000 for t, rate in zip(calls.values(), DEV_RATES, strict=True)] == [
        19_200_000_000_000_000,  # 0.0192 OPEN: the worked example
        3_000_000_000_000_000,
    ]
    tail = "to withdraw (zkmeter models withdraw-earnings)"
    assert r.output.splitlines() == [
        "model 1\t9600 tokens\t0.0192 OPEN",
        "model 2\t1000 tokens\t0.003 OPEN",
        f"total\t10600 tokens\t0.0222 OPEN earned by {creator.address}; 0.0222 OPEN {tail}",
    ]
    as_creator = {"ZKMETER_PRIVATE_KEY": keys[1]}
    r = runner.invoke(main, ["models", "withdraw-earnings", *common], env=as_creator)
    assert r.exit_code == 0 and "withdrew 0.0222" in r.output, r.output
    r = runner.invoke(main, ["models", "earnings", *common], env=as_creator)  # OWNER: the key's
    assert r.output.splitlines()[-1] == (
        f"total\t10600 tokens\t0.0222 OPEN earned by {creator.address}; 0 OPEN {tail}"
    )
    r = runner.invoke(main, ["models", "earnings", *common, payer.address])
    assert r.output.splitlines() == [
        f"{payer.address} owns no model and was paid nothing",
        f"total\t0 tokens\t0 OPEN earned by {payer.address}; 0 OPEN {tail}",
    ]
    r = runner.invoke(main, ["models", "earnings", *common], env={"ZKMETER_PRIVATE_KEY": None})
    assert r.exit_code == 2 and "give OWNER, or a key" in r.output
