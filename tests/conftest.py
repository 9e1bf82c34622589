"""Test-session set-up and the fixtures shared across test packages.

- each process of the run (pytest-xdist worker) has its own cache folder (`pytest_configure`);
- `anvil_url`: a throw-away anvil node per test module (tests.support.anvil);
- `world_module`, `world`: the contracts deployed on the embedded chain with a mock verifier,
  two models and two funded payers (tests.support.chain); `world` runs each test inside a
  snapshot that is reverted afterwards;
- the reference modules of the pure-Python arithmetic run on the python backend.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import pytest

from tests.support.anvil import running_anvil
from tests.support.chain import World, build_world
from verifier.backend import use_backend

# Set to the cache folder this test run made (not one the user chose), so that pytest-xdist's
# workers, which inherit the environment of the run that starts them, can tell the two apart.
_RUN_CACHE = "ZKMETER_TEST_RUN_CACHE"


def pytest_configure(config: pytest.Config) -> None:
    """Keep the Lagrange-basis and peer caches of the test run out of the user's home, in a
    temporary folder; each pytest-xdist worker (``make test`` runs two) gets a folder of its
    own inside it, so no two processes ever build the same cache entry at once. A
    ``ZKMETER_CACHE`` the user set is used as it is."""
    if "ZKMETER_CACHE" not in os.environ:
        os.environ["ZKMETER_CACHE"] = tempfile.mkdtemp(prefix="zkmeter-test-cache-")
        os.environ[_RUN_CACHE] = os.environ["ZKMETER_CACHE"]
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    run_cache = os.environ.get(_RUN_CACHE)
    if worker and run_cache and os.environ["ZKMETER_CACHE"] == run_cache:
        os.environ["ZKMETER_CACHE"] = os.path.join(run_cache, worker)


@pytest.fixture(scope="module")
def anvil_url() -> Iterator[str]:
    with running_anvil() as url:
        yield url


@pytest.fixture(scope="module")
def world_module() -> World:
    return build_world()


@pytest.fixture
def world(world_module: World) -> Iterator[World]:
    snap = world_module.client.snapshot()
    yield world_module
    world_module.client.revert(snap)


# Test modules of the pure-Python reference arithmetic: they run on the python backend
# whatever ZKMETER_BACKEND says, so the reference stays tested against its own oracles; the
# test_native_* modules compare the native core (zkmeter_native) against it, and every other
# module runs on the default backend (native when it is built).
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
