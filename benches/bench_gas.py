"""Gas of `UsageSettlement.settle` for 1, 10 and 100 channels, with the mock verifier.

Gas is deterministic, so this measures no time: it settles on the embedded chain (py-evm,
Prague) and reads `gasUsed` from the receipts. The verifier's own cost (pairings, transcript)
is NOT included: the mock answers at once; add the real `UsageVerifier`'s gas to these figures.

Channels are spread over up to 7 payers and as many models as needed (payer-major, keys
increasing); every channel carries its payer's signed state (one ecrecover each). Two batches are
settled: the first writes each channel's slot (nonce and cumulative) from zero (SSTORE 0 -> x,
22,100 gas), the second updates it (x -> y): the steady state of a channel that settles every
batch. The proof passed is 32 bytes (calldata and the emitted commitments grow with the real
proof's size).

    python -m benches.bench_gas            # prints the table
    pytest benches/bench_gas.py -k small   # the 1- and 10-channel rows as a quick check
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import pytest

from channels.receipts import ReceiptDomain, UsageReceipt, sign_receipt
from circuits.public_inputs import Aggregate
from contracts.client import ChainClient, SignedState

LOG_N = 10
RATE = 2 * 10**15
PROOF = b"\x5a" * 32


def signed_states(
    client: ChainClient, operator: str, aggregates: Sequence[Any], payers: Sequence[Any]
) -> list[SignedState]:
    """Each aggregate's payer's signed state ending its run (as an honest payer signs it)."""
    if client.deployment is None:
        raise ValueError("no deployment")
    domain = ReceiptDomain(client.chain_id, client.deployment.settlement)
    by_address = {int(p.address, 16): p for p in payers}
    states = []
    for a in aggregates:
        payer = by_address[a.payer if isinstance(a.payer, int) else int(a.payer, 16)]
        settled = client.channel(payer.address, operator, a.model_id)
        nonce, cumulative = settled.nonce + a.count, settled.cumulative_tokens + a.tokens
        receipt = sign_receipt(
            payer,
            domain,
            UsageReceipt(payer.address, operator, a.model_id, nonce, cumulative, RATE, PROOF),
        )
        states.append(SignedState.of(receipt))
    return states


def settle_gas(n_channels: int) -> tuple[int, int]:
    """(gas of the first batch, gas of the second batch) settling `n_channels` channels."""
    c = ChainClient.embedded()
    mock = c.deploy_contract("MockUsageVerifier", LOG_N, True)
    c.deploy_all(2, 1, [mock.address])
    owner, operator = c.accounts[1], c.accounts[2]
    payers = c.accounts[3 : 3 + min(n_channels, 7)]
    n_models = -(-n_channels // len(payers))
    models = [
        c.register_model(i.to_bytes(32, "big"), RATE, sender=owner) for i in range(1, n_models + 1)
    ]
    for p in payers:
        c.mint(p.address, 10**24)
        c.approve_and_deposit(operator.address, 10**24, sender=p)
    channels = sorted(
        (Aggregate(int(p.address, 16), m, 0, 12, 9_600) for p in payers for m in models),
        key=lambda a: a.key,
    )[:n_channels]
    states = signed_states(c, operator.address, channels, payers)
    first = c.settle(operator, 0, LOG_N, channels, states, PROOF)["gasUsed"]
    states = signed_states(c, operator.address, channels, payers)
    second = c.settle(operator, 1, LOG_N, channels, states, PROOF)["gasUsed"]
    return int(first), int(second)


def gas_table(sizes: tuple[int, ...] = (1, 10, 100)) -> str:
    rows = ["channels | first batch gas | steady-state gas | steady gas/channel"]
    rows.append("-------- | -------------- | ---------------- | ------------------")
    for n in sizes:
        first, steady = settle_gas(n)
        rows.append(f"{n:8d} | {first:14,d} | {steady:16,d} | {steady // n:18,d}")
    return "\n".join(rows)


@pytest.mark.parametrize(
    "n_channels",
    [
        pytest.param(1, id="small-1"),
        pytest.param(10, id="small-10"),
        pytest.param(100, id="large-100", marks=pytest.mark.slow),
    ],
)
def test_settle_gas(n_channels: int) -> None:
    first, steady = settle_gas(n_channels)
    print(f"\nsettle {n_channels} channel(s): first {first:,d} gas, steady {steady:,d} gas")
    assert steady < first  # warm nonce slots are cheaper
    assert steady < 30_000_000


if __name__ == "__main__":
    print(gas_table(tuple(int(a) for a in sys.argv[1:]) or (1, 10, 100)))
