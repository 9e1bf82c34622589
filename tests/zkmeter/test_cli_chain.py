"""`zkmeter chain|models|escrow` against anvil, and exact amount parsing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from eth_account import Account
from hypothesis import example, given, settings
from hypothesis import strategies as st

from contracts.client import ChainClient, Deployment
from tests.support.anvil import anvil_keys, requires_anvil
from zkmeter.cli import main
from zkmeter.commands.options import AmountError, format_token_amount, parse_token_amount


def test_worked_example_amounts_are_exact() -> None:
    assert parse_token_amount("0.0192") == 19_200_000_000_000_000
    assert parse_token_amount("0.002") == 2 * 10**15
    assert parse_token_amount("1") == 10**18
    assert parse_token_amount("1.5", decimals=6) == 1_500_000
    assert format_token_amount(19_200_000_000_000_000) == "0.0192"
    assert format_token_amount(10**18) == "1"


@pytest.mark.parametrize(
    "bad", ["abc", "-1", "1e400000", "NaN", "Infinity", "0.0000000000000000001"]
)
def test_bad_amounts_rejected(bad: str) -> None:
    with pytest.raises(AmountError):
        parse_token_amount(bad)


@settings(max_examples=25, deadline=None)
@example(units=10**28 + 1, decimals=0)  # beyond Decimal's 28 default digits: must stay exact
@example(units=2**256 - 1, decimals=18)
@given(units=st.integers(0, 2**256 - 1), decimals=st.integers(0, 24))
def test_format_then_parse_round_trips(units: int, decimals: int) -> None:
    assert parse_token_amount(format_token_amount(units, decimals), decimals) == units


@pytest.mark.anvil
@pytest.mark.slow
@requires_anvil
def test_cli_deploy_register_deposit_signers_and_verifiers_on_anvil(
    anvil_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = anvil_keys(3)
    creator, payer, operator = (Account.from_key(k) for k in keys)
    runner = CliRunner()
    dep_file = tmp_path / "deployment.json"
    common = ["--rpc-url", anvil_url]

    monkeypatch.setenv("ZKMETER_PRIVATE_KEY", keys[0])
    unsafe = ["--thawing-period", "700000", "--verifier-change-delay", "800000"]
    r = runner.invoke(main, ["chain", "deploy", *common, "-o", str(dep_file), *unsafe])
    assert r.exit_code != 0 and "ThawingNotShorterThanRateNotice" in r.output
    periods = ["--thawing-period", "60", "--verifier-change-delay", "120"]
    r = runner.invoke(main, ["chain", "deploy", *common, "-o", str(dep_file), *periods])
    assert r.exit_code == 0, r.output
    assert keys[0].removeprefix("0x") not in r.output
    dep = Deployment.load(dep_file)
    assert (dep.thawing_period, dep.verifier_change_delay) == (60, 120)
    with_dep = [*common, "--deployment", str(dep_file)]

    r = runner.invoke(
        main,
        [
            "models",
            "register",
            *with_dep,
            "--model-hash",
            "0x" + "ab" * 32,
            "--rate",
            "0.002",
            "--metadata-uri",
            "ipfs://m",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "registered model 1" in r.output

    r = runner.invoke(main, ["models", "list", *with_dep])
    assert r.exit_code == 0, r.output
    assert "rate 0.002" in r.output and creator.address in r.output

    r = runner.invoke(main, ["models", "set-rate", *with_dep, "1", "0.003"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(main, ["models", "list", *with_dep])
    assert "rate 0.002 (-> 0.003" in r.output

    # The payer signs from a keystore with the password from the environment.
    keystore = tmp_path / "payer.json"
    keystore.write_text(json.dumps(Account.encrypt(keys[1], "pw")))
    client = ChainClient.connect(anvil_url, keys[0])
    client.use(dep)
    client.mint(payer.address, 10**18)
    monkeypatch.delenv("ZKMETER_PRIVATE_KEY")
    monkeypatch.setenv("ZKMETER_KEYSTORE_PASSWORD", "pw")
    ks = ["--keystore", str(keystore)]
    op = ["--operator", operator.address]
    r = runner.invoke(main, ["escrow", "deposit", *with_dep, *ks, *op, "0.0192"])
    assert r.exit_code == 0, r.output
    assert client.escrow_balance(payer.address, operator.address) == 19_200_000_000_000_000
    signer = Account.create()
    r = runner.invoke(main, ["escrow", "authorize-signer", *with_dep, *ks, signer.address])
    assert r.exit_code == 0, r.output
    assert client.is_authorized_signer(payer.address, signer.address)
    r = runner.invoke(main, ["escrow", "revoke-signer", *with_dep, *ks, signer.address])
    assert r.exit_code == 0 and "revoked from timestamp" in r.output, r.output

    # Negative twins: withdrawing before thawing ends, a wrong password, too many decimals.
    r = runner.invoke(main, ["escrow", "request-withdrawal", *with_dep, *ks, *op, "0.01"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(main, ["escrow", "balance", *with_dep, *op, payer.address])
    assert "0.0192" in r.output and "0.01 thawing until" in r.output, r.output
    r = runner.invoke(main, ["escrow", "withdraw", *with_dep, *ks, *op])
    assert r.exit_code != 0 and "StillThawing" in r.output
    client.advance_time(61)
    r = runner.invoke(main, ["escrow", "withdraw", *with_dep, *ks, *op])
    assert r.exit_code == 0 and "withdrew 0.01" in r.output, r.output
    r = runner.invoke(main, ["escrow", "balance", *with_dep, *op, payer.address])
    assert "escrow for" in r.output and ": 0.0092" in r.output
    r = runner.invoke(main, ["escrow", "deposit", *with_dep, *ks, "--operator", "0x12", "1"])
    assert r.exit_code != 0 and "not a 0x-prefixed 20-byte address" in r.output

    monkeypatch.setenv("ZKMETER_KEYSTORE_PASSWORD", "wrong")
    r = runner.invoke(main, ["escrow", "deposit", *with_dep, *ks, *op, "1"])
    assert r.exit_code != 0 and "cannot decrypt keystore" in r.output
    monkeypatch.setenv("ZKMETER_KEYSTORE_PASSWORD", "pw")
    r = runner.invoke(main, ["escrow", "deposit", *with_dep, *ks, *op, "0.0000000000000000001"])
    assert r.exit_code != 0 and "decimal places" in r.output

    # Verifier changes: proposed by the owner, applied only after the delay.
    monkeypatch.delenv("ZKMETER_KEYSTORE_PASSWORD")
    monkeypatch.setenv("ZKMETER_PRIVATE_KEY", keys[0])
    mock = client.deploy_contract("MockUsageVerifier", 8, True)
    ls = ["--log-size", "8"]
    r = runner.invoke(
        main, ["chain", "propose-verifier", *with_dep, *ls, "--verifier", mock.address]
    )
    assert r.exit_code == 0 and "apply-verifier --log-size 8" in r.output, r.output
    r = runner.invoke(main, ["chain", "verifiers", *with_dep])
    assert f"proposed {mock.address}" in r.output and "(none)" in r.output
    r = runner.invoke(main, ["chain", "apply-verifier", *with_dep, *ls])
    assert r.exit_code != 0 and "VerifierChangeNotReady" in r.output
    client.advance_time(121)
    r = runner.invoke(main, ["chain", "apply-verifier", *with_dep, *ls])
    assert r.exit_code == 0 and f"verifier now {mock.address}" in r.output, r.output
    assert Deployment.load(dep_file).verifiers == {8: mock.address}


def test_cli_refuses_without_a_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ZKMETER_PRIVATE_KEY", raising=False)
    r = CliRunner().invoke(
        main, ["chain", "deploy", "--rpc-url", "http://127.0.0.1:9", "-o", str(tmp_path / "d.json")]
    )
    assert r.exit_code != 0 and "no signing key" in r.output
