"""anvil for the tests: the `anvil_url` fixture (tests/conftest.py) runs `running_anvil` from
zkmeter.devworld; `requires_anvil` skips a test when node_modules has no anvil."""

from __future__ import annotations

import pytest

from zkmeter.devworld import ANVIL, anvil_keys, running_anvil

requires_anvil = pytest.mark.skipif(not ANVIL.exists(), reason="needs node_modules/.bin/anvil")

__all__ = ["ANVIL", "anvil_keys", "requires_anvil", "running_anvil"]
