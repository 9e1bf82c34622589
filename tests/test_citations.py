"""Every file, module and PROTOCOL section that the docs and the code's comments cite exists.

Cited are: repository paths (`prover/prover.py`, `docs/SRS.md`), anywhere; sections of the
specification (`PROTOCOL §5.4`, `docs/PROTOCOL.md §11`), anywhere; and, in Markdown, dotted
names of our packages in backticks (`operator_service.archive`, `prover.witness.UsageRow`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path

from tests.support import REPO_ROOT

PACKAGES = (
    "circuits",
    "verifier",
    "prover",
    "contracts",
    "channels",
    "operator_service",
    "zkmeter",
)
FOLDERS = (*PACKAGES, "benches", "tests", "docs", "examples")

PATH_RE = re.compile(
    r"(?<![\w/.-])((?:" + "|".join(FOLDERS) + r")/[\w/.-]*\.(?:py|md|sol|json|circom|mjs|toml))"
)
DOTTED_RE = re.compile(r"`((?:" + "|".join(PACKAGES) + r")(?:\.[A-Za-z_]\w*)+)")
SECTION_RE = re.compile(r"PROTOCOL(?:\.md)?\s*§\s*(\d+(?:\.\d+)?)")
#: Backticked names that look like ours but are not modules: byte strings and logger names.
NOT_CITATIONS = frozenset(
    {"zkmeter.usage.v1", "zkmeter.usage.v2", "zkmeter.insecure", "zkmeter.daemon"}
)


def _sources() -> Iterator[Path]:
    for pattern in ("*.md", "docs/*.md", "zkmeter/peers/README.md"):
        yield from sorted(REPO_ROOT.glob(pattern))
    for folder in (*PACKAGES, "benches", "tests"):
        for path in sorted((REPO_ROOT / folder).rglob("*")):
            if path.suffix in (".py", ".sol") and path.name != "test_citations.py":
                yield path


@cache
def _protocol_sections() -> frozenset[str]:
    text = (REPO_ROOT / "docs" / "PROTOCOL.md").read_text(encoding="utf-8")
    return frozenset(re.findall(r"^#{2,3} (\d+(?:\.\d+)?)\.? ", text, re.MULTILINE))


def _defines(module: Path, name: str) -> bool:
    text = module.read_text(encoding="utf-8")
    word = re.escape(name)
    pattern = rf"^(?:class|def|async def) {word}\b|^{word}\s*[:=]|import .*\b{word}\b"
    if re.search(pattern, text, re.MULTILINE):
        return True
    return bool(re.search(rf"^\s+{re.escape(name)},?$", text, re.MULTILINE))  # in an import list


def dotted_exists(dotted: str) -> bool:
    """True if `a.b.c` is a module of the tree, or a module and a name it defines (members of
    that name are not checked)."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        base = REPO_ROOT.joinpath(*parts[:cut])
        module = (
            base.with_suffix(".py") if base.with_suffix(".py").is_file() else base / "__init__.py"
        )
        if module.is_file():
            rest = parts[cut:]
            return not rest or _defines(module, rest[0])
    return False


def citations(text: str, suffix: str) -> Iterator[tuple[str, str]]:
    """(kind, cited text) for every citation in `text`, from a file ending in `suffix`."""
    for match in PATH_RE.finditer(text):
        yield "path", match.group(1).rstrip(".")
    if suffix == ".md":
        for match in DOTTED_RE.finditer(text):
            yield "name", match.group(1)
    for match in SECTION_RE.finditer(text):
        yield "section", match.group(1)


def broken(where: str, text: str, suffix: str) -> list[str]:
    """What `text` (the file `where`) cites that does not exist."""
    out = []
    for kind, cited in citations(text, suffix):
        if kind == "path" and not (REPO_ROOT / cited).exists() and "<" not in cited:
            out.append(f"{where}: cites {cited}, which does not exist")
        elif kind == "name" and cited not in NOT_CITATIONS and not dotted_exists(cited):
            out.append(f"{where}: cites {cited}, which no module defines")
        elif kind == "section" and cited not in _protocol_sections():
            out.append(f"{where}: cites PROTOCOL §{cited}, which has no such section")
    return out


def test_every_citation_exists() -> None:
    problems = [
        problem
        for path in _sources()
        for problem in broken(
            path.relative_to(REPO_ROOT).as_posix(), path.read_text(encoding="utf-8"), path.suffix
        )
    ]
    assert problems == []


def test_a_stale_citation_is_caught() -> None:
    """Twin: a doc naming a moved file, a gone module or a missing section is reported."""
    stale = "See prover/daemon.py, `prover.receipts.Admission` and PROTOCOL §99; prover/prover.py."
    found = broken("README.md", stale, ".md")
    assert len(found) == 3
    assert any("prover/daemon.py" in f for f in found)
    assert any("prover.receipts.Admission" in f for f in found)
    assert any("§99" in f for f in found)
