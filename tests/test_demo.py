"""The worked example end to end: embedded chain and anvil, same test."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from contracts.client import ChainClient
from tests.anvil import anvil_keys, anvil_url, requires_anvil
from zkmeter.cli import main
from zkmeter.demo import run_demo

__all__ = ["anvil_url"]  # fixture

EARNED = 19_200_000_000_000_000  # 0.0192 OPEN: 9,600 tokens at 2e15 base units per 1,000


def test_demo_command_prints_the_creators_earnings() -> None:
    result = CliRunner().invoke(main, ["demo"])
    assert result.exit_code == 0, result.output
    assert "Creator earned 0.0192 OPEN (read from the chain)" in result.output
    assert "Payer's escrow: 0.9808 OPEN" in result.output


@pytest.mark.anvil
@requires_anvil
def test_demo_on_anvil(anvil_url: str) -> None:
    keys = anvil_keys(4)
    client = ChainClient.connect(anvil_url, keys[0], extra_keys=keys[1:])
    result = run_demo(say=lambda _line: None, client=client)
    assert result.earned == EARNED
    assert result.payer_escrow == 10**18 - EARNED
