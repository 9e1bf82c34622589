"""A throw-away PostgreSQL cluster on loopback for the test session (`running_postgres`; the
`postgres` fixture in tests/operator_service/conftest.py), and one empty schema per test.

The server binaries come from Debian's packages (`make setup` installs them when it runs as
root and they are missing: tools/ensure-postgres.sh). The cluster is made with `initdb` in a
temporary folder and run with `pg_ctl` on 127.0.0.1 and a free port, as the `postgres` system
user when the tests run as root (PostgreSQL refuses to run as root), and is stopped and
deleted at the end. No system service is used or needed.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

#: Where Debian puts each major version's server binaries.
DEBIAN_BINARIES = "/usr/lib/postgresql/*/bin"


def postgres_bin() -> Path | None:
    """The folder holding initdb, pg_ctl and postgres (the newest Debian version first)."""
    candidates = sorted(
        glob.glob(DEBIAN_BINARIES), key=lambda p: int(Path(p).parent.name), reverse=True
    )
    for folder in candidates:
        if (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    found = shutil.which("initdb")
    return Path(found).resolve().parent if found else None


def _missing_reason() -> str:
    if postgres_bin() is None:
        return (
            "PostgreSQL server binaries (initdb, pg_ctl) not found: `make setup` installs "
            "Debian's postgresql package when run as root (tools/ensure-postgres.sh)"
        )
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root without a `postgres` user to run the server as"
    return ""


#: Skips a test (with the reason) when no PostgreSQL server can be started here.
requires_postgres = pytest.mark.skipif(bool(_missing_reason()), reason=_missing_reason() or "-")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PostgresCluster:
    """A running throw-away cluster: superuser `zkmeter`, trust authentication on loopback."""

    bin: Path
    data: Path
    port: int
    run_as: str | None
    _schemas = itertools.count(1)

    @property
    def url(self) -> str:
        return f"postgresql://zkmeter@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin / args[0]), *args[1:]]
        if self.run_as is not None:
            command = ["runuser", "-u", self.run_as, "--", *command]
        return subprocess.run(command, check=check, capture_output=True, text=True, timeout=120)

    def psql(self, sql: str) -> str:
        """Run `sql` with psql as the superuser; returns its output."""
        psql = shutil.which("psql") or str(self.bin / "psql")
        done = subprocess.run(
            [psql, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", self.url, "-c", sql],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return done.stdout

    def new_schema(self) -> str:
        """A fresh empty schema; returns a store URL whose connections use it (search_path)."""
        name = f"zkmeter_test_{os.getpid()}_{next(self._schemas)}"
        self.psql(f"CREATE SCHEMA {name}")
        return f"{self.url}?options=-csearch_path%3D{name}"

    def start(self) -> None:
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.data.parent}"
        options += " -c max_connections=200 -c shared_buffers=64MB"
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.data.parent / "server.log"),
            "-o", options, "-w", "-t", "60", "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop", check=False)

    def log(self) -> str:
        path = self.data.parent / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""


@contextmanager
def running_postgres() -> Iterator[PostgresCluster]:
    """initdb a cluster in a temporary folder, start it on a free loopback port, yield it,
    stop it (whatever happened) and delete the folder."""
    folder = postgres_bin()
    if folder is None:
        raise RuntimeError(_missing_reason())
    root = Path(tempfile.mkdtemp(prefix="zkmeter-pg-"))
    run_as = None
    if os.geteuid() == 0:
        run_as = "postgres"
        user = pwd.getpwnam(run_as)
        os.chown(root, user.pw_uid, user.pw_gid)
    cluster = PostgresCluster(folder, root / "data", _free_port(), run_as)
    try:
        cluster._run(
            "initdb", "-D", str(cluster.data), "-U", "zkmeter", "--auth=trust", "-E", "UTF8",
            "--no-sync", "--no-instructions",
        )  # fmt: skip
        cluster.start()
        yield cluster
    finally:
        cluster.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


__all__ = ["PostgresCluster", "postgres_bin", "requires_postgres", "running_postgres"]
