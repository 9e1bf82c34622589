"""A development operator on this machine: anvil, the contracts with a development verifier,
funded payers, a throw-away PostgreSQL cluster, and `zkmeter daemon` processes. INSECURE keys
and SRS: for the operator's crash tests (tests/operator_service/test_daemon_anvil.py) and load
benchmarks (benches/bench_load.py) only.

- `running_anvil()`: anvil from node_modules on a free loopback port;
- `running_postgres()`: `initdb` in a temporary folder, `pg_ctl start` on 127.0.0.1 and a free
  port (as the `postgres` system user when run as root: PostgreSQL refuses to run as root),
  stopped and deleted at the end; binaries from Debian's packages (tools/ensure-postgres.sh);
- `deploy_operator_world(...)`: the contracts with `UsageVerifier<k>` for the development key,
  two models, payers minted and deposited for the operator, and the files a daemon needs;
- `OperatorWorld.start_daemon(...)`: `zkmeter daemon` as a subprocess (its own process group).
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount

from contracts.client import ChainClient, Deployment
from zkmeter.devworld import (
    DEV_MAX_RATE,
    DEV_RATE_NOTICE_PERIOD,
    DEV_RATES,
    DEV_THAWING_PERIOD,
    ONE_OPEN,
    development_proving_key,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
ANVIL = REPO_ROOT / "node_modules" / ".bin" / "anvil"
ANVIL_MNEMONIC = "test test test test test test test test test test test junk"
#: Where Debian puts each major version's PostgreSQL server binaries.
DEBIAN_POSTGRES = "/usr/lib/postgresql/*/bin"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on port {port} within {timeout:g} s")


def anvil_keys(n: int = 10) -> list[str]:
    """The private keys of anvil's default funded accounts (m/44'/60'/0'/0/i)."""
    Account.enable_unaudited_hdwallet_features()
    return [
        Account.from_mnemonic(ANVIL_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}").key.hex()
        for i in range(n)
    ]


@contextmanager
def running_anvil(block_time: float | None = None) -> Iterator[str]:
    """anvil on a free loopback port (automine unless `block_time`); yields its URL."""
    port = free_port()
    command = [str(ANVIL), "--port", str(port), "--host", "127.0.0.1", "--silent"]
    command += ["--gas-limit", "100000000"]
    if block_time is not None:
        command += ["--block-time", str(block_time)]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_port(port, proc, "anvil", 30)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- PostgreSQL ------------------------------------------------------------------------------


def postgres_bin() -> Path | None:
    """The folder holding initdb, pg_ctl and postgres (the newest Debian version first)."""
    for folder in sorted(
        glob.glob(DEBIAN_POSTGRES), key=lambda p: int(Path(p).parent.name), reverse=True
    ):
        if (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    found = shutil.which("initdb")
    return Path(found).resolve().parent if found else None


def postgres_missing() -> str:
    """Why no PostgreSQL cluster can be started here ('' if one can)."""
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


@dataclass
class PostgresCluster:
    """A running throw-away cluster: superuser `zkmeter`, trust authentication, loopback."""

    bin: Path
    data: Path
    port: int
    run_as: str | None
    _schemas: Iterator[int] = field(default_factory=lambda: itertools.count(1))

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
        name = f"zkmeter_{os.getpid()}_{next(self._schemas)}"
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


@contextmanager
def running_postgres() -> Iterator[PostgresCluster]:
    """initdb a cluster in a temporary folder, start it on a free loopback port, yield it,
    stop it (whatever happened) and delete the folder."""
    folder = postgres_bin()
    if folder is None:
        raise RuntimeError(postgres_missing())
    root = Path(tempfile.mkdtemp(prefix="zkmeter-pg-"))
    run_as = None
    if os.geteuid() == 0:
        run_as = "postgres"
        user = pwd.getpwnam(run_as)
        os.chown(root, user.pw_uid, user.pw_gid)
    cluster = PostgresCluster(folder, root / "data", free_port(), run_as)
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


# -- the operator's world and daemons ------------------------------------------------------------


def dev_payer_keys(n: int, seed: int = 1) -> list[bytes]:
    """`n` deterministic INSECURE payer keys."""
    return [(seed * 1_000_003 + i + 1).to_bytes(32, "big") for i in range(n)]


@dataclass
class OperatorWorld:
    """Contracts on a node, funded payers, and the files `zkmeter daemon` needs."""

    rpc_url: str
    client: ChainClient
    deployment: Deployment
    operator_key: str
    owner: LocalAccount
    payers: list[LocalAccount]
    models: list[int]
    folder: Path
    log_size: int

    @property
    def operator(self) -> str:
        return str(Account.from_key(self.operator_key).address)

    def daemon_args(self, db: str, port: int, *extra: str) -> list[str]:
        return [
            sys.executable, "-m", "zkmeter.cli", "daemon",
            "--rpc-url", self.rpc_url, "--deployment", str(self.folder / "deployment.json"),
            "--srs", str(self.folder / "dev.srs"), "--db", db, "--port", str(port),
            "--log-size", str(self.log_size), *extra,
        ]  # fmt: skip

    def start_daemon(
        self, db: str, port: int, *extra: str, log: Path | None = None, wait: bool = True
    ) -> subprocess.Popen[bytes]:
        """`zkmeter daemon` with this world's files, in a new process group (so a test can
        SIGKILL it with every process it forked). Waits for /health unless told not to."""
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "ZKMETER_PRIVATE_KEY": self.operator_key}
        out = open(log or self.folder / "daemon.log", "ab")  # noqa: SIM115 - the child owns it
        proc = subprocess.Popen(
            self.daemon_args(db, port, *extra),
            env=env,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
        out.close()
        if wait and "intake" in _roles(extra):
            wait_healthy(f"http://127.0.0.1:{port}", proc)
        return proc


def _roles(extra: Sequence[str]) -> str:
    args = list(extra)
    return args[args.index("--roles") + 1] if "--roles" in args else "intake,batcher,prover"


def health(url: str, timeout: float = 10) -> dict[str, Any]:
    with urllib.request.urlopen(url.rstrip("/") + "/health", timeout=timeout) as reply:
        return dict(json.loads(reply.read()))


def wait_healthy(
    url: str, proc: subprocess.Popen[bytes] | None = None, timeout: float = 120
) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the daemon exited with code {proc.returncode}")
        try:
            health(url, timeout=2)
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not become healthy within {timeout:g} s")


def kill_group(proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    """Signal a daemon started by `start_daemon` and every process it forked; wait for it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    proc.wait()


def deploy_operator_world(
    rpc_url: str, folder: Path, payers: int, log_size: int = 8, deposit: int = 10 * ONE_OPEN
) -> OperatorWorld:
    """Deploy on the anvil at `rpc_url` with `UsageVerifier<log_size>` for the development
    key, register two models at `DEV_RATES`, fund `payers` fresh payers (ether by
    `anvil_setBalance`, OPEN minted) and deposit `deposit` each for the operator; write
    `deployment.json` and `dev.srs` into `folder`."""
    keys = anvil_keys(3)
    client = ChainClient.connect(rpc_url, keys[0], extra_keys=keys[1:])
    _deployer, owner, operator = client.accounts
    pk = development_proving_key(log_size)
    verifier = client.deploy_usage_verifier(pk.vk)
    deployment = client.deploy_all(DEV_RATE_NOTICE_PERIOD, DEV_THAWING_PERIOD, [verifier])
    models = [
        client.register_model(bytes([i + 1]) * 32, rate, f"ipfs://m{i}", sender=owner)
        for i, rate in enumerate(DEV_RATES)
    ]
    accounts = [client.add_account(k) for k in dev_payer_keys(payers)]
    for account in accounts:
        client.rpc("anvil_setBalance", [account.address, hex(10**21)])
        client.mint(account.address, deposit)
        client.approve_and_deposit(operator.address, deposit, sender=account)
    folder.mkdir(parents=True, exist_ok=True)
    deployment.save(folder / "deployment.json")
    pk.srs.save(folder / "dev.srs")
    return OperatorWorld(
        rpc_url, client, deployment, keys[2], owner, accounts, models, folder, log_size
    )


__all__ = [
    "ANVIL",
    "DEV_MAX_RATE",
    "OperatorWorld",
    "PostgresCluster",
    "anvil_keys",
    "deploy_operator_world",
    "dev_payer_keys",
    "free_port",
    "health",
    "kill_group",
    "postgres_bin",
    "postgres_missing",
    "running_anvil",
    "running_postgres",
    "wait_healthy",
]
