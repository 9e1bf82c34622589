"""README "On a real node in three commands", run as written: its three shell blocks, each in
its own bash as in its own terminal (the first two keep running), from `zkmeter devnet` to the
creator's 0.0192 OPEN settled through the daemon, with nothing but the CLI; then Ctrl-C stops
both and anvil with them.

The blocks run in a scratch directory that holds only a link to the project's `.venv`, with no
ZKMETER_* variable set (a newcomer's shell), so every value comes from what the README says
and what `zkmeter devnet` writes.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support import REPO_ROOT
from tests.support.anvil import requires_anvil

pytestmark = [pytest.mark.slow, pytest.mark.anvil, requires_anvil]

SECTION = "## On a real node in three commands"


def readme_blocks() -> list[str]:
    """The ```sh blocks of the README section, in order."""
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    section = text[start : end if end > 0 else None]
    return re.findall(r"```sh\n(.*?)```", section, re.DOTALL)


def test_the_section_has_three_terminals_and_the_worked_example() -> None:
    blocks = readme_blocks()
    assert len(blocks) == 3
    assert blocks[0].strip().startswith(".venv/bin/zkmeter devnet")
    assert "zkmeter daemon" in blocks[1] and "models earnings" in blocks[2]


def _env_file(path: Path) -> dict[str, str]:
    return dict(
        line.split("=", 1)
        for line in path.read_text().splitlines()
        if line and not line.startswith("#")
    )


def _wait_for_line(proc: subprocess.Popen[str], prefix: str, timeout: float) -> str:
    assert proc.stdout is not None
    seen = []
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"ended before {prefix!r}: {''.join(seen)}")
        seen.append(line)
        if line.startswith(prefix):
            return "".join(seen)
    raise AssertionError(f"no {prefix!r} within {timeout} s")


def _wait_for_daemon(url: str, proc: subprocess.Popen[str], timeout: float) -> dict[str, object]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(f"the daemon exited: {proc.communicate()[1]}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=5) as reply:
                return dict(json.loads(reply.read()))
        except OSError:
            time.sleep(0.2)
    raise AssertionError("the daemon did not answer")


def _terminal(block: str, cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    """A block in its own bash and process group, as in its own terminal."""
    return subprocess.Popen(
        ["bash", "-e", "-c", block],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _ctrl_c(proc: subprocess.Popen[str], timeout: float = 60) -> tuple[str, str]:
    """What Ctrl-C in the block's terminal does: SIGINT to its whole process group."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(f"did not stop on Ctrl-C: {out}{err}") from None


def test_readme_devnet_section_as_written(tmp_path: Path) -> None:
    first, second, third = readme_blocks()
    (tmp_path / ".venv").symlink_to(REPO_ROOT / ".venv")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZKMETER_")}
    env["ZKMETER_CACHE"] = os.environ.get("ZKMETER_CACHE", str(tmp_path / "cache"))
    devnet = _terminal(first, tmp_path, env)
    daemon = None
    try:
        started = time.monotonic()
        printed = _wait_for_line(devnet, "Ctrl-C stops anvil", timeout=300)
        assert "devnet ready: anvil at http://127.0.0.1:" in printed
        values = _env_file(tmp_path / "devnet" / ".env")
        anvil_port = int(values["ZKMETER_RPC_URL"].rsplit(":", 1)[1])

        daemon = _terminal(second, tmp_path, env)
        health = _wait_for_daemon(values["DEV_DAEMON_URL"], daemon, timeout=300)
        assert health["operator"] == values["DEV_OPERATOR"]

        payer = subprocess.run(
            ["bash", "-e", "-c", third],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert payer.returncode == 0, payer.stdout + payer.stderr
        lines = payer.stdout.splitlines()
        assert "signed 12 receipt(s), nonces 1..12, channel at 9600 tokens" in lines
        assert "12 receipt(s) admitted" in lines
        assert f"settled: payer {values['DEV_PAYER']}, model 1 at nonce 12, 9600 tokens" in lines
        assert lines[-2:] == [
            "model 1\t9600 tokens\t0.0192 OPEN",
            f"total\t9600 tokens\t0.0192 OPEN earned by {values['DEV_CREATOR']}; 0.0192 OPEN "
            "to withdraw (zkmeter models withdraw-earnings)",
        ]
        for key in ("DEV_PAYER_KEY", "DEV_OPERATOR_KEY", "DEV_CREATOR_KEY"):
            assert values[key].removeprefix("0x") not in payer.stdout + payer.stderr
        print(f"README section: {time.monotonic() - started:.1f} s to the creator's earnings")
    finally:
        if daemon is not None:
            _, daemon_log = _ctrl_c(daemon)
        out, err = _ctrl_c(devnet)
    assert devnet.returncode == 0, err
    assert out.rstrip().endswith(
        "stopped anvil; its chain is gone (run `zkmeter devnet` again for a fresh one)"
    )
    assert daemon is not None and "batch settled" in daemon_log
    with pytest.raises(ConnectionRefusedError):  # anvil stopped with the devnet
        socket.create_connection(("127.0.0.1", anvil_port), timeout=5).close()
