"""The layout's rules, checked over the import graph of the source tree (every `import` and
`from ... import` statement, at any depth, read with `ast`).

Dependencies point one way (README "Layout"):

    circuits <- verifier <- prover <- channels <- operator_service <- zkmeter
                  verifier <- contracts <------------/

and some packages must stay free of some libraries: the proving engine and the checking code
do no I/O of chain, HTTP or database kind, and only the chain client talks to web3.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import REPO_ROOT

#: Package -> the project packages it may import (besides itself).
ALLOWED: dict[str, frozenset[str]] = {
    "circuits": frozenset(),
    "verifier": frozenset({"circuits"}),
    "prover": frozenset({"circuits", "verifier"}),
    "contracts": frozenset({"circuits", "verifier"}),
    "channels": frozenset({"circuits", "verifier", "prover"}),
    "operator_service": frozenset({"circuits", "verifier", "prover", "contracts", "channels"}),
    "zkmeter": frozenset(
        {"circuits", "verifier", "prover", "contracts", "channels", "operator_service"}
    ),
    "benches": frozenset(
        {"circuits", "verifier", "prover", "contracts", "channels", "operator_service", "zkmeter"}
    ),
}
PROJECT = frozenset(ALLOWED) | {"tests"}

#: Libraries a package must not import (chain, HTTP, database, migrations and metrics: the
#: operator service's I/O).
SERVICE_LIBRARIES = frozenset(
    {
        "web3",
        "eth_tester",
        "aiohttp",
        "sqlite3",
        "psycopg",
        "asyncpg",
        "sqlalchemy",
        "alembic",
        "prometheus_client",
    }
)
FORBIDDEN: dict[str, frozenset[str]] = {
    "circuits": SERVICE_LIBRARIES | {"eth_account", "urllib", "socket", "subprocess"},
    "verifier": SERVICE_LIBRARIES | {"eth_account", "urllib", "socket", "subprocess"},
    "prover": SERVICE_LIBRARIES | {"eth_account", "urllib", "socket"},
    "channels": frozenset({"web3", "eth_tester", "aiohttp"}),
}
#: Only the chain client talks to web3 (DESIGN "Code layout").
WEB3 = frozenset({"web3", "eth_tester"})
WEB3_HOME = "contracts/client/"


def _python_files(package: str) -> Iterator[Path]:
    yield from sorted((REPO_ROOT / package).rglob("*.py"))


def imported_modules(path: Path) -> set[str]:
    """The top-level names of every module `path` imports (relative imports excluded)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def violations(package: str) -> list[str]:
    """Every import in `package` that breaks a rule, as 'file: imports name (why)'."""
    found = []
    for path in _python_files(package):
        where = path.relative_to(REPO_ROOT).as_posix()
        for name in sorted(imported_modules(path)):
            if name in PROJECT and name != package and name not in ALLOWED[package]:
                found.append(f"{where}: imports {name} (a package above {package})")
            if name in FORBIDDEN.get(package, ()):
                found.append(f"{where}: imports {name} (not allowed in {package}/)")
            if name in WEB3 and not where.startswith(WEB3_HOME):
                found.append(f"{where}: imports {name} (only {WEB3_HOME} talks to web3)")
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_dependencies_point_one_way(package: str) -> None:
    assert violations(package) == []


def test_the_rule_catches_an_upward_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Twin: a prover module importing the operator service, or web3, is reported."""
    fake = tmp_path / "prover"
    fake.mkdir()
    (fake / "bad.py").write_text(
        "import web3\nfrom operator_service.store import ReceiptStore\n"
        "def f():\n    from contracts.client import ChainClient\n"
    )
    monkeypatch.setattr(f"{__name__}.REPO_ROOT", tmp_path)
    found = violations("prover")
    assert any("operator_service (a package above prover)" in v for v in found)
    assert any("contracts (a package above prover)" in v for v in found)  # nested imports too
    assert any("web3 (not allowed in prover/)" in v for v in found)
    assert any("only contracts/client/ talks to web3" in v for v in found)


def test_every_package_is_ruled() -> None:
    """A new top-level package must get its place in ALLOWED."""
    packages = {
        p.name
        for p in REPO_ROOT.iterdir()
        if (p / "__init__.py").is_file() and p.name not in {"tests", "node_modules"}
    }
    assert packages <= set(ALLOWED), packages - set(ALLOWED)
