"""The worked example end to end: embedded chain and anvil, same test."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from contracts.client import ChainClient
from tests.support.anvil import anvil_keys, requires_anvil
from zkmeter.cli import main
from zkmeter.demo import run_demo

EARNED = 19_200_000_000_000_000  # 0.0192 OPEN: 9,600 tokens at 2e15 base units per 1,000


def test_demo_command_prints_the_creators_earnings() -> None:
    result = CliRunner().invoke(main, ["demo"])
    assert result.exit_code == 0, result.output
    assert "Creator earned 0.0192 OPEN (read from the chain)" in result.output
    assert "Payer's escrow for the operator: 0.9808 OPEN" in result.output
    assert "nonce 12, cumulative 9600 tokens" in result.output
    assert "the payer's signature on the channel's state and the proof" in result.output


@pytest.mark.anvil
@requires_anvil
def test_demo_on_anvil_then_recheck_the_settled_batch(anvil_url: str, tmp_path: Path) -> None:
    keys = anvil_keys(4)
    client = ChainClient.connect(anvil_url, keys[0], extra_keys=keys[1:])
    result = run_demo(say=lambda _line: None, client=client)
    assert result.earned == EARNED
    assert result.payer_escrow == 10**18 - EARNED

    result.deployment.save(tmp_path / "deployment.json")
    result.vk.save(tmp_path / "vk.json")
    base = ["verify", "--rpc-url", anvil_url, "--deployment", str(tmp_path / "deployment.json")]
    base += ["--operator", result.operator]
    runner = CliRunner()
    ok = runner.invoke(main, [*base, "--batch", "0", "--vk", str(tmp_path / "vk.json")])
    assert ok.exit_code == 0, ok.output
    assert (
        "ACCEPTED: batch 0" in ok.output
        and "(settled on-chain)" in ok.output
        and "9600" in ok.output
    )

    missing = runner.invoke(main, [*base, "--batch", "1", "--vk", str(tmp_path / "vk.json")])
    assert missing.exit_code != 0 and "no settled batch 1" in missing.output

    # A key from another SRS: the settled proof does not verify against it.
    other = run_demo(say=lambda _line: None)
    other.vk.save(tmp_path / "other-vk.json")
    wrong = runner.invoke(main, [*base, "--batch", "0", "--vk", str(tmp_path / "other-vk.json")])
    assert wrong.exit_code == 1 and wrong.output.startswith("REJECTED")


@pytest.mark.anvil
@requires_anvil
def test_chain_deploy_installs_a_verifier_per_key(
    anvil_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.support.proofs import proving_key

    proving_key(8).vk.save(tmp_path / "vk.json")
    monkeypatch.setenv("ZKMETER_PRIVATE_KEY", anvil_keys(1)[0])
    out = tmp_path / "deployment.json"
    result = CliRunner().invoke(
        main,
        [
            "chain",
            "deploy",
            "--rpc-url",
            anvil_url,
            "-o",
            str(out),
            "--vk",
            str(tmp_path / "vk.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "(2^8 rows)" in result.output
    client = ChainClient.connect(anvil_url)
    from contracts.client import Deployment

    client.use(Deployment.load(out))
    verifier = client.settlement.functions.verifierFor(8).call()
    assert int(verifier, 16) != 0
    assert client.contract("UsageVerifier8", verifier).functions.logDomainSize().call() == 8

    bad = tmp_path / "bad-vk.json"
    bad.write_text('{"format": "zkmeter-usage-vk-v2"}')
    refused = CliRunner().invoke(
        main, ["chain", "deploy", "--rpc-url", anvil_url, "-o", str(out), "--vk", str(bad)]
    )
    assert refused.exit_code != 0 and "bad-vk.json" in refused.output
