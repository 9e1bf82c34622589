"""Gas of `settle` with real proofs and the real `UsageVerifier`: 1, 10 and 100 channels at
2^8 and 2^10 rows, each next to the gas of the verifier alone on the same proof.

Gas is deterministic, so nothing is timed: the batch settles on the embedded chain (py-evm,
Prague) and `gasUsed` is read from the receipts. "verifier alone" is one transaction calling
`verifyBatch` directly (21,000 base and calldata included).

    python -m benches.bench_settle_gas     # prints the table
"""

from __future__ import annotations

import warnings
from functools import cache

import pytest

from benches.bench_gas import signed_states
from circuits.public_inputs import BatchHeader
from contracts.client import ChainClient
from prover.prover import prove_batch
from prover.proving_key import ProvingKey
from prover.srs import SRS, InsecureSRSWarning
from prover.witness import UsageRow
from zkmeter.throughput import transaction_gas

RATE = 2 * 10**15
LOG_SIZES = (8, 10)
CHANNELS = (1, 10, 100)


@cache
def proving_key(k: int) -> ProvingKey:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureSRSWarning)
        srs = SRS.insecure_development((1 << 10) + 8, seed=11, lagrange_log_sizes=LOG_SIZES)
    return ProvingKey.build(srs, k)


def settle_and_verifier_gas(channels: int, k: int) -> tuple[int, int]:
    """(gas of settle, gas of verifyBatch alone) for one batch of `channels` channels."""
    pk = proving_key(k)
    client = ChainClient.embedded()
    verifier = client.deploy_usage_verifier(pk.vk)
    deployment = client.deploy_all(2, 1, verifiers=[verifier])
    owner, operator = client.accounts[1], client.accounts[2]
    payers = client.accounts[3:10]
    models = [
        client.register_model(i.to_bytes(32, "big"), RATE, sender=owner)
        for i in range(1, -(-channels // len(payers)) + 1)
    ]
    for payer in payers:
        client.mint(payer.address, 10**24)
        client.approve_and_deposit(operator.address, 10**24, sender=payer)
    pairs = [(p, m) for p in payers for m in models][:channels]
    rows = [UsageRow(int(p.address, 16), m, 1, 800) for p, m in pairs]
    header = BatchHeader(
        client.chain_id, int(deployment.settlement, 16), int(operator.address, 16), 0
    )
    result = prove_batch(pk, header, rows, processes=1)
    proof = result.proof.to_bytes()
    alone = transaction_gas(
        client,
        client.contract("UsageVerifier8", verifier),
        "verifyBatch",
        header.chain_id,
        deployment.settlement,
        operator.address,
        0,
        [
            (
                client.w3.to_checksum_address(f"0x{a.payer:040x}"),
                a.model_id,
                a.first_nonce,
                a.count,
                a.tokens,
            )
            for a in result.public.aggregates
        ],
        proof,
    )
    aggregates = result.public.aggregates
    states = signed_states(client, operator.address, aggregates, payers)
    receipt = client.settle(operator, 0, k, aggregates, states, proof)
    return int(receipt["gasUsed"]), alone


def gas_table() -> str:
    lines = [
        "| rows | channels | settle gas | verifier alone | settle per channel |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    for k in LOG_SIZES:
        for channels in CHANNELS:
            settle, alone = settle_and_verifier_gas(channels, k)
            lines.append(
                f"| 2^{k} | {channels} | {settle:,} | {alone:,} | {settle // channels:,} |"
            )
    return "\n".join(lines)


@pytest.mark.slow
@pytest.mark.parametrize("k", LOG_SIZES)
def test_verifier_gas_does_not_grow_with_rows(k: int) -> None:
    settle, alone = settle_and_verifier_gas(1, k)
    print(f"\n2^{k} rows, 1 channel: settle {settle:,} gas, verifier alone {alone:,} gas")
    assert alone < 350_000 + 60_000  # the verifier's 293k inside, plus base and calldata
    assert settle > alone


if __name__ == "__main__":
    print(gas_table())
