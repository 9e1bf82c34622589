"""A deployed world on the embedded chain for the contract tests.

Settlement needs each payer's signature on its
channel's new state: `World.consent` signs it the way an honest payer's last receipt would,
from the channel's settled state on chain. The fixtures `world_module` (built once per test
module) and `world` (each test in a snapshot reverted afterwards) are in tests/conftest.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from channels.receipts import ReceiptDomain, UsageReceipt, sign_receipt
from circuits.public_inputs import Aggregate
from contracts.client import ChainClient, Deployment, SignedState, checksum

#: The worked example of DESIGN.md: 0.002 OPEN per 1,000 tokens, 12 calls of 800 tokens.
RATE_0_002_OPEN = 2 * 10**15
EXAMPLE_CALLS = 12
EXAMPLE_TOKENS = 9_600
EXAMPLE_ROYALTY = 19_200_000_000_000_000  # 0.0192 OPEN

RATE_NOTICE_PERIOD = 7 * 24 * 3600
THAWING_PERIOD = 3 * 24 * 3600
VERIFIER_CHANGE_DELAY = 4 * 24 * 3600
LOG_N = 10
ONE_OPEN = 10**18
REQUEST = b"\x07" * 32


@dataclass
class World:
    client: ChainClient
    deployment: Deployment
    mock: Any  # web3 Contract of MockUsageVerifier
    owner: Any  # LocalAccount of the model creator
    payer: Any
    payer2: Any
    operator: Any
    operator2: Any
    signer: Any  # a key nobody has authorised yet
    model_id: int
    model2_id: int

    @property
    def domain(self) -> ReceiptDomain:
        return ReceiptDomain(self.client.chain_id, self.deployment.settlement)

    def account(self, address: str | int) -> Any:
        return next(a for a in self.client.accounts if a.address == checksum(address))

    def aggregate(
        self,
        payer: Any = None,
        model_id: int | None = None,
        count: int = EXAMPLE_CALLS,
        tokens: int = EXAMPLE_TOKENS,
        first_nonce: int = 0,
    ) -> Aggregate:
        return Aggregate(
            int((payer or self.payer).address, 16),
            self.model_id if model_id is None else model_id,
            first_nonce,
            count,
            tokens,
        )

    def consent(
        self,
        a: Aggregate,
        *,
        operator: Any = None,
        signer: Any = None,
        max_rate: int | None = None,
        nonce_delta: int = 0,
        cumulative_delta: int = 0,
        chain_id: int | None = None,
        settlement: str | None = None,
        model_id: int | None = None,
        payer: str | None = None,
    ) -> SignedState:
        """The payer's signed state ending aggregate `a`'s run (settled + count, settled +
        tokens), as an honest payer signs it; each keyword bends one field for attack tests."""
        op = (operator or self.operator).address
        settled = self.client.channel(checksum(a.payer), op, a.model_id)
        cap = self.client.current_rate(a.model_id) if max_rate is None else max_rate
        domain = ReceiptDomain(
            chain_id or self.client.chain_id, settlement or self.deployment.settlement
        )
        receipt = UsageReceipt(
            payer=payer or checksum(a.payer),
            operator=op,
            model_id=a.model_id if model_id is None else model_id,
            nonce=settled.nonce + a.count + nonce_delta,
            cumulative_tokens=settled.cumulative_tokens + a.tokens + cumulative_delta,
            max_rate_per_k_tokens=cap,
            request_hash=REQUEST,
        )
        r = sign_receipt(signer or self.account(a.payer), domain, receipt)
        return SignedState.of(r)

    def state(self) -> dict[str, Any]:
        """Everything a rejected settlement or withdrawal must leave unchanged."""
        c = self.client
        people = [self.owner, self.payer, self.payer2, self.operator, self.operator2]
        return {
            "escrow": [
                c.escrow_account(p.address, o.address)
                for p in (self.payer, self.payer2)
                for o in (self.operator, self.operator2, p)
            ],
            "earnings": [c.earnings(p.address) for p in people],
            "tokens": [c.token_balance(p.address) for p in people],
            "channels": [
                c.channel(p.address, o.address, m)
                for p in (self.payer, self.payer2)
                for o in (self.operator, self.operator2, p)
                for m in (self.model_id, self.model2_id)
            ],
            "seq": [c.next_batch_seq(o.address) for o in (self.operator, self.operator2)],
            "held": c.token_balance(self.deployment.settlement),
        }


def settle(
    w: World,
    aggregates: Sequence[Aggregate],
    states: Sequence[SignedState] | None = None,
    *,
    seq: int | None = None,
    k: int = LOG_N,
    proof: bytes = b"proof",
    operator: Any = None,
) -> dict[str, Any]:
    """Settle as `operator` (default w.operator) with honest consent unless `states` given."""
    op = operator or w.operator
    if states is None:
        states = [w.consent(a, operator=op) for a in aggregates]
    if seq is None:
        seq = w.client.next_batch_seq(op.address)
    return dict(w.client.settle(op, seq, k, aggregates, states, proof))


def build_world() -> World:
    client = ChainClient.embedded()
    mock = client.deploy_contract("MockUsageVerifier", LOG_N, True)
    deployment = client.deploy_all(
        RATE_NOTICE_PERIOD,
        THAWING_PERIOD,
        [mock.address],
        verifier_change_delay=VERIFIER_CHANGE_DELAY,
    )
    owner, payer, payer2, operator, operator2, signer = client.accounts[1:7]
    model_id = client.register_model(b"\x11" * 32, RATE_0_002_OPEN, "ipfs://model-1", sender=owner)
    model2_id = client.register_model(b"\x22" * 32, 3 * 10**15, "ipfs://model-2", sender=owner)
    for p in (payer, payer2):
        client.mint(p.address, 10 * ONE_OPEN)
        client.approve_and_deposit(operator.address, ONE_OPEN, sender=p)
    return World(
        client,
        deployment,
        mock,
        owner,
        payer,
        payer2,
        operator,
        operator2,
        signer,
        model_id,
        model2_id,
    )
