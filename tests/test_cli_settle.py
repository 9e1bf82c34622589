"""`zkmeter settle PROOF.json` against anvil: settles once, refuses what cannot settle."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from circuits.public_inputs import BatchHeader
from contracts.client import ChainClient
from prover.prover import prove_batch
from prover.witness import UsageRow
from tests.anvil import anvil_keys, anvil_url, requires_anvil
from tests.proof_helpers import proving_key
from verifier.proof_file import proof_file_json
from zkmeter.cli import main

__all__ = ["anvil_url"]  # fixture
pytestmark = [pytest.mark.anvil, requires_anvil]


def test_settle_a_proof_file(
    anvil_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = anvil_keys(4)
    client = ChainClient.connect(anvil_url, keys[0], extra_keys=keys[1:])
    admin, creator, payer, operator = client.accounts[:4]
    pk = proving_key(8)
    verifier = client.deploy_usage_verifier(pk.vk)
    deployment = client.deploy_all(0, 0, verifiers=[verifier])
    deployment.save(tmp_path / "deployment.json")
    model = client.register_model(b"m".ljust(32, b"\0"), 2 * 10**15, sender=creator)
    client.mint(payer.address, 10**18, sender=admin)
    client.approve_and_deposit(10**18, sender=payer)
    client.authorize_operator(operator.address, sender=payer)
    rows = [UsageRow(int(payer.address, 16), model, n, 800) for n in range(1, 13)]
    header = BatchHeader(
        client.chain_id, int(deployment.settlement, 16), int(operator.address, 16), 0
    )
    result = prove_batch(pk, header, rows, processes=1)
    good = tmp_path / "proof.json"
    good.write_text(json.dumps(proof_file_json(result.public, result.proof)))

    monkeypatch.setenv("ZKMETER_PRIVATE_KEY", keys[3])
    base = ["settle", "--rpc-url", anvil_url, "--deployment", str(tmp_path / "deployment.json")]
    runner = CliRunner()

    forged = tmp_path / "forged.json"
    agg = dataclasses.replace(result.public.aggregates[0], tokens=9601)
    forged.write_text(
        json.dumps(
            proof_file_json(dataclasses.replace(result.public, aggregates=(agg,)), result.proof)
        )
    )
    refused = runner.invoke(main, [*base, str(forged)])
    assert refused.exit_code != 0 and "InvalidProof" in refused.output
    assert client.earnings(creator.address) == 0

    settled = runner.invoke(main, [*base, str(good)])
    assert settled.exit_code == 0, settled.output
    assert "settled batch 0: 1 channel(s), 9600 tokens" in settled.output
    assert client.earnings(creator.address) == 19_200_000_000_000_000

    replay = runner.invoke(main, [*base, str(good)])
    assert replay.exit_code != 0 and "batch number is 0 in the proof but 1 here" in replay.output

    monkeypatch.setenv("ZKMETER_PRIVATE_KEY", keys[2])  # not the operator
    wrong_key = runner.invoke(main, [*base, str(good)])
    assert wrong_key.exit_code != 0 and "operator" in wrong_key.output
