"""The compiled contract artefacts (`contracts/artifacts/<Name>.json`, built by contracts.build)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

ARTIFACTS_DIR = Path(__file__).resolve().parent.parent / "artifacts"


class ArtifactError(FileNotFoundError):
    """An artefact is missing or has no such entry."""


@cache
def load_artifact(name: str) -> dict[str, Any]:
    """The compiled artefact `contracts/artifacts/<name>.json` (abi, bytecode, ...)."""
    path = ARTIFACTS_DIR / f"{name}.json"
    if not path.is_file():
        raise ArtifactError(f"no artefact {path}; run `python -m contracts.build`")
    artifact: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return artifact


def abi_function(artifact: str, name: str) -> dict[str, Any]:
    """The ABI entry of function `name` in `artifact`."""
    for item in load_artifact(artifact)["abi"]:
        if item.get("type") == "function" and item["name"] == name:
            return dict(item)
    raise ArtifactError(f"{artifact} has no function {name}")


def all_abis() -> list[list[dict[str, Any]]]:
    """The ABI of every artefact (for decoding any contract's custom errors)."""
    return [
        json.loads(path.read_text(encoding="utf-8")).get("abi", [])
        for path in sorted(ARTIFACTS_DIR.glob("*.json"))
    ]


__all__ = ["ARTIFACTS_DIR", "ArtifactError", "abi_function", "all_abis", "load_artifact"]
