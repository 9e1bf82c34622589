"""Deterministic build of the Solidity contracts: `python -m contracts.build`.

Sources under `contracts/src/` (deployable) and `contracts/test/` (test-only) are compiled with
the pinned solc from `node_modules` (its standard-JSON API through `require('solc')`). Imports are
resolved here, in Python, so that every source unit — ours and OpenZeppelin's — is handed to solc
inline under a stable, machine-independent name; `@openzeppelin/` is remapped to
`node_modules/@openzeppelin/`. Nothing absolute or time-dependent enters the input, so the
output is byte-identical on every machine, and `tests/contracts/test_artifacts.py` can rebuild
and compare against the committed artefacts.

Outputs, in `contracts/artifacts/`:
- `<Name>.json`: `{"abi", "bytecode", "deployedBytecode", "contractName", "sourceName"}`;
- `build-info.json`: solc version, compiler settings, remappings and the sha256 of every source.
All JSON is written with sorted keys, two-space indent and a trailing newline.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
CONTRACTS_DIR = REPO_ROOT / "contracts"
ARTIFACTS_DIR = CONTRACTS_DIR / "artifacts"
SOURCE_DIRS = ("contracts/src", "contracts/test")
SOLC_PACKAGE = REPO_ROOT / "node_modules" / "solc"

#: Node program: standard JSON in on stdin (read as a stream: solcjs' own synchronous read of a
#: pipe fails with EAGAIN), standard JSON out on stdout. No import callback: every source is inline.
_NODE_COMPILE = """
const solc = require(process.argv[1]);
if (process.argv[2] === "--version") { process.stdout.write(solc.version()); process.exit(0); }
const chunks = [];
process.stdin.on("data", (c) => chunks.push(c));
process.stdin.on("end", () => {
  process.stdout.write(solc.compile(Buffer.concat(chunks).toString("utf8")));
});
"""

#: Import prefix -> directory (relative to the repository root) it is read from.
REMAPPINGS: dict[str, str] = {"@openzeppelin/": "node_modules/@openzeppelin/"}

#: Compiler settings. `prague` because solc 0.8.37 defaults to `osaka`, which py-evm cannot run.
SETTINGS: dict[str, Any] = {
    "evmVersion": "prague",
    "optimizer": {"enabled": True, "runs": 200},
    "metadata": {"bytecodeHash": "ipfs"},
    "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}},
}

_IMPORT_RE = re.compile(r"""^\s*import\s+(?:[^;]*?\s+from\s+)?["']([^"']+)["']\s*;""", re.MULTILINE)


class BuildError(Exception):
    """The toolchain is missing or solc reported errors."""


def _unit_to_path(unit: str, root: Path) -> Path:
    """The file a source unit name is read from (after remapping)."""
    for prefix, target in REMAPPINGS.items():
        if unit.startswith(prefix):
            return root / (target + unit[len(prefix) :])
    return root / unit


def _resolve_import(importer: str, imported: str) -> str:
    """Source unit name of `imported` as solc resolves it from unit `importer`."""
    if not imported.startswith("."):
        return imported
    parts = importer.split("/")[:-1]
    for piece in imported.split("/"):
        if piece == "..":
            if not parts:
                raise BuildError(f"import {imported!r} in {importer} climbs above the root")
            parts.pop()
        elif piece != ".":
            parts.append(piece)
    return "/".join(parts)


def collect_sources(root: Path = REPO_ROOT) -> dict[str, str]:
    """All source units reachable from our .sol files, by unit name, in sorted order."""
    pending = sorted(
        str(p.relative_to(root)) for d in SOURCE_DIRS for p in (root / d).glob("*.sol")
    )
    if not pending:
        raise BuildError(f"no .sol files under {', '.join(SOURCE_DIRS)} in {root}")
    sources: dict[str, str] = {}
    while pending:
        unit = pending.pop()
        if unit in sources:
            continue
        path = _unit_to_path(unit, root)
        if not path.is_file():
            raise BuildError(
                f"cannot find source {unit!r} (looked at {path}); run `npm ci` for node_modules"
            )
        text = path.read_text(encoding="utf-8")
        sources[unit] = text
        pending.extend(_resolve_import(unit, imp) for imp in _IMPORT_RE.findall(text))
    return dict(sorted(sources.items()))


def _node(args: list[str], stdin: str) -> str:
    if shutil.which("node") is None:
        raise BuildError("node is not installed (needed to run solc from node_modules)")
    if not (SOLC_PACKAGE / "package.json").is_file():
        raise BuildError(
            f"{SOLC_PACKAGE} missing: run `npm ci --no-audit --no-fund` in {REPO_ROOT}"
        )
    proc = subprocess.run(
        ["node", "-e", _NODE_COMPILE, str(SOLC_PACKAGE), *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=False,
    )
    if proc.returncode != 0:
        raise BuildError(f"solc (node) failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def run_solc(standard_input: dict[str, Any]) -> dict[str, Any]:
    output: dict[str, Any] = json.loads(_node([], json.dumps(standard_input)))
    errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise BuildError("solc errors:\n" + "\n".join(e["formattedMessage"] for e in errors))
    return output


def solc_version() -> str:
    """The full version string of the pinned solc, e.g. `0.8.37+commit.<hash>.Emscripten.clang`."""
    return _node(["--version"], "").strip()


def dumps(obj: object) -> str:
    """The one stable JSON formatting of every artefact."""
    return json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=True) + "\n"


def build_artifacts(root: Path = REPO_ROOT) -> dict[str, str]:
    """Compile and return {file name: JSON text} of every artefact (nothing is written)."""
    sources = collect_sources(root)
    standard_input = {
        "language": "Solidity",
        "sources": {unit: {"content": text} for unit, text in sources.items()},
        "settings": SETTINGS,
    }
    output = run_solc(standard_input)
    files: dict[str, str] = {}
    ours = [u for u in sources if any(u.startswith(d + "/") for d in SOURCE_DIRS)]
    for unit in ours:
        for name, contract in sorted(output["contracts"].get(unit, {}).items()):
            if f"{name}.json" in files:
                raise BuildError(f"two contracts named {name}")
            files[f"{name}.json"] = dumps(
                {
                    "contractName": name,
                    "sourceName": unit,
                    "abi": contract["abi"],
                    "bytecode": "0x" + contract["evm"]["bytecode"]["object"],
                    "deployedBytecode": "0x" + contract["evm"]["deployedBytecode"]["object"],
                }
            )
    files["build-info.json"] = dumps(
        {
            "solcVersion": solc_version(),
            "settings": SETTINGS,
            "remappings": REMAPPINGS,
            "sources": {
                unit: {
                    "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
                    "testOnly": unit.startswith("contracts/test/"),
                }
                for unit, text in sources.items()
            },
        }
    )
    return files


def write_artifacts(out_dir: Path, files: dict[str, str]) -> None:
    """Replace the .json files in `out_dir` with `files`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob("*.json"):
        if stale.name not in files:
            stale.unlink()
    for name, text in files.items():
        (out_dir / name).write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m contracts.build", description=__doc__)
    parser.add_argument("-o", "--out", type=Path, default=ARTIFACTS_DIR, help="output directory")
    args = parser.parse_args(argv)
    try:
        files = build_artifacts()
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    write_artifacts(args.out, files)
    print(f"wrote {len(files)} artefacts to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
