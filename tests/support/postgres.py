"""PostgreSQL for the tests: the throw-away cluster of zkmeter.devcluster (`initdb` in a
temporary folder, `pg_ctl` on 127.0.0.1 and a free port, as the `postgres` user when run as
root; stopped and deleted at the end), started once per test session by the `postgres`
fixture (tests/operator_service/conftest.py), and a skip mark saying why when no server can
be started here (`make setup` installs Debian's package when run as root:
tools/ensure-postgres.sh)."""

from __future__ import annotations

import pytest

from zkmeter.devcluster import PostgresCluster, postgres_bin, postgres_missing, running_postgres

#: Skips a test (with the reason) when no PostgreSQL server can be started here.
requires_postgres = pytest.mark.skipif(
    bool(postgres_missing()), reason=postgres_missing() or "PostgreSQL available"
)

__all__ = ["PostgresCluster", "postgres_bin", "requires_postgres", "running_postgres"]
