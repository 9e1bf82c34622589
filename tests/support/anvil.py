"""A throw-away anvil node on a free loopback port (`running_anvil`; the `anvil_url` fixture in
tests/conftest.py), and its development keys."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from eth_account import Account

from tests.support import REPO_ROOT

ANVIL = REPO_ROOT / "node_modules" / ".bin" / "anvil"
ANVIL_MNEMONIC = "test test test test test test test test test test test junk"

requires_anvil = pytest.mark.skipif(not ANVIL.exists(), reason="needs node_modules/.bin/anvil")


def anvil_keys(n: int = 10) -> list[str]:
    """The private keys of anvil's default funded accounts (m/44'/60'/0'/0/i)."""
    Account.enable_unaudited_hdwallet_features()
    return [
        Account.from_mnemonic(ANVIL_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}").key.hex()
        for i in range(n)
    ]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_anvil() -> Iterator[str]:
    """Start anvil from node_modules on a free loopback port; yields its URL; stops it."""
    port = _free_port()
    proc = subprocess.Popen(
        [str(ANVIL), "--port", str(port), "--host", "127.0.0.1", "--silent"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):  # up to ~30 s on a loaded machine
            if proc.poll() is not None:
                raise RuntimeError(
                    f"anvil exited: {proc.stderr.read().decode() if proc.stderr else ''}"
                )
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError("anvil did not start listening")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
