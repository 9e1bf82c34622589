"""Shared fixtures for the contract tests: a deployed world on the embedded chain.

The chain is built once per test module; every test runs inside a snapshot that is reverted
afterwards, so tests are independent and fast.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from contracts.client import Aggregate, ChainClient, Deployment

#: The worked example of DESIGN.md: 0.002 OPEN per 1,000 tokens, 12 calls of 800 tokens.
RATE_0_002_OPEN = 2 * 10**15
EXAMPLE_CALLS = 12
EXAMPLE_TOKENS = 9_600
EXAMPLE_ROYALTY = 19_200_000_000_000_000  # 0.0192 OPEN

RATE_NOTICE_PERIOD = 7 * 24 * 3600
THAWING_PERIOD = 3 * 24 * 3600
LOG_N = 10
ONE_OPEN = 10**18


@dataclass
class World:
    client: ChainClient
    deployment: Deployment
    mock: Any  # web3 Contract of MockUsageVerifier
    owner: Any  # LocalAccount of the model creator
    payer: Any
    payer2: Any
    operator: Any
    model_id: int
    model2_id: int

    def aggregate(
        self,
        payer: Any = None,
        model_id: int | None = None,
        count: int = EXAMPLE_CALLS,
        tokens: int = EXAMPLE_TOKENS,
        first_nonce: int = 0,
    ) -> Aggregate:
        return Aggregate(
            (payer or self.payer).address,
            self.model_id if model_id is None else model_id,
            first_nonce,
            count,
            tokens,
        )

    def state(self) -> dict[str, Any]:
        """Everything a rejected settlement or withdrawal must leave unchanged."""
        c = self.client
        people = [self.owner, self.payer, self.payer2, self.operator]
        return {
            "escrow": [c.escrow_balance(p.address) for p in people],
            "earnings": [c.earnings(p.address) for p in people],
            "tokens": [c.token_balance(p.address) for p in people],
            "nonces": [
                c.last_nonce(p.address, self.operator.address, m)
                for p in (self.payer, self.payer2)
                for m in (self.model_id, self.model2_id)
            ],
            "seq": c.next_batch_seq(self.operator.address),
            "held": c.token_balance(self.deployment.settlement),
        }


def build_world() -> World:
    client = ChainClient.embedded()
    deployment = client.deploy_all(RATE_NOTICE_PERIOD, THAWING_PERIOD)
    mock = client.deploy_contract("MockUsageVerifier", LOG_N, True)
    client.set_verifier(mock.address)
    owner, payer, payer2, operator = client.accounts[1:5]
    model_id = client.register_model(b"\x11" * 32, RATE_0_002_OPEN, "ipfs://model-1", sender=owner)
    model2_id = client.register_model(b"\x22" * 32, 3 * 10**15, "ipfs://model-2", sender=owner)
    for p in (payer, payer2):
        client.mint(p.address, 10 * ONE_OPEN)
        client.approve_and_deposit(ONE_OPEN, sender=p)
        client.authorize_operator(operator.address, sender=p)
    return World(client, deployment, mock, owner, payer, payer2, operator, model_id, model2_id)


@pytest.fixture(scope="module")
def world_module() -> World:
    return build_world()


@pytest.fixture
def world(world_module: World) -> Iterator[World]:
    snap = world_module.client.snapshot()
    yield world_module
    world_module.client.revert(snap)
