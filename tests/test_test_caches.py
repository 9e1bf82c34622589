"""The test run's cache folders (tests/conftest.py): one per pytest-xdist worker."""

from __future__ import annotations

import os

import pytest

from prover.srs import cache_dir


def test_each_worker_builds_its_caches_in_a_folder_of_its_own() -> None:
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    run_cache = os.environ.get("ZKMETER_TEST_RUN_CACHE")
    if worker is None or run_cache is None:
        pytest.skip("one process, or a ZKMETER_CACHE the user chose: nothing to separate")
    assert os.environ["ZKMETER_CACHE"] == os.path.join(run_cache, worker)
    assert str(cache_dir()) == os.path.join(run_cache, worker)
