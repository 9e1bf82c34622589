"""Test-session set-up shared by every test module."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import pytest

from verifier.backend import use_backend


def pytest_configure(config: pytest.Config) -> None:
    """Keep the Lagrange-basis and peer caches of the test run out of the user's home."""
    if "ZKMETER_CACHE" not in os.environ:
        os.environ["ZKMETER_CACHE"] = tempfile.mkdtemp(prefix="zkmeter-test-cache-")


# Test modules of the pure-Python reference arithmetic: they run on the python backend
# whatever ZKMETER_BACKEND says, so the reference stays tested against its own oracles;
# tests/test_native_*.py compare the native core (zkmeter_native) against it, and every
# other module runs on the default backend (native when it is built).
REFERENCE_MODULES = frozenset(
    {"test_msm", "test_ntt", "test_g1", "test_srs", "test_kzg", "test_curve"}
)


@pytest.fixture(scope="module", autouse=True)
def _reference_modules_on_python_backend(request: pytest.FixtureRequest) -> Iterator[None]:
    if request.module.__name__.rsplit(".", 1)[-1] in REFERENCE_MODULES:
        with use_backend("python"):
            yield
    else:
        yield
