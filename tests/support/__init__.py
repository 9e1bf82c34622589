"""Helpers shared by the test packages (fixtures that use them are in tests/conftest.py)."""

from pathlib import Path

#: The repository's root folder.
REPO_ROOT = Path(__file__).resolve().parents[2]
