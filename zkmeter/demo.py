"""`zkmeter demo`: the worked example end to end on the embedded chain.

A creator registers a model at 0.002 OPEN per 1,000 tokens, a payer deposits 1 OPEN into an
escrow account for one operator, the operator serves 12 calls of 800 tokens and the payer
signs each call's receipt (the channel's new state: nonce, cumulative tokens, rate cap), the
operator proves the batch, checks the proof in Python, and settles it on-chain: the contract
checks the payer's signature on the channel's last state and the proof (Solidity verifier).
The creator's earnings, read back from the chain, are 0.0192 OPEN.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from eth_utils.crypto import keccak

from channels.payer import PayerChannel
from channels.receipts import ReceiptDomain, recover_signer
from circuits.public_inputs import BatchHeader
from circuits.usage_batch import Layout
from contracts.client import ChainClient, Deployment, SignedState
from prover.prover import prove_batch
from prover.proving_key import ProvingKey
from prover.srs import SRS, InsecureSRSWarning
from prover.witness import UsageRow
from verifier.keys import VerificationKey
from verifier.usage_verifier import verify_batch_proof

LOG_SIZE = 8
CALLS = 12
TOKENS_PER_CALL = 800
RATE_PER_K_TOKENS = 2 * 10**15  # 0.002 OPEN in base units (18 decimals)
DEPOSIT = 10**18  # 1 OPEN
DAY = 24 * 60 * 60


@dataclass(frozen=True)
class DemoResult:
    earned: int  # base units credited to the creator, read from the chain
    payer_escrow: int
    settle_gas: int
    proof_bytes: int
    prove_seconds: float
    deployment: Deployment
    operator: str
    vk: VerificationKey


def open_amount(base_units: int) -> str:
    """Base units of an 18-decimal token as an exact decimal string."""
    return f"{Decimal(base_units).scaleb(-18).normalize():f}"


def run_demo(say: Callable[[str], None] = print, client: ChainClient | None = None) -> DemoResult:
    """Run the worked example; on ``client`` (four funded accounts) or the embedded chain."""
    say("1. Development SRS and proving key for 2^8-row batches (INSECURE, demo only)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureSRSWarning)
        srs = SRS.insecure_development(Layout(LOG_SIZE).srs_powers, lagrange_log_sizes=(LOG_SIZE,))
    pk = ProvingKey.build(srs, LOG_SIZE)

    where = (
        "embedded chain (py-evm)"
        if client is None or client.is_embedded
        else f"chain {client.chain_id}"
    )
    say(f"2. Deploying on the {where}: OPEN, ModelRegistry, UsageSettlement, UsageVerifier")
    client = client or ChainClient.embedded()
    admin, creator, payer, operator = client.accounts[:4]
    verifier = client.deploy_usage_verifier(pk.vk, sender=admin)
    deployment = client.deploy_all(
        rate_notice_period=7 * DAY, thawing_period=3 * DAY, verifiers=[verifier], owner=admin
    )
    say(f"   settlement at {deployment.settlement}, verifier at {verifier}")

    model_id = client.register_model(
        b"demo-llm".ljust(32, b"\0"), RATE_PER_K_TOKENS, "ipfs://demo-llm", sender=creator
    )
    say(f"3. Creator {creator.address} registered model {model_id} at 0.002 OPEN per 1k tokens")

    client.mint(payer.address, DEPOSIT, sender=admin)
    client.approve_and_deposit(operator.address, DEPOSIT, sender=payer)
    say(f"4. Payer {payer.address} deposited 1 OPEN in escrow for operator {operator.address}")

    domain = ReceiptDomain(client.chain_id, deployment.settlement)
    channel = PayerChannel(payer, domain, operator.address, model_id, RATE_PER_K_TOKENS)
    receipts = [
        channel.sign(TOKENS_PER_CALL, keccak(f"request {call}".encode()))
        for call in range(1, CALLS + 1)
    ]
    if any(recover_signer(r, domain) != payer.address for r in receipts):
        raise RuntimeError("a demo receipt's signature does not recover the payer")
    rows = [UsageRow(int(r.payer, 16), r.model_id, r.nonce, TOKENS_PER_CALL) for r in receipts]
    last = receipts[-1]
    say(
        f"5. Operator served {CALLS} calls x {TOKENS_PER_CALL} tokens; the payer signed each "
        f"call's EIP-712 receipt, the last one: nonce {last.nonce}, cumulative "
        f"{last.cumulative_tokens} tokens, rate cap 0.002 OPEN per 1k"
    )

    header = BatchHeader(
        chain_id=client.chain_id,
        settlement=int(deployment.settlement, 16),
        operator=int(operator.address, 16),
        batch_seq=client.next_batch_seq(operator.address),
    )
    started = time.perf_counter()
    result = prove_batch(pk, header, rows, processes=1)
    prove_seconds = time.perf_counter() - started
    aggregate = result.public.aggregates[0]
    proof_bytes = result.proof.to_bytes()
    say(
        f"6. Proved batch {header.batch_seq}: {aggregate.count} calls, {aggregate.tokens} tokens "
        f"({len(proof_bytes)}-byte proof, {prove_seconds:.1f} s)"
    )
    verdict = verify_batch_proof(pk.vk, result.public, result.proof)
    if not verdict.accepted:
        raise RuntimeError(f"the Python verifier rejected the demo proof: {verdict.message}")
    say("7. Python verifier: accepted")

    consent = SignedState.of(last)
    receipt = client.settle(
        operator, header.batch_seq, LOG_SIZE, result.public.aggregates, [consent], proof_bytes
    )
    say(
        "8. Settled on-chain: the payer's signature on the channel's state and the proof "
        f"(Solidity verifier) checked, {receipt['gasUsed']:,} gas"
    )

    earned = client.earnings(creator.address)
    escrow = client.escrow_balance(payer.address, operator.address)
    say(f"9. Creator earned {open_amount(earned)} OPEN (read from the chain)")
    say(f"   Payer's escrow for the operator: {open_amount(escrow)} OPEN")
    return DemoResult(
        earned,
        escrow,
        int(receipt["gasUsed"]),
        len(proof_bytes),
        prove_seconds,
        deployment,
        operator.address,
        pk.vk,
    )
