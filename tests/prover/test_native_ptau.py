"""snarkjs .ptau files on the native path: the G1 powers decoded natively equal the
pure-Python decoding, and the Lagrange bases of a prepared (phase 2) file, read from its
section 12, equal the G1 FFT of the same powers: snarkjs' domains are ours."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from prover import native
from prover.srs import G1Points, SRSError, import_ptau, lagrange_basis
from tests.support import REPO_ROOT
from verifier.backend import use_backend

SNARKJS = REPO_ROOT / "node_modules" / ".bin" / "snarkjs"
POWER = 5

pytestmark = [
    pytest.mark.node,
    pytest.mark.skipif(not native.available(), reason="zkmeter_native not built"),
]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not SNARKJS.exists() or shutil.which("node") is None:
        pytest.skip("node_modules/.bin/snarkjs or node missing: run `npm ci`")
    d = tmp_path_factory.mktemp("ptau-prepared")
    steps = [
        ["powersoftau", "new", "bn128", str(POWER), "p0.ptau"],
        ["powersoftau", "contribute", "p0.ptau", "p1.ptau", "--name=t", "-e=zkmeter entropy"],
        ["powersoftau", "prepare", "phase2", "p1.ptau", "p2.ptau"],
    ]
    for step in steps:
        subprocess.run([str(SNARKJS), *step], cwd=d, check=True, capture_output=True)
    return d / "p2.ptau"


def test_native_and_python_decodings_agree(prepared: Path) -> None:
    with use_backend("native"):
        fast = import_ptau(prepared)
    with use_backend("python"):
        slow = import_ptau(prepared)
    assert isinstance(fast.g1_powers, G1Points)
    assert fast.digest == slow.digest


@pytest.mark.parametrize("k", [2, 3, POWER])
def test_lagrange_sections_equal_the_g1_fft(prepared: Path, k: int) -> None:
    with use_backend("native"):
        srs = import_ptau(prepared, lagrange_log_sizes=(k,))
        from_file = lagrange_basis(srs, k)  # the section, remembered at import
        handle = native.lagrange_basis(native.bases_for(srs.g1_powers[: 1 << k]), k)
    assert from_file == G1Points(handle.to_affine_bytes())
    with use_backend("python"):
        assert list(import_ptau(prepared, lagrange_log_sizes=(k,)).g1_powers) == list(srs.g1_powers)


def test_a_basis_beyond_the_file_is_refused(prepared: Path) -> None:
    with pytest.raises(SRSError, match="no Lagrange basis"):
        import_ptau(prepared, lagrange_log_sizes=(POWER + 1,))
