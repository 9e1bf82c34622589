"""A local Ethereum node with zkmeter deployed, for trying everything on a real node
(`zkmeter devnet`).

`start_devnet` starts anvil from the project's own node_modules on a loopback port, checks that
the node answering is that anvil (`ensure_own_anvil`), deploys the contracts with the real
UsageVerifier for the chosen batch size and a development SRS (zkmeter.devworld), funds the
development accounts (`ROLES`: anvil's default accounts 0-3) with OPEN (anvil gives each 10,000
ETH), registers the worked example's model (0.002 OPEN per 1,000 tokens, owned by the creator),
and writes into its directory the deployment, the SRS, a daemon configuration and a `.env` with
the RPC URL and the development keys.

INSECURE by design: the keys are anvil's public development keys (everyone knows them) and the
SRS's trapdoor was known to this process. Nothing here ever talks to another node: there is no
URL to give, only the anvil this process starts.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from eth_account.signers.local import LocalAccount

from contracts.client import ANVIL_CHAIN_ID, ChainClient, ChainError, Deployment
from zkmeter.devworld import (
    ANVIL,
    ANVIL_MNEMONIC,
    DEV_LOG_SIZE,
    DEV_RATES,
    LOOPBACK,
    ONE_OPEN,
    AnvilError,
    AnvilProcess,
    anvil_keys,
    deploy_dev_contracts,
    development_srs,
    free_port,
    port_is_free,
)

#: The development accounts: anvil's default accounts 0, 1, 2, 3 in this order.
ROLES = ("deployer", "creator", "payer", "operator")
#: OPEN minted to each of the creator, the payer and the operator.
DEV_OPEN = 10 * ONE_OPEN
#: The worked example's model: 0.002 OPEN per 1,000 tokens (DESIGN.md).
WORKED_EXAMPLE_RATE = DEV_RATES[0]
WORKED_EXAMPLE_MODEL_HASH = hashlib.sha256(b"zkmeter worked example model").digest()
WORKED_EXAMPLE_METADATA = "ipfs://zkmeter-worked-example"

DEFAULT_PORT = 8545
#: The daemon's default HTTP port (zkmeter.commands.payer.DEFAULT_PORT).
DEFAULT_DAEMON_PORT = 8787
#: Seconds the devnet's daemon waits before cutting a partial batch.
DEVNET_MAX_AGE = 2.0

#: The file that marks a directory as a devnet's: only such a directory is cleared on start.
MARKER = ".zkmeter-devnet"
#: What a devnet writes or leaves in its directory; removed when the next devnet starts there
#: (its chain is new: a previous chain's channel book, receipts or operator store would not fit).
MANAGED = (
    MARKER,
    "deployment.json",
    ".env",
    "daemon.toml",
    "dev.srs",
    "anvil.log",
    "payer.db",
    "payer.db-wal",
    "payer.db-shm",
    "payer.db-journal",
    "operator.db",
    "operator.db-wal",
    "operator.db-shm",
    "operator.db-journal",
    "receipts.json",
    "receipts.json.tmp",
    "archive",
)


class DevnetError(Exception):
    """The devnet cannot start, or refuses to: one sentence saying why."""


def dev_keys(n: int = len(ROLES)) -> list[str]:
    """The 0x-prefixed private keys of anvil's first `n` default accounts: PUBLIC test keys
    (the development accounts are the first `len(ROLES)`)."""
    return ["0x" + key.removeprefix("0x") for key in anvil_keys(n)]


def ensure_own_anvil(client: ChainClient, anvil: AnvilProcess) -> None:
    """Refuse any node but `anvil`, the one this process started: the client must talk to its
    loopback URL, the node there must say it is anvil with chain id 31337, and our anvil must
    still be running after it answered (had it failed to bind its port, another process would
    have answered). DevnetError otherwise."""
    host = urlparse(client.endpoint).hostname
    if client.endpoint != anvil.url or host != LOOPBACK:
        raise DevnetError(
            f"devnet runs only against the anvil it starts ({anvil.url}), not {client.endpoint}"
        )
    version = client.client_version()
    if not version.lower().startswith("anvil/"):
        raise DevnetError(f"the node at {anvil.url} is {version!r}, not the anvil devnet started")
    if client.chain_id != ANVIL_CHAIN_ID:
        raise DevnetError(
            f"the node at {anvil.url} is chain id {client.chain_id}, not the devnet's anvil "
            f"(chain id {ANVIL_CHAIN_ID})"
        )
    if not anvil.alive:
        raise DevnetError(
            f"the anvil devnet started exited, yet something answers at {anvil.url}: devnet "
            "runs only against its own anvil"
        )


def prepare_directory(directory: Path) -> list[str]:
    """Create `directory`, or clear a previous devnet's files (`MANAGED`) from it; returns the
    names removed. A non-empty directory without the devnet's `MARKER` is refused."""
    if directory.exists() and not directory.is_dir():
        raise DevnetError(f"{directory} is a file, not a directory")
    directory.mkdir(parents=True, exist_ok=True)
    if not any(directory.iterdir()):
        return []
    if not (directory / MARKER).is_file():
        raise DevnetError(
            f"{directory} is not empty and was not made by zkmeter devnet: choose another --dir"
        )
    removed = []
    for name in MANAGED:
        path = directory / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
        else:
            continue
        removed.append(name)
    return removed


def choose_port(wanted: int | None, default: int, what: str, taken: set[int]) -> int:
    """`wanted` if free (DevnetError if not), else `default` if free, else a free port."""
    if wanted is not None:
        if wanted in taken or not port_is_free(wanted):
            raise DevnetError(
                f"port {wanted} on {LOOPBACK} ({what}) is in use: choose another, or leave the "
                "option out for a free one (devnet runs only against the anvil it starts)"
            )
        return wanted
    if default not in taken and port_is_free(default):
        return default
    port = free_port()
    while port in taken:
        port = free_port()
    return port


@dataclass
class Devnet:
    """A running devnet: its anvil, a client with the development accounts, what it deployed
    and the files it wrote."""

    anvil: AnvilProcess
    client: ChainClient
    deployment: Deployment
    accounts: dict[str, LocalAccount]
    keys: dict[str, str]
    model_id: int
    k: int
    directory: Path
    daemon_port: int

    @property
    def daemon_url(self) -> str:
        return f"http://{LOOPBACK}:{self.daemon_port}"

    def path(self, name: str) -> Path:
        """A file of the devnet's directory, absolute."""
        return (self.directory / name).resolve()


def start_devnet(
    directory: Path,
    *,
    port: int | None = None,
    daemon_port: int | None = None,
    k: int = DEV_LOG_SIZE,
    say: Callable[[str], None] = print,
) -> Devnet:
    """Start anvil, check it is ours, deploy and fund everything, write the files; returns the
    running devnet (the caller stops `devnet.anvil`). Anvil is stopped again if anything fails
    (or is interrupted) before that."""
    if not ANVIL.exists():
        raise DevnetError(f"no anvil at {ANVIL}: run `make setup` (npm ci installs it)")
    anvil_port = choose_port(port, DEFAULT_PORT, "anvil", set())
    if port is None and anvil_port != DEFAULT_PORT:
        say(f"port {DEFAULT_PORT} is in use: anvil listens on {LOOPBACK}:{anvil_port} instead")
    op_port = choose_port(daemon_port, DEFAULT_DAEMON_PORT, "the daemon", {anvil_port})
    removed = prepare_directory(directory)
    if removed:
        say(f"cleared the previous devnet's files in {directory}: {', '.join(removed)}")
    (directory / MARKER).write_text(
        "This directory belongs to `zkmeter devnet`, which replaces its files on every start.\n",
        encoding="utf-8",
    )
    anvil = AnvilProcess(anvil_port, log=directory / "anvil.log")
    say(f"starting anvil on {anvil.url} (log {directory / 'anvil.log'})")
    try:
        anvil.start()
    except AnvilError as exc:
        raise DevnetError(str(exc)) from exc
    try:
        keys = dev_keys()
        client = ChainClient.connect(anvil.url, keys[0], extra_keys=keys[1:])
        ensure_own_anvil(client, anvil)
        accounts = dict(zip(ROLES, client.accounts, strict=True))
        say(f"deploying OPEN, ModelRegistry, UsageSettlement and UsageVerifier for 2^{k} rows")
        deployment = deploy_dev_contracts(client, k=k, owner=accounts["deployer"])
        model_id = client.register_model(
            WORKED_EXAMPLE_MODEL_HASH,
            WORKED_EXAMPLE_RATE,
            WORKED_EXAMPLE_METADATA,
            sender=accounts["creator"],
        )
        for role in ("creator", "payer", "operator"):
            client.mint(accounts[role].address, DEV_OPEN, sender=accounts["deployer"])
        net = Devnet(
            anvil,
            client,
            deployment,
            accounts,
            dict(zip(ROLES, keys, strict=True)),
            model_id,
            k,
            directory,
            op_port,
        )
        deployment.save(net.path("deployment.json"))
        development_srs(k).save(net.path("dev.srs"))
        net.path("daemon.toml").write_text(daemon_config(net), encoding="utf-8")
        write_env(net)
        ensure_own_anvil(client, anvil)
    except ChainError as exc:
        anvil.stop()
        raise DevnetError(f"setting up the devnet failed: {exc}") from exc
    except BaseException:
        anvil.stop()
        raise
    return net


def _toml(value: str) -> str:
    return json.dumps(value)  # a TOML basic string: JSON's escapes are TOML's


def daemon_config(net: Devnet) -> str:
    """The operator daemon's TOML settings for this devnet (`zkmeter daemon --config`)."""
    lines = [
        "# zkmeter devnet: the operator daemon's settings for this devnet (written by",
        "# `zkmeter devnet`, replaced on its next start). The operator's key comes from the",
        "# environment, never from this file: ZKMETER_PRIVATE_KEY=$DEV_OPERATOR_KEY (see .env).",
        f"rpc_url = {_toml(net.anvil.url)}",
        f"deployment = {_toml(str(net.path('deployment.json')))}",
        f"srs = {_toml(str(net.path('dev.srs')))}",
        f"db = {_toml('sqlite:///' + str(net.path('operator.db')))}",
        f"archive = {_toml(str(net.path('archive')))}",
        f"host = {_toml(LOOPBACK)}",
        f"port = {net.daemon_port}",
        f"log_size = {net.k}",
        f"max_age = {DEVNET_MAX_AGE}",
        "confirmations = 0",
    ]
    return "\n".join(lines) + "\n"


def env_text(net: Devnet) -> str:
    """The devnet's `.env`: the RPC URL, the deployment and the development accounts with their
    keys, which are anvil's PUBLIC test keys and nothing else (sourceable by a POSIX shell)."""
    q = shlex.quote
    a = net.accounts
    lines = [
        f"# zkmeter devnet: anvil at {net.anvil.url} (chain id {net.client.chain_id}).",
        "#",
        "# PUBLIC TEST KEYS. The DEV_*_KEY values below are anvil's default development keys,",
        f'# derived from its published mnemonic "{ANVIL_MNEMONIC}".',
        "# Everyone knows them: use them only on this local devnet, never send real funds to",
        "# these accounts, never use these keys on any other chain. This file holds no other",
        f"# keys. Load it into a shell with:  set -a && . {net.directory / '.env'} && set +a",
        f"ZKMETER_RPC_URL={q(net.anvil.url)}",
        f"ZKMETER_DEPLOYMENT={q(str(net.path('deployment.json')))}",
        f"ZKMETER_PAYER_STATE={q(str(net.path('payer.db')))}",
        f"DEV_DAEMON_URL={q(net.daemon_url)}",
        f"DEV_MODEL={net.model_id}",
        "# deployer: owns OPEN (zkmeter token mint) and UsageSettlement",
        f"DEV_DEPLOYER={a['deployer'].address}",
        f"DEV_DEPLOYER_KEY={net.keys['deployer']}",
        f"# creator: owns model {net.model_id} (0.002 OPEN per 1,000 tokens)",
        f"DEV_CREATOR={a['creator'].address}",
        f"DEV_CREATOR_KEY={net.keys['creator']}",
        "# payer: deposits for the operator, signs receipts",
        f"DEV_PAYER={a['payer'].address}",
        f"DEV_PAYER_KEY={net.keys['payer']}",
        "# operator: runs the daemon, settles batches",
        f"DEV_OPERATOR={a['operator'].address}",
        f"DEV_OPERATOR_KEY={net.keys['operator']}",
    ]
    return "\n".join(lines) + "\n"


def write_env(net: Devnet) -> Path:
    """Write `env_text` to the devnet's `.env` (mode 0600); returns its path."""
    path = net.path(".env")
    if not set(net.keys.values()) <= set(dev_keys(10)):  # only anvil's public keys, ever
        raise DevnetError("refusing to write keys that are not anvil's public test keys")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(env_text(net))
    return path


__all__ = [
    "DEFAULT_DAEMON_PORT",
    "DEFAULT_PORT",
    "DEV_OPEN",
    "MANAGED",
    "MARKER",
    "ROLES",
    "WORKED_EXAMPLE_MODEL_HASH",
    "WORKED_EXAMPLE_RATE",
    "Devnet",
    "DevnetError",
    "choose_port",
    "daemon_config",
    "dev_keys",
    "ensure_own_anvil",
    "env_text",
    "prepare_directory",
    "start_devnet",
    "write_env",
]
