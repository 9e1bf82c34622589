"""prover.srs: development SRS, file format, validation, Lagrange basis, .ptau import, CLI."""

from __future__ import annotations

import random
import shutil
import struct
import subprocess
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner
from py_ecc import optimized_bn128 as bn

from circuits.usage_batch import SRS_HEADROOM
from prover import srs as srs_module
from prover.srs import (
    SRS,
    InsecureSRSWarning,
    SRSError,
    fixed_base_multiples,
    import_ptau,
    insecure_development_with_tau,
    lagrange_basis,
    lagrange_cache_path,
)
from tests.support import REPO_ROOT
from verifier.constants import P, R
from verifier.curve import g2_to_bytes
from verifier.fr import root_of_unity
from verifier.transcript import keccak256
from zkmeter.cli import main

REPO = REPO_ROOT
SNARKJS = REPO / "node_modules" / ".bin" / "snarkjs"


def g1_mul(k: int) -> tuple[int, int]:
    pt = bn.multiply(bn.G1, k % R)
    if bn.is_inf(pt):
        return (0, 0)
    x, y = bn.normalize(pt)
    return (int(x), int(y))


def dev_srs(n: int, seed: int = 1) -> tuple[SRS, int]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureSRSWarning)
        return insecure_development_with_tau(n, seed=seed)


@pytest.fixture(scope="module")
def small() -> tuple[SRS, int]:
    return dev_srs(20, seed=11)


def with_checksum(body: bytes) -> bytes:
    return body + keccak256(body)


# ---- generation -------------------------------------------------------------------------------


def test_dev_srs_warns_loudly() -> None:
    with pytest.warns(InsecureSRSWarning, match="INSECURE: development SRS, tau is known"):
        SRS.insecure_development(4, seed=3)


def test_dev_srs_powers_are_powers_of_tau(small: tuple[SRS, int]) -> None:
    s, tau = small
    assert s.g1_powers[0] == (1, 2)
    for i in (1, 2, 7, 19):
        assert s.g1_powers[i] == g1_mul(pow(tau, i, R))
    assert bn.eq(s.g2_one, bn.G2)
    assert bn.eq(s.g2_tau, bn.multiply(bn.G2, tau))
    assert s.max_degree == 19
    assert s.n_powers == 20


def test_dev_srs_seed_is_deterministic() -> None:
    a, tau_a = dev_srs(6, seed=5)
    b, tau_b = dev_srs(6, seed=5)
    c, tau_c = dev_srs(6, seed=6)
    assert tau_a == tau_b and a.digest == b.digest
    assert tau_c != tau_a and c.digest != a.digest


def test_fixed_base_multiples_against_py_ecc() -> None:
    scalars = [0, 1, 2, R - 1, 2**200 + 12345, 3**150 % R, 255, 256]
    assert fixed_base_multiples((1, 2), scalars) == [g1_mul(k) for k in scalars]


def test_too_few_powers_rejected() -> None:
    with pytest.raises(SRSError):
        dev_srs(1)


# ---- file format --------------------------------------------------------------------------------


def test_save_load_round_trip(small: tuple[SRS, int], tmp_path: Path) -> None:
    s, _ = small
    path = tmp_path / "s.srs"
    s.save(path)
    data = path.read_bytes()
    assert data[:8] == b"ZKMSRS01"
    assert struct.unpack(">I", data[8:12]) == (20,)
    assert len(data) == 12 + 20 * 64 + 2 * 128 + 32
    assert data[-32:] == keccak256(data[:-32]) == s.digest
    loaded = SRS.load(path)
    assert loaded == s and hash(loaded) == hash(s)
    assert loaded.g1_powers == s.g1_powers
    assert loaded.digest == s.digest
    assert g2_to_bytes(loaded.g2_tau) == g2_to_bytes(s.g2_tau)


def test_load_rejects_bad_magic(small: tuple[SRS, int]) -> None:
    data = small[0].to_bytes()
    with pytest.raises(SRSError, match="magic"):
        SRS.from_bytes(with_checksum(b"ZKMSRS02" + data[8:-32]))


def test_load_rejects_truncated(small: tuple[SRS, int]) -> None:
    data = small[0].to_bytes()
    with pytest.raises(SRSError, match="size"):
        SRS.from_bytes(data[:-1])
    with pytest.raises(SRSError, match="too short"):
        SRS.from_bytes(data[:5])


def test_load_rejects_checksum_mismatch(small: tuple[SRS, int]) -> None:
    data = bytearray(small[0].to_bytes())
    data[12 + 64 * 3 + 5] ^= 1
    with pytest.raises(SRSError, match="checksum"):
        SRS.from_bytes(bytes(data))


def test_load_rejects_point_off_curve(small: tuple[SRS, int]) -> None:
    body = bytearray(small[0].to_bytes()[:-32])
    off = 12 + 64 * 4 + 63
    body[off] ^= 1  # y of power 4, checksum recomputed: only the curve check can catch it
    with pytest.raises(SRSError, match="G1 power 4"):
        SRS.from_bytes(with_checksum(bytes(body)))


def test_load_rejects_g2_outside_subgroup(small: tuple[SRS, int]) -> None:
    from tests.prover.test_kzg import twist_point_outside_subgroup

    bad = twist_point_outside_subgroup()
    body = bytearray(small[0].to_bytes()[:-32])
    off = 12 + 64 * 20 + 128
    body[off : off + 128] = g2_to_bytes(bad)
    with pytest.raises(SRSError, match=r"\[tau\]_2"):
        SRS.from_bytes(with_checksum(bytes(body)))


def test_load_rejects_inconsistent_powers(small: tuple[SRS, int]) -> None:
    """Valid points, valid checksum, but power 5 replaced by power 6: the pairing check."""
    s, _ = small
    body = bytearray(s.to_bytes()[:-32])
    body[12 + 64 * 5 : 12 + 64 * 6] = body[12 + 64 * 6 : 12 + 64 * 7]
    with pytest.raises(SRSError, match="pairing"):
        SRS.from_bytes(with_checksum(bytes(body)))
    # the same file passes when the pairing check is skipped (it is the one catching it)
    SRS.from_bytes(with_checksum(bytes(body)), check_pairing=False)


def test_load_rejects_other_tau_in_g2(small: tuple[SRS, int]) -> None:
    s, tau = small
    forged = SRS(s.g1_powers, s.g2_one, bn.multiply(bn.G2, tau + 1))
    with pytest.raises(SRSError, match="pairing"):
        SRS.from_bytes(forged.to_bytes())


def test_load_rejects_wrong_generator(small: tuple[SRS, int]) -> None:
    s, _ = small
    forged = SRS([g1_mul(2), *s.g1_powers[1:]], s.g2_one, s.g2_tau)
    with pytest.raises(SRSError, match="generator"):
        SRS.from_bytes(forged.to_bytes(), check_pairing=False)


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SRSError, match="cannot read"):
        SRS.load(tmp_path / "nope.srs")


# ---- Lagrange basis -----------------------------------------------------------------------------


def lagrange_at(i: int, tau: int, k: int) -> int:
    """L_i(tau) = omega^i (tau^N - 1) / (N (tau - omega^i))."""
    n = 1 << k
    wi = pow(root_of_unity(k), i, R)
    return wi * (pow(tau, n, R) - 1) * pow(n * (tau - wi), -1, R) % R


@pytest.mark.parametrize("k", [0, 1, 3, 4])
def test_lagrange_basis_direct(
    small: tuple[SRS, int], k: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZKMETER_CACHE", str(tmp_path))
    s, tau = small
    basis = lagrange_basis(s, k, use_disk_cache=False)
    assert basis == [g1_mul(lagrange_at(i, tau, k)) for i in range(1 << k)]


def test_lagrange_basis_too_large(small: tuple[SRS, int]) -> None:
    with pytest.raises(SRSError, match="needs 32"):
        lagrange_basis(small[0], 5)


def test_lagrange_disk_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZKMETER_CACHE", str(tmp_path))
    s, _tau = dev_srs(10, seed=99)
    basis = lagrange_basis(s, 3)
    path = lagrange_cache_path(s, 3)
    assert path.parent == tmp_path and path.exists()
    assert s.digest.hex() in path.name
    # a fresh process (empty memo) reads the file instead of recomputing
    srs_module._LAGRANGE_MEMO.clear()
    monkeypatch.setattr(srs_module, "_inverse_dft_g1", _must_not_run)
    assert lagrange_basis(s, 3) == basis


def test_lagrange_corrupt_cache_is_recomputed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZKMETER_CACHE", str(tmp_path))
    s, tau = dev_srs(10, seed=98)
    basis = lagrange_basis(s, 2)
    path = lagrange_cache_path(s, 2)
    data = bytearray(path.read_bytes())
    data[50] ^= 0xFF
    path.write_bytes(bytes(data))
    srs_module._LAGRANGE_MEMO.clear()
    with pytest.warns(UserWarning, match="bad Lagrange cache"):
        again = lagrange_basis(s, 2)
    assert again == basis == [g1_mul(lagrange_at(i, tau, 2)) for i in range(4)]


def _must_not_run(*args: object, **kwargs: object) -> list[tuple[int, int]]:
    raise AssertionError("the Lagrange basis was recomputed instead of read from the cache")


# ---- snarkjs .ptau ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ptau_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if not SNARKJS.exists():
        pytest.skip("node_modules/.bin/snarkjs missing: run `npm ci` (CI has it)")
    if shutil.which("node") is None:
        pytest.skip("node is not on PATH")
    d = tmp_path_factory.mktemp("ptau")
    fresh, contributed = d / "a.ptau", d / "b.ptau"
    subprocess.run(
        [str(SNARKJS), "powersoftau", "new", "bn128", "4", str(fresh)],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            str(SNARKJS),
            "powersoftau",
            "contribute",
            str(fresh),
            str(contributed),
            "--name=zkmeter test",
            "-e=zkmeter test entropy",
        ],
        check=True,
        capture_output=True,
    )
    return fresh, contributed


@pytest.mark.node
def test_import_ptau_fresh_is_all_generators(ptau_files: tuple[Path, Path]) -> None:
    """`powersoftau new` starts from tau = 1: every power is the generator."""
    s = import_ptau(ptau_files[0])
    assert s.n_powers == 2**5 - 1
    assert all(p == (1, 2) for p in s.g1_powers)
    assert bn.eq(s.g2_tau, bn.G2)


@pytest.mark.node
def test_import_ptau_contributed(ptau_files: tuple[Path, Path], tmp_path: Path) -> None:
    s = import_ptau(ptau_files[1])  # validate(): generators and the pairing check
    assert s.n_powers == 31
    assert s.g1_powers[1] != (1, 2)
    truncated = import_ptau(ptau_files[1], max_powers=9)
    assert truncated.g1_powers == s.g1_powers[:9]
    path = tmp_path / "imported.srs"
    s.save(path)
    assert SRS.load(path).digest == s.digest


@pytest.mark.node
def test_import_ptau_rejects_flipped_byte(ptau_files: tuple[Path, Path], tmp_path: Path) -> None:
    data = bytearray(ptau_files[1].read_bytes())
    offset = _ptau_section_offset(bytes(data), 2) + 64 * 3 + 7  # inside tauG1 point 3
    data[offset] ^= 0x01
    bad = tmp_path / "bad.ptau"
    bad.write_bytes(bytes(data))
    with pytest.raises(SRSError, match=r"tauG1 point 3|not reduced"):
        import_ptau(bad)


@pytest.mark.node
def test_import_ptau_rejects_swapped_powers(ptau_files: tuple[Path, Path], tmp_path: Path) -> None:
    """Valid points in the wrong order: only the pairing check catches it."""
    data = bytearray(ptau_files[1].read_bytes())
    base = _ptau_section_offset(bytes(data), 2)
    p2 = data[base + 128 : base + 192]
    data[base + 128 : base + 192] = data[base + 192 : base + 256]
    data[base + 192 : base + 256] = p2
    bad = tmp_path / "swapped.ptau"
    bad.write_bytes(bytes(data))
    with pytest.raises(SRSError, match="pairing"):
        import_ptau(bad)


@pytest.mark.node
def test_import_ptau_rejects_truncated(ptau_files: tuple[Path, Path], tmp_path: Path) -> None:
    data = ptau_files[1].read_bytes()
    bad = tmp_path / "short.ptau"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(SRSError, match="past the end"):
        import_ptau(bad)


def test_import_ptau_rejects_non_ptau(tmp_path: Path) -> None:
    bad = tmp_path / "x.ptau"
    bad.write_bytes(b"zkey" + bytes(40))
    with pytest.raises(SRSError, match="not a snarkjs"):
        import_ptau(bad)


def _ptau_section_offset(data: bytes, section: int) -> int:
    (n_sections,) = struct.unpack_from("<I", data, 8)
    pos = 12
    for _ in range(n_sections):
        sec_id, length = struct.unpack_from("<IQ", data, pos)
        pos += 12
        if sec_id == section:
            return pos
        pos += length
    raise AssertionError(f"section {section} not found")


# ---- CLI ----------------------------------------------------------------------------------------


def test_cli_srs_new_and_info(tmp_path: Path) -> None:
    out = tmp_path / "dev.srs"
    runner = CliRunner()
    res = runner.invoke(main, ["srs", "new", "--log-size", "3", "-o", str(out), "--seed", "4"])
    assert res.exit_code == 0, res.output
    assert "INSECURE" in res.output
    s = SRS.load(out)
    assert s.n_powers == 2**3 + SRS_HEADROOM
    res = runner.invoke(main, ["srs", "info", str(out)])
    assert res.exit_code == 0 and s.digest.hex() in res.output


def test_cli_srs_info_rejects_corrupt_file(tmp_path: Path) -> None:
    out = tmp_path / "dev.srs"
    runner = CliRunner()
    assert runner.invoke(main, ["srs", "new", "-k", "2", "-o", str(out)]).exit_code == 0
    data = bytearray(out.read_bytes())
    data[20] ^= 1
    out.write_bytes(bytes(data))
    res = runner.invoke(main, ["srs", "info", str(out)])
    assert res.exit_code != 0
    assert "checksum" in res.output


def test_cli_srs_import_rejects_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.ptau"
    bad.write_bytes(b"not a ptau at all")
    res = CliRunner().invoke(main, ["srs", "import", str(bad), "-o", str(tmp_path / "o.srs")])
    assert res.exit_code != 0
    assert "not a snarkjs .ptau file" in res.output
    assert not (tmp_path / "o.srs").exists()


@pytest.mark.node
def test_cli_srs_import(ptau_files: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "imported.srs"
    res = CliRunner().invoke(main, ["srs", "import", str(ptau_files[1]), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert SRS.load(out).n_powers == 31


# ---- GLV scalar multiplication used by the Lagrange transform ------------------------------------


def test_glv_constants() -> None:
    """phi(x, y) = (beta x, y) is multiplication by lambda on G1, lambda^2 + lambda + 1 = 0."""
    assert (srs_module.GLV_LAMBDA**2 + srs_module.GLV_LAMBDA + 1) % R == 0
    assert pow(srs_module.GLV_BETA, 3, P) == 1 and srs_module.GLV_BETA != 1
    pt = g1_mul(987654321)
    assert g1_mul(987654321 * srs_module.GLV_LAMBDA) == (srs_module.GLV_BETA * pt[0] % P, pt[1])


def test_glv_scalar_mul_against_py_ecc() -> None:
    from prover.g1 import jacobian_to_affine

    rng = random.Random(8)
    scalars = [0, 1, 2, R - 1, srs_module.GLV_LAMBDA, *(rng.randrange(R) for _ in range(12))]
    base = g1_mul(31337)
    for k in scalars:
        k1, k2 = srs_module.glv_decompose(k)
        assert (k1 + k2 * srs_module.GLV_LAMBDA - k) % R == 0
        assert max(abs(k1), abs(k2)).bit_length() <= 128
        got = jacobian_to_affine(srs_module.glv_scalar_mul_jacobian(base, k))
        assert (int(got[0]), int(got[1])) == g1_mul(31337 * k)
    assert srs_module.glv_scalar_mul_jacobian((0, 0), 5)[2] == 0


def test_lagrange_basis_tau_one_hits_infinity() -> None:
    """tau = 1 (a fresh snarkjs ptau): [L_0(1)] = G1 and every other [L_i(1)] is infinity,
    so the transform passes through the point at infinity many times."""
    degenerate = SRS([(1, 2)] * 8, bn.G2, bn.G2)
    assert lagrange_basis(degenerate, 3, use_disk_cache=False) == [(1, 2)] + [(0, 0)] * 7


def test_lagrange_basis_parallel_matches(
    small: tuple[SRS, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    s, _ = small
    monkeypatch.setattr(srs_module, "_PARALLEL_MIN_MULTS", 0)
    serial = srs_module._inverse_dft_g1(s.g1_powers[:16], 4)
    forked = srs_module._inverse_dft_g1(s.g1_powers[:16], 4, processes=2)
    assert serial == forked


def test_lagrange_basis_from_tau_matches_the_g1_fft(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The development shortcut and the general G1 FFT give the same points."""
    import warnings

    from prover import srs as srs_module

    monkeypatch.setenv("ZKMETER_CACHE", str(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", srs_module.InsecureSRSWarning)
        srs, tau = srs_module.insecure_development_with_tau(64 + 8, seed=7)
    shortcut = srs_module.lagrange_basis_from_tau(tau, 6)
    general = srs_module.lagrange_basis(srs, 6, use_disk_cache=False)
    assert shortcut == general
    assert srs_module.lagrange_basis_from_tau((tau + 1) % srs_module.R, 6) != general


def test_development_srs_precomputes_requested_lagrange_bases(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import warnings

    from prover import srs as srs_module

    monkeypatch.setenv("ZKMETER_CACHE", str(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", srs_module.InsecureSRSWarning)
        srs = srs_module.SRS.insecure_development(32 + 8, seed=8, lagrange_log_sizes=(5,))
    assert srs_module.lagrange_cache_path(srs, 5).exists()
    srs_module._LAGRANGE_MEMO.clear()
    from_disk = srs_module.lagrange_basis(srs, 5)
    assert from_disk == srs_module.lagrange_basis(srs, 5, use_disk_cache=False)
