"""Fixtures of the operator service's tests: a throw-away PostgreSQL cluster for the session
(tests.support.postgres) and `store_url`, which runs a test once per store (SQLite, and
PostgreSQL in a fresh schema; the PostgreSQL case skips, saying why, where no server can be
started)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.postgres import PostgresCluster, requires_postgres, running_postgres

#: Parameters of `store_url`: each store the operator supports.
STORES = [pytest.param("sqlite"), pytest.param("postgresql", marks=requires_postgres)]


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    with running_postgres() as cluster:
        yield cluster


@pytest.fixture(params=STORES)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store URL for an empty store: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ops.db'}"
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    return cluster.new_schema()
