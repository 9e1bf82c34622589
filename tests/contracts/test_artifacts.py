"""The committed contract artefacts are exactly what the pinned solc builds from the sources."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from contracts import build

pytestmark = [
    pytest.mark.node,
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("node") is None or not (build.SOLC_PACKAGE / "package.json").is_file(),
        reason="needs node and node_modules/solc (run `npm ci`)",
    ),
]


def test_committed_artifacts_are_up_to_date(tmp_path: Path) -> None:
    files = build.build_artifacts()
    build.write_artifacts(tmp_path, files)
    committed = sorted(p.name for p in build.ARTIFACTS_DIR.glob("*.json"))
    assert committed == sorted(files), "artefact set differs: run `python -m contracts.build`"
    stale = [
        name
        for name in committed
        if (build.ARTIFACTS_DIR / name).read_bytes() != (tmp_path / name).read_bytes()
    ]
    assert not stale, f"stale artefacts {stale}: run `python -m contracts.build` and commit"


def test_build_info_pins_prague_and_hashes_every_source() -> None:
    info = json.loads((build.ARTIFACTS_DIR / "build-info.json").read_text())
    assert info["settings"]["evmVersion"] == "prague"
    assert info["settings"]["optimizer"] == {"enabled": True, "runs": 200}
    assert info["solcVersion"].startswith("0.8.37")
    sources = build.collect_sources()
    assert sorted(info["sources"]) == sorted(sources)
    assert info["sources"]["contracts/test/MockUsageVerifier.sol"]["testOnly"] is True
    assert info["sources"]["contracts/src/UsageSettlement.sol"]["testOnly"] is False


def test_tampered_source_changes_the_build(tmp_path: Path) -> None:
    """Negative twin: the check does catch a source edited after the build."""
    root = tmp_path / "repo"
    for d in build.SOURCE_DIRS:
        shutil.copytree(build.REPO_ROOT / d, root / d)
    (root / "node_modules").symlink_to(build.REPO_ROOT / "node_modules")
    token = root / "contracts/src/OpenToken.sol"
    token.write_text(token.read_text().replace('"Open Token"', '"Open Token 2"'))
    files = build.build_artifacts(root)
    assert files["OpenToken.json"] != (build.ARTIFACTS_DIR / "OpenToken.json").read_text()
    assert files["ModelRegistry.json"] == (build.ARTIFACTS_DIR / "ModelRegistry.json").read_text()
