"""Test-session set-up shared by every test module."""

from __future__ import annotations

import os
import tempfile

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """Keep the Lagrange-basis and peer caches of the test run out of the user's home."""
    if "ZKMETER_CACHE" not in os.environ:
        os.environ["ZKMETER_CACHE"] = tempfile.mkdtemp(prefix="zkmeter-test-cache-")
