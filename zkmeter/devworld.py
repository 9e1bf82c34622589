"""A development world on a chain: the contracts deployed with a verifier, models registered,
payers funded with escrow for an operator. INSECURE keys and SRS: development, tests, demos and
benchmarks only.

Used by `zkmeter devnet` (`deploy_dev_contracts`), the daemon's tests and benchmarks
(`deploy_dev_world`); a real deployment uses `zkmeter chain deploy` with a verification key from
a ceremony SRS. anvil from the project's node_modules runs here too (`AnvilProcess`,
`running_anvil`), for `zkmeter devnet`, the tests and the benchmarks.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from eth_account import Account
from eth_account.signers.local import LocalAccount

from channels.payer import PayerChannel
from channels.receipts import ReceiptDomain
from circuits.usage_batch import Layout
from contracts.client import ANVIL_CHAIN_ID, ChainClient, Deployment
from prover.proving_key import ProvingKey, verification_key
from prover.srs import SRS, InsecureSRSWarning

#: anvil from the project's own node_modules (npm package @foundry-rs/anvil-linux-amd64).
ANVIL = Path(__file__).resolve().parent.parent / "node_modules" / ".bin" / "anvil"
#: anvil's default mnemonic: its accounts are PUBLIC development keys, funded on anvil only.
ANVIL_MNEMONIC = "test test test test test test test test test test test junk"

#: The development world's batch domain: 2^8 rows.
DEV_LOG_SIZE = 8
#: Two models' rates in base units per 1,000 tokens (multiples of 1,000: amounts are exact).
DEV_RATES = (2 * 10**15, 3 * 10**15)
#: The rate cap the development payers sign: above both rates.
DEV_MAX_RATE = 10**16
ONE_OPEN = 10**18
DEV_RATE_NOTICE_PERIOD = 7200
DEV_THAWING_PERIOD = 3600


@cache
def development_srs(k: int = DEV_LOG_SIZE, seed: int = 5) -> SRS:
    """An INSECURE development SRS for 2^k-row batches (its trapdoor comes from `seed`), its
    Lagrange basis for k computed from the trapdoor and cached."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureSRSWarning)
        return SRS.insecure_development(Layout(k).srs_powers, seed=seed, lagrange_log_sizes=(k,))


@cache
def development_proving_key(k: int = DEV_LOG_SIZE, seed: int = 5) -> ProvingKey:
    """A proving key from `development_srs(k, seed)`."""
    return ProvingKey.build(development_srs(k, seed), k)


@dataclass
class DevWorld:
    client: ChainClient
    deployment: Deployment
    owner: LocalAccount
    operator: LocalAccount
    payers: list[LocalAccount]
    models: list[int]

    @property
    def domain(self) -> ReceiptDomain:
        return ReceiptDomain(self.client.chain_id, self.deployment.settlement)

    def payer_channel(self, payer: LocalAccount, model_id: int) -> PayerChannel:
        """`payer`'s in-memory channel with the operator, signing with `DEV_MAX_RATE`."""
        return PayerChannel(payer, self.domain, self.operator.address, model_id, DEV_MAX_RATE)


def deploy_dev_contracts(
    client: ChainClient,
    *,
    k: int = DEV_LOG_SIZE,
    mock_verifier: bool = False,
    owner: LocalAccount | None = None,
) -> Deployment:
    """Deploy OPEN, ModelRegistry and UsageSettlement (notice `DEV_RATE_NOTICE_PERIOD`, thawing
    `DEV_THAWING_PERIOD`) owned by `owner` (default: the client's account), with the real
    UsageVerifier for 2^k rows and `development_srs(k)`'s key in force (or, with
    `mock_verifier`, the TEST-ONLY accept-all mock)."""
    if mock_verifier:
        mock = client.deploy_contract("MockUsageVerifier", k, True, sender=owner)
        verifier = str(mock.address)
    else:
        vk = verification_key(development_srs(k), k)
        verifier = client.deploy_usage_verifier(vk, sender=owner)
    return client.deploy_all(DEV_RATE_NOTICE_PERIOD, DEV_THAWING_PERIOD, [verifier], owner=owner)


def deploy_dev_world(
    client: ChainClient,
    payers: Sequence[LocalAccount],
    owner: LocalAccount,
    operator: LocalAccount,
    *,
    mock_verifier: bool = False,
    deposit: int = ONE_OPEN,
) -> DevWorld:
    """`deploy_dev_contracts` for 2^DEV_LOG_SIZE rows, then register two models owned by `owner`
    at `DEV_RATES`, mint 10 OPEN to each payer and deposit `deposit` for `operator`."""
    deployment = deploy_dev_contracts(client, mock_verifier=mock_verifier)
    models = [
        client.register_model(bytes([i + 1]) * 32, rate, f"ipfs://m{i}", sender=owner)
        for i, rate in enumerate(DEV_RATES)
    ]
    for p in payers:
        client.mint(p.address, 10 * ONE_OPEN)
        client.approve_and_deposit(operator.address, deposit, sender=p)
    return DevWorld(client, deployment, owner, operator, list(payers), models)


def anvil_keys(n: int = 10) -> list[str]:
    """The private keys of anvil's default funded accounts (m/44'/60'/0'/0/i)."""
    Account.enable_unaudited_hdwallet_features()
    return [
        Account.from_mnemonic(ANVIL_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}").key.hex()
        for i in range(n)
    ]


LOOPBACK = "127.0.0.1"


class AnvilError(RuntimeError):
    """anvil is missing, cannot use its port, or exited: one sentence saying which."""


def port_is_free(port: int, host: str = LOOPBACK) -> bool:
    """True if nothing listens on (host, port): a server could bind it now (with SO_REUSEADDR,
    as anvil and the daemon do, so connections of a stopped server still in TIME_WAIT do not
    count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = LOOPBACK) -> int:
    """A port on `host` that is free now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    """In the child, before exec: on Linux, have the kernel send SIGTERM when the parent dies,
    so anvil never outlives a devnet or test process that was killed outright."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


class AnvilProcess:
    """anvil from node_modules on 127.0.0.1:`port`, in its own session (a terminal's Ctrl-C
    reaches the process that started it, which then stops it), with anvil's default mnemonic
    and chain id 31337 unless told otherwise. A context manager: started on entry, stopped on
    exit."""

    def __init__(
        self,
        port: int,
        *,
        log: Path | None = None,
        chain_id: int = ANVIL_CHAIN_ID,
        binary: Path = ANVIL,
    ) -> None:
        self.port = port
        self.log = log
        self.chain_id = chain_id
        self.binary = binary
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 30.0) -> str:
        """Start anvil and wait until it listens; returns its URL. AnvilError if the binary is
        missing, the port is taken, or anvil exits or does not listen within `timeout` s."""
        if not self.binary.exists():
            raise AnvilError(f"no anvil at {self.binary}: run `make setup` (npm ci installs it)")
        if not port_is_free(self.port):  # else another node could answer in its place
            raise AnvilError(f"port {self.port} on {LOOPBACK} is in use: anvil cannot use it")
        args = [str(self.binary), "--host", LOOPBACK, "--port", str(self.port)]
        args += ["--chain-id", str(self.chain_id), "--mnemonic", ANVIL_MNEMONIC]
        if self.log is not None:
            self._log_file = open(self.log, "ab")  # noqa: SIM115 (closed in stop)
            out: int | IO[bytes] = self._log_file
        else:
            args.append("--silent")
            out = subprocess.DEVNULL
        self.proc = subprocess.Popen(
            args,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                raise AnvilError(f"anvil exited at start (code {code}){self._see()}")
            try:
                with socket.create_connection((LOOPBACK, self.port), timeout=0.2):
                    return self.url
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise AnvilError(f"anvil did not listen on {self.url} within {timeout:.0f} s{self._see()}")

    def _see(self) -> str:
        return f": see {self.log}" if self.log is not None else ""

    def wait(self) -> int:
        """Block until anvil exits; its exit code."""
        if self.proc is None:
            raise AnvilError("anvil was not started")
        return self.proc.wait()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop anvil: SIGTERM, then SIGKILL after `timeout` seconds. Idempotent."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@contextmanager
def running_anvil(chain_id: int = ANVIL_CHAIN_ID) -> Iterator[str]:
    """Start anvil from node_modules on a free loopback port; yields its URL; stops it."""
    with AnvilProcess(free_port(), chain_id=chain_id) as anvil:
        yield anvil.url


__all__ = [
    "ANVIL",
    "ANVIL_MNEMONIC",
    "DEV_LOG_SIZE",
    "DEV_MAX_RATE",
    "DEV_RATES",
    "DEV_RATE_NOTICE_PERIOD",
    "DEV_THAWING_PERIOD",
    "LOOPBACK",
    "ONE_OPEN",
    "AnvilError",
    "AnvilProcess",
    "DevWorld",
    "anvil_keys",
    "deploy_dev_contracts",
    "deploy_dev_world",
    "development_proving_key",
    "development_srs",
    "free_port",
    "port_is_free",
    "running_anvil",
]
