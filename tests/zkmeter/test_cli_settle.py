"""`zkmeter settle PROOF.json --receipts FILE` against anvil: settles once, with the payer's
signed channel state from the receipts file; refuses what cannot settle before sending."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from eth_account import Account

from channels.payer import PayerChannel
from channels.receipts import ReceiptDomain
from circuits.public_inputs import BatchHeader
from contracts.client import ChainClient
from prover.prover import prove_batch
from prover.witness import UsageRow
from tests.support.anvil import anvil_keys, requires_anvil
from tests.support.proofs import proving_key
from verifier.proof_file import proof_file_json
from zkmeter.cli import main

pytestmark = [pytest.mark.anvil, requires_anvil]

RATE = 2 * 10**15


def _zero_byte_payer() -> Account:
    """A key whose address starts with a zero byte (about 1 in 256)."""
    for i in range(1, 100_000):
        acct = Account.from_key(i.to_bytes(32, "big"))
        if acct.address.startswith("0x00"):
            return acct
    raise AssertionError("no such key below 100,000")


def test_settle_a_proof_file(
    anvil_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = anvil_keys(4)
    client = ChainClient.connect(anvil_url, keys[0], extra_keys=keys[1:])
    admin, creator, _other, operator = client.accounts[:4]
    payer = _zero_byte_payer()
    client.add_account(payer.key)
    client.set_balance(payer.address, 10**18)
    pk = proving_key(8)
    verifier = client.deploy_usage_verifier(pk.vk)
    deployment = client.deploy_all(7200, 3600, verifiers=[verifier])
    deployment.save(tmp_path / "deployment.json")
    model = client.register_model(b"m".ljust(32, b"\0"), RATE, sender=creator)
    client.mint(payer.address, 10**18, sender=admin)
    client.approve_and_deposit(operator.address, 10**18, sender=payer)

    domain = ReceiptDomain(client.chain_id, deployment.settlement)
    channel = PayerChannel(payer, domain, operator.address, model, RATE)
    receipts = [{**channel.sign(800, bytes([n]) * 32).to_json(), "tokens": 800} for n in range(12)]
    header = BatchHeader(
        client.chain_id, int(deployment.settlement, 16), int(operator.address, 16), 0
    )
    receipts_file = tmp_path / "receipts.json"
    receipts_file.write_text(
        json.dumps({"format": "zkmeter-receipts-v2", **header.to_json(), "receipts": receipts})
    )
    rows = [UsageRow(int(payer.address, 16), model, n, 800) for n in range(1, 13)]
    result = prove_batch(pk, header, rows, processes=1)
    good = tmp_path / "proof.json"
    good.write_text(json.dumps(proof_file_json(result.public, result.proof)))

    monkeypatch.setenv("ZKMETER_PRIVATE_KEY", keys[3])
    base = ["settle", "--rpc-url", anvil_url, "--deployment", str(tmp_path / "deployment.json")]
    base += ["--receipts", str(receipts_file)]
    runner = CliRunner()

    # A forged total: the payer's last receipt does not end there (refused before sending).
    forged = tmp_path / "forged.json"
    agg = dataclasses.replace(result.public.aggregates[0], tokens=9601)
    forged.write_text(
        json.dumps(
            proof_file_json(dataclasses.replace(result.public, aggregates=(agg,)), result.proof)
        )
    )
    refused = runner.invoke(main, [*base, str(forged)])
    assert refused.exit_code != 0 and "cumulative 9601" in refused.output
    assert client.earnings(creator.address) == 0

    # Receipts missing the channel's last state: nothing to show as consent.
    short = tmp_path / "short.json"
    short.write_text(
        json.dumps({**json.loads(receipts_file.read_text()), "receipts": receipts[:-1]})
    )
    refused = runner.invoke(main, [*base[:-1], str(short), str(good)])
    assert refused.exit_code != 0 and "nonce 11" in refused.output

    settled = runner.invoke(main, [*base, str(good)])
    assert settled.exit_code == 0, settled.output
    assert "settled batch 0: 1 channel(s), 9600 tokens" in settled.output
    assert client.earnings(creator.address) == 19_200_000_000_000_000
    assert client.channel(payer.address, operator.address, model).cumulative_tokens == 9600

    replay = runner.invoke(main, [*base, str(good)])
    assert replay.exit_code != 0 and "batch number is 0 in the proof but 1 here" in replay.output

    monkeypatch.setenv("ZKMETER_PRIVATE_KEY", keys[2])  # not the operator
    wrong_key = runner.invoke(main, [*base, str(good)])
    assert wrong_key.exit_code != 0 and "operator" in wrong_key.output
