"""contracts/codegen.py: the committed generated verifiers are a fresh render of the gates."""

from __future__ import annotations

from pathlib import Path

import pytest

from circuits.usage_batch import Layout
from contracts import codegen


def test_committed_generated_verifiers_are_up_to_date() -> None:
    assert codegen.stale_files() == [], "run `python -m contracts.codegen` and commit"


def test_check_mode_flags_an_edited_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Negative twin: a generated file edited by hand is reported stale."""
    for path, text in codegen.rendered().items():
        (tmp_path / path.name).write_text(text)
    monkeypatch.setattr(codegen, "SRC_DIR", tmp_path)
    assert codegen.main(["--check"]) == 0
    edited = tmp_path / "UsageVerifier8.sol"
    edited.write_text(edited.read_text().replace("mulmod(acc", "addmod(acc", 1))
    assert codegen.main(["--check"]) == 1
    assert codegen.stale_files() == [edited]


def test_one_variant_per_limb_layout() -> None:
    variants = codegen.variants()
    assert [(v.contract, v.limb_bits, v.min_log, v.max_log) for v in variants] == [
        ("UsageVerifier8", 8, 8, 20),
    ]


@pytest.mark.parametrize("k", [8, 16])
def test_offsets_match_the_proof_layout(k: int) -> None:
    from verifier.proof import proof_size

    layout = Layout(k)
    table = {name: value for name, value, _ in codegen.offsets(layout)}
    assert table["PROOF_SIZE"] == proof_size(layout)
    assert table["PROOF_COMMIT_KEY"] == 0
    assert table["PROOF_ROUND1_END"] == 64 * len(layout.round1_columns)
    assert table["PROOF_EVAL_PHI_NEXT"] == table["PROOF_COMMIT_W_ZETA"] - 32


def test_every_gate_appears_in_the_rendered_source() -> None:
    for variant in codegen.variants():
        source = codegen.render(variant)
        for gate in variant.layout.gates():
            assert f"// {gate.name}" in source
