"""`zkmeter ui` and `zkmeter demo --ui` as commands: real processes, real ports, Ctrl-C."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.support.chain import build_world
from tests.support.ui_server import start_zkmeter
from zkmeter.cli import main


def fetch(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_demo_ui_runs_the_worked_example_then_serves_it() -> None:
    server = start_zkmeter("demo", "--ui", "--port", "0")
    try:
        assert "9. Creator earned 0.0192 OPEN (read from the chain)" in "".join(server.lines)
        assert server.url.startswith("http://127.0.0.1:")
        status, html = fetch(server.url + "models/1")
        assert status == 200
        assert "0.002 OPEN</a> per 1,000 tokens" in html
        assert "0.0192 OPEN</a>" in html
    finally:
        code, output = server.stop()
    assert code == 0, output
    assert "dashboard stopped" in output and "Traceback" not in output


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_ui_starts_while_the_node_is_down_and_says_so(tmp_path: Path) -> None:
    deployment = tmp_path / "deployment.json"
    build_world().deployment.save(deployment)
    node = f"http://127.0.0.1:{_closed_port()}"
    server = start_zkmeter("ui", "--rpc-url", node, "--deployment", str(deployment), "--port", "0")
    try:
        assert "not indexed yet: cannot reach the node" in "".join(server.lines)
        status, html = fetch(server.url)
        assert status == 503 and "The node is unreachable" in html and node in html
    finally:
        code, output = server.stop()
    assert code == 0, output


def test_ui_refuses_a_bad_deployment_file(tmp_path: Path) -> None:
    bad = tmp_path / "deployment.json"
    bad.write_text('{"chain_id": 1}')
    result = CliRunner().invoke(
        main, ["ui", "--rpc-url", "http://127.0.0.1:1", "--deployment", str(bad)]
    )
    assert result.exit_code != 0
    assert "cannot read deployment file" in result.output and "deployment.json" in result.output
    missing = CliRunner().invoke(
        main, ["ui", "--rpc-url", "http://127.0.0.1:1", "--deployment", str(tmp_path / "no")]
    )
    assert missing.exit_code == 2 and "does not exist" in missing.output


def test_ui_warns_when_not_on_loopback(capsys: pytest.CaptureFixture[str]) -> None:
    from zkmeter.ui.cli import _warn_if_public
    from zkmeter.ui.server import is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.0.2.1")
    _warn_if_public("127.0.0.1")
    assert capsys.readouterr().err == ""
    _warn_if_public("0.0.0.0")
    assert "reachable from other machines" in capsys.readouterr().err
