"""Benchmark-session set-up.

The micro-benchmarks of the pure-Python arithmetic (``bench_field``, ``bench_msm``,
``bench_kzg``) measure the reference implementation: they run on the python backend
whatever ``ZKMETER_BACKEND`` says, so their rows keep meaning what the table says (ours in
Python against py_ecc / galois). ``bench_native`` sets the native core against those
baselines explicitly, and the end-to-end benchmarks (``bench_prove`` and the rest) run on
the default backend, native when it is built.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from verifier.backend import use_backend

PURE_PYTHON_MODULES = frozenset({"bench_field", "bench_msm", "bench_kzg"})


@pytest.fixture(scope="module", autouse=True)
def _pure_python_benchmarks(request: pytest.FixtureRequest) -> Iterator[None]:
    if request.module.__name__.rsplit(".", 1)[-1] in PURE_PYTHON_MODULES:
        with use_backend("python"):
            yield
    else:
        yield
