"""A development world on a chain: the contracts deployed with a verifier, models registered,
payers funded with escrow for an operator. INSECURE keys and SRS: development, tests, demos and
benchmarks only.

Used by `zkmeter devnet` (`deploy_dev_contracts`), the daemon's tests and benchmarks
(`deploy_dev_world`); a real deployment uses `zkmeter chain deploy` with a verification key from
a ceremony SRS.
"""

from __future__ import annotations

import socket
import subprocess
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from channels.payer import PayerChannel
from channels.receipts import ReceiptDomain
from circuits.usage_batch import Layout
from contracts.client import ChainClient, Deployment
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


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_anvil() -> Iterator[str]:
    """Start anvil from node_modules on a free loopback port; yields its URL; stops it."""
    port = _free_port()
    proc = subprocess.Popen(
        [str(ANVIL), "--port", str(port), "--host", "127.0.0.1", "--silent"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):  # up to ~30 s on a loaded machine
            if proc.poll() is not None:
                raise RuntimeError(
                    f"anvil exited: {proc.stderr.read().decode() if proc.stderr else ''}"
                )
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError("anvil did not start listening")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


__all__ = [
    "ANVIL",
    "ANVIL_MNEMONIC",
    "DEV_LOG_SIZE",
    "DEV_MAX_RATE",
    "DEV_RATES",
    "DEV_RATE_NOTICE_PERIOD",
    "DEV_THAWING_PERIOD",
    "ONE_OPEN",
    "DevWorld",
    "anvil_keys",
    "deploy_dev_contracts",
    "deploy_dev_world",
    "development_proving_key",
    "development_srs",
    "running_anvil",
]
