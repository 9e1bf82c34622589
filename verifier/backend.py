"""Which arithmetic backend runs: the native core (``zkmeter_native``) or pure Python.

``zkmeter_native`` (arkworks on BN254, bound with PyO3; built from ``native/``) is optional
for now: when it cannot be imported, everything runs on the pure-Python code, which stays
the reference the native core is tested against. The choice, in this order:

1. inside ``with use_backend("python" | "native" | "auto"):`` (tests, benchmarks);
2. the environment variable ``ZKMETER_BACKEND`` = ``auto`` (the default), ``native`` or
   ``python``;

``auto`` takes the native core when it imports. ``native`` without it raises
``NativeUnavailableError`` at the first dispatch rather than silently running slow.

This module sits in ``verifier/`` so that the verifier (the pairing check) and the prover
(``prover.native``) share one switch without the verifier depending on the prover.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Final, Literal

Backend = Literal["auto", "native", "python"]

BACKEND_ENV: Final[str] = "ZKMETER_BACKEND"
BACKENDS: Final[tuple[Backend, ...]] = ("auto", "native", "python")

try:
    import zkmeter_native as _native_module

    _NATIVE: ModuleType | None = _native_module
    _IMPORT_ERROR: str | None = None
except ImportError as exc:  # not built: the pure-Python path runs
    _NATIVE = None
    _IMPORT_ERROR = f"{type(exc).__name__}: {exc}"

_override: list[Backend] = []


class NativeUnavailableError(RuntimeError):
    """The native backend was required but ``zkmeter_native`` cannot be imported."""


class BackendChoiceError(ValueError):
    """``ZKMETER_BACKEND`` or ``use_backend`` names no known backend."""


def available() -> bool:
    """True iff the native core ``zkmeter_native`` imported."""
    return _NATIVE is not None


def unavailable_reason() -> str | None:
    """Why ``zkmeter_native`` did not import (None when it did)."""
    return _IMPORT_ERROR


def requested() -> Backend:
    """The backend asked for: the innermost ``use_backend``, else ``ZKMETER_BACKEND``."""
    if _override:
        return _override[-1]
    value = os.environ.get(BACKEND_ENV, "auto").strip().lower() or "auto"
    if value not in BACKENDS:
        raise BackendChoiceError(f"{BACKEND_ENV}={value!r}: expected one of {', '.join(BACKENDS)}")
    return value


def native_module() -> ModuleType | None:
    """The ``zkmeter_native`` module when the native backend is to run, else None.

    Raises ``NativeUnavailableError`` if ``native`` is requested and the module is missing."""
    choice = requested()
    if choice == "python":
        return None
    if _NATIVE is None and choice == "native":
        raise NativeUnavailableError(
            f"the native backend was requested ({BACKEND_ENV} or use_backend) but "
            f"zkmeter_native does not import ({_IMPORT_ERROR}); build it with `make setup` "
            "or `pip install ./native`"
        )
    return _NATIVE


def use_native() -> bool:
    """True iff the dispatching functions should call the native core now."""
    return native_module() is not None


@contextmanager
def use_backend(choice: Backend) -> Iterator[None]:
    """Run the block with ``choice`` as the backend (nests; restores on exit)."""
    if choice not in BACKENDS:
        raise BackendChoiceError(f"backend {choice!r}: expected one of {', '.join(BACKENDS)}")
    _override.append(choice)
    try:
        native_module()  # fail on entry, not at some later dispatch
        yield
    finally:
        _override.pop()
