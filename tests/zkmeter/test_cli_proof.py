"""`zkmeter prove`, `zkmeter verify`, `zkmeter keys export` end to end on the worked example."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.support import REPO_ROOT
from tests.support.proofs import development_srs
from zkmeter.cli import main

EXAMPLE = REPO_ROOT / "examples" / "worked-receipts.json"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli")
    development_srs().save(path / "srs.bin")
    return path


@pytest.fixture(scope="module")
def proof_path(workdir: Path) -> Path:
    out = workdir / "proof.json"
    result = CliRunner().invoke(
        main, ["prove", str(EXAMPLE), "--srs", str(workdir / "srs.bin"), "-o", str(out), "-j", "1"]
    )
    assert result.exit_code == 0, result.output
    assert "9600 tokens" in result.output
    return out


def test_prove_then_verify_with_srs(workdir: Path, proof_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["verify", str(proof_path), "--srs", str(workdir / "srs.bin")]
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ACCEPTED")


def test_verify_with_exported_key(workdir: Path, proof_path: Path) -> None:
    vk = workdir / "vk.json"
    runner = CliRunner()
    exported = runner.invoke(
        main, ["keys", "export", "--srs", str(workdir / "srs.bin"), "-k", "8", "-o", str(vk)]
    )
    assert exported.exit_code == 0, exported.output
    result = runner.invoke(main, ["verify", str(proof_path), "--vk", str(vk)])
    assert result.exit_code == 0, result.output


def test_verify_rejects_a_changed_total(workdir: Path, proof_path: Path) -> None:
    data = json.loads(proof_path.read_text())
    data["public"]["aggregates"][0]["tokens"] = 9601
    forged = workdir / "forged.json"
    forged.write_text(json.dumps(data))
    result = CliRunner().invoke(main, ["verify", str(forged), "--srs", str(workdir / "srs.bin")])
    assert result.exit_code == 1
    assert "REJECTED: opening" in result.output


def test_verify_rejects_a_truncated_proof(workdir: Path, proof_path: Path) -> None:
    data = json.loads(proof_path.read_text())
    data["proof"]["bytes"] = data["proof"]["bytes"][:-64]
    forged = workdir / "short.json"
    forged.write_text(json.dumps(data))
    result = CliRunner().invoke(main, ["verify", str(forged), "--srs", str(workdir / "srs.bin")])
    assert result.exit_code == 1
    assert "bytes" in result.output


def test_prove_refuses_out_of_range_tokens_naming_the_receipt(workdir: Path) -> None:
    data = json.loads(EXAMPLE.read_text())
    data["receipts"][3]["tokens"] = 2**32
    for receipt in data["receipts"][3:]:  # a consistent file: cumulatives follow
        receipt["cumulative_tokens"] += 2**32 - 800
    bad = workdir / "bad-receipts.json"
    bad.write_text(json.dumps(data))
    result = CliRunner().invoke(
        main,
        ["prove", str(bad), "--srs", str(workdir / "srs.bin"), "-o", str(workdir / "x.json")],
    )
    assert result.exit_code == 1
    assert "nonce 4" in result.output and "2^32" in result.output
    assert not (workdir / "x.json").exists()


def test_prove_refuses_tokens_that_do_not_add_up_to_the_cumulative(workdir: Path) -> None:
    data = json.loads(EXAMPLE.read_text())
    data["receipts"][5]["tokens"] = 801
    bad = workdir / "inconsistent.json"
    bad.write_text(json.dumps(data))
    result = CliRunner().invoke(
        main,
        ["prove", str(bad), "--srs", str(workdir / "srs.bin"), "-o", str(workdir / "z.json")],
    )
    assert result.exit_code == 1
    assert "receipt 5: cumulative_tokens 4800 is not the previous receipt's 4000 + tokens 801" in (
        result.output
    )


def test_prove_refuses_a_v1_receipts_file_with_a_hint(workdir: Path) -> None:
    data = {**json.loads(EXAMPLE.read_text()), "format": "zkmeter-receipts-v1"}
    old = workdir / "v1.json"
    old.write_text(json.dumps(data))
    result = CliRunner().invoke(
        main, ["prove", str(old), "--srs", str(workdir / "srs.bin"), "-o", str(workdir / "v.json")]
    )
    assert result.exit_code == 1 and "re-sign them as channel states" in result.output


def test_prove_refuses_a_foreign_operator(workdir: Path) -> None:
    data = json.loads(EXAMPLE.read_text())
    data["receipts"][0]["operator"] = "0x" + "11" * 20
    bad = workdir / "foreign.json"
    bad.write_text(json.dumps(data))
    result = CliRunner().invoke(
        main,
        ["prove", str(bad), "--srs", str(workdir / "srs.bin"), "-o", str(workdir / "y.json")],
    )
    assert result.exit_code == 1
    assert "receipt 0" in result.output and "operator" in result.output


def test_packed_receipts_prove_to_the_same_statement(workdir: Path, proof_path: Path) -> None:
    """`zkmeter receipts pack` then `zkmeter prove` on the compact file: the same public
    inputs as from the JSON file, and the proof verifies; a corrupted file is refused."""
    packed = workdir / "receipts.bin"
    runner = CliRunner()
    result = runner.invoke(main, ["receipts", "pack", str(EXAMPLE), "-o", str(packed)])
    assert result.exit_code == 0, result.output
    out = workdir / "proof-packed.json"
    proved = runner.invoke(
        main, ["prove", str(packed), "--srs", str(workdir / "srs.bin"), "-o", str(out)]
    )
    assert proved.exit_code == 0, proved.output
    assert json.loads(out.read_text())["public"] == json.loads(proof_path.read_text())["public"]
    verified = runner.invoke(main, ["verify", str(out), "--srs", str(workdir / "srs.bin")])
    assert verified.exit_code == 0, verified.output
    corrupted = workdir / "corrupted.bin"
    data = bytearray(packed.read_bytes())
    data[-40] ^= 1
    corrupted.write_bytes(bytes(data))
    refused = runner.invoke(
        main, ["prove", str(corrupted), "--srs", str(workdir / "srs.bin"), "-o", str(out)]
    )
    assert refused.exit_code != 0 and "checksum" in refused.output


def test_prove_says_when_it_must_compute_the_lagrange_basis(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An SRS without a cached basis costs a G1 FFT (minutes at 2^20): said before it starts,
    and only the first time."""
    import warnings

    from prover.srs import SRS, InsecureSRSWarning

    monkeypatch.setenv("ZKMETER_CACHE", str(tmp_path / "cache"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureSRSWarning)
        SRS.insecure_development((1 << 8) + 8, seed=777).save(tmp_path / "srs.bin")
    args = ["prove", str(EXAMPLE), "--srs", str(tmp_path / "srs.bin"), "-o", str(tmp_path / "p")]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    assert "Lagrange basis for 2^8 rows: not cached" in first.output
    assert "computing it by G1 FFT" in first.output
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0, again.output
    assert "not cached" not in again.output
