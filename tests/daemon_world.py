"""A deployed world for the daemon tests: the real UsageVerifier8 for 2^8 rows,
two models, funded payers with escrow for the operator."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import cache
from typing import Any

from contracts.client import GAS_DEPLOY, ChainClient, Deployment
from prover.payer import PayerChannel
from prover.proving_key import ProvingKey
from prover.receipts import ReceiptDomain
from prover.srs import SRS, InsecureSRSWarning

LOG_SIZE = 8
RATES = (2 * 10**15, 3 * 10**15)  # base units per 1,000 tokens; multiples of 1,000: exact
#: The rate cap the test payers sign: above both rates.
MAX_RATE = 10**16
ONE_OPEN = 10**18
RATE_NOTICE_PERIOD = 7200
THAWING_PERIOD = 3600


@cache
def daemon_proving_key() -> ProvingKey:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureSRSWarning)
        srs = SRS.insecure_development((1 << LOG_SIZE) + 8, seed=5, lagrange_log_sizes=(LOG_SIZE,))
    return ProvingKey.build(srs, LOG_SIZE)


@dataclass
class DaemonWorld:
    client: ChainClient
    deployment: Deployment
    owner: Any
    operator: Any
    payers: list[Any]
    models: list[int]


def deploy_real_verifier(client: ChainClient) -> str:
    """UsageVerifier8 for 2^LOG_SIZE rows with the daemon tests' verification key."""
    vk = daemon_proving_key().vk
    contract = client.deploy_contract(
        "UsageVerifier8", LOG_SIZE, list(vk.table_commitment), vk.g2_tau_words(), gas=GAS_DEPLOY
    )
    return str(contract.address)


def build_daemon_world(
    client: ChainClient, payers: list[Any], owner: Any, operator: Any, *, mock: bool = False
) -> DaemonWorld:
    """Deploy with the real UsageVerifier8 (or the accept-all mock if `mock`)."""
    if mock:
        verifier = str(client.deploy_contract("MockUsageVerifier", LOG_SIZE, True).address)
    else:
        verifier = deploy_real_verifier(client)
    deployment = client.deploy_all(RATE_NOTICE_PERIOD, THAWING_PERIOD, verifiers=[verifier])
    models = [
        client.register_model(bytes([i + 1]) * 32, rate, f"ipfs://m{i}", sender=owner)
        for i, rate in enumerate(RATES)
    ]
    for p in payers:
        client.mint(p.address, 10 * ONE_OPEN)
        client.approve_and_deposit(operator.address, ONE_OPEN, sender=p)
    return DaemonWorld(client, deployment, owner, operator, payers, models)


def payer_channel(payer: Any, domain: ReceiptDomain, operator: str, model_id: int) -> PayerChannel:
    """A payer's in-memory channel signing with the tests' rate cap."""
    return PayerChannel(payer, domain, operator, model_id, MAX_RATE)
