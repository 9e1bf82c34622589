"""The peer's development powers of tau (`zkmeter.peers.dev_ptau`, `native/src/ptau.rs`).

A file written from known tau, alpha, beta is checked three ways: against our pure-Python
reference (its G1 powers are `tau^i G`, its Lagrange blocks `L_i(tau) G` from the closed
formula, read back by `import_ptau`), against snarkjs' own `powersoftau new` + `prepare
phase2` file byte for byte (tau = alpha = beta = 1 is what `new` writes), and by snarkjs'
Groth16 and PLONK setup, prove and verify on a UsageBatch circuit. Each has a tampered twin.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from prover import native
from prover.srs import (
    SRSError,
    fixed_base_multiples,
    g1_points_bytes,
    import_ptau,
    lagrange_basis,
    lagrange_basis_from_tau,
)
from verifier.backend import use_backend
from verifier.constants import P, R
from verifier.curve import G1_GENERATOR_AFFINE
from verifier.fr import root_of_unity
from zkmeter.peers import dev_ptau
from zkmeter.peers import snarkjs_peer as sp
from zkmeter.peers.dev_ptau import DevelopmentSecrets, PtauError, write_development_ptau

POWER = 8
# Arbitrary known secrets (not roots of unity of any domain of the file).
SECRETS = DevelopmentSecrets(tau=0x1234_5678_9ABC_DEF0 * 7**40 % R, alpha=31337, beta=2**200 + 1)
SECTION_IDS = [1, 2, 3, 4, 5, 6, 7, 12, 13, 14, 15]
G1 = 64
G2 = 128

pytestmark = pytest.mark.skipif(not native.available(), reason="zkmeter_native not built")

needs_node = pytest.mark.skipif(
    not sp.tools_available(), reason="node_modules/.bin/snarkjs or circom2 missing (npm ci)"
)


def sections(path: Path) -> dict[int, bytes]:
    """The payload of each section, after checking magic, version and the table's extent."""
    data = path.read_bytes()
    assert data[:4] == b"ptau"
    version, count = struct.unpack_from("<II", data, 4)
    assert version == 1
    out: dict[int, bytes] = {}
    pos = 12
    for _ in range(count):
        sec_id, length = struct.unpack_from("<IQ", data, pos)
        out[sec_id] = data[pos + 12 : pos + 12 + length]
        pos += 12 + length
    assert pos == len(data)
    return out


def block(section: bytes, k: int, size: int = G1) -> bytes:
    """The Lagrange block of the domain 2^k: points 2^k - 1 .. 2^(k+1) - 2 of the section."""
    return section[((1 << k) - 1) * size : ((1 << (k + 1)) - 1) * size]


def lagrange_values(tau: int, k: int, *, drop_last: bool = False) -> list[int]:
    """Reference: `L_i(tau) = omega^i (tau^m - 1) / (m (tau - omega^i))`, `m = 2^k`; with
    `drop_last`, the inverse DFT of `(1, tau, .., tau^(m-2), 0)`, i.e. less `omega^i
    tau^(m-1) / m` (what snarkjs puts in the last block of section 12)."""
    m = 1 << k
    omega = root_of_unity(k)
    m_inv = pow(m, -1, R)
    vanishing = (pow(tau, m, R) - 1) % R
    out = []
    w = 1
    for _ in range(m):
        value = w * vanishing % R * m_inv % R * pow(tau - w, -1, R) % R
        if drop_last:
            value = (value - w * pow(tau, m - 1, R) * m_inv) % R
        out.append(value)
        w = w * omega % R
    return out


def generator_multiples(scalars: list[int]) -> bytes:
    """EIP-196 bytes of `s G`, by the pure-Python fixed-base multiplication."""
    with use_backend("python"):
        return g1_points_bytes(fixed_base_multiples(G1_GENERATOR_AFFINE, scalars))


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("dev-ptau") / f"pot{POWER}.ptau"
    size = write_development_ptau(path, POWER, SECRETS)
    assert size == path.stat().st_size == dev_ptau.ptau_file_size(POWER)
    return path


def test_section_table_and_header_are_snarkjs_layout(written: Path) -> None:
    secs = sections(written)
    assert list(secs) == SECTION_IDS
    n = 1 << POWER
    assert {i: len(s) for i, s in secs.items()} == {
        1: 44,
        2: (2 * n - 1) * G1,
        3: n * G2,
        4: n * G1,
        5: n * G1,
        6: G2,
        7: 4,
        12: (4 * n - 1) * G1,
        13: (2 * n - 1) * G2,
        14: (2 * n - 1) * G1,
        15: (2 * n - 1) * G1,
    }
    assert secs[1] == struct.pack("<I", 32) + P.to_bytes(32, "little") + struct.pack(
        "<II", POWER, POWER
    )
    assert secs[7] == b"\0\0\0\0"  # no contributions


def test_import_reads_the_powers_of_the_known_tau(written: Path) -> None:
    srs = import_ptau(written, check_pairing=True)
    tau, alpha, beta = SECRETS.tau, SECRETS.alpha, SECRETS.beta
    powers = [pow(tau, i, R) for i in range(2 * (1 << POWER) - 1)]
    assert g1_points_bytes(srs.g1_powers) == generator_multiples(powers)
    secs = sections(written)
    n = 1 << POWER
    assert native.ptau_points(secs[4]) == generator_multiples([alpha * t % R for t in powers[:n]])
    assert native.ptau_points(secs[5]) == generator_multiples([beta * t % R for t in powers[:n]])


@pytest.mark.parametrize("k", [0, 1, 5, POWER])
def test_lagrange_blocks_equal_the_python_reference(written: Path, k: int) -> None:
    with use_backend("native"):
        srs = import_ptau(written, lagrange_log_sizes=(k,))
        from_file = g1_points_bytes(lagrange_basis(srs, k))  # section 12, remembered at import
    with use_backend("python"):
        reference = g1_points_bytes(lagrange_basis_from_tau(SECRETS.tau, k))
    assert from_file == reference
    secs = sections(written)
    values = lagrange_values(SECRETS.tau, k)
    assert generator_multiples(values) == reference
    assert native.ptau_points(block(secs[14], k)) == generator_multiples(
        [SECRETS.alpha * v % R for v in values]
    )
    assert native.ptau_points(block(secs[15], k)) == generator_multiples(
        [SECRETS.beta * v % R for v in values]
    )


def test_last_lagrange_block_drops_the_missing_power(written: Path) -> None:
    """Section 12's block of 2^(power+1) is snarkjs' inverse DFT of the 2N - 1 powers and a
    zero: not the true Lagrange basis of that domain."""
    k = POWER + 1
    last = native.ptau_points(block(sections(written)[12], k))
    assert last == generator_multiples(lagrange_values(SECRETS.tau, k, drop_last=True))
    assert last != generator_multiples(lagrange_values(SECRETS.tau, k))


def _copy_with(src: Path, dst: Path, section_id: int, index: int, size: int, point: bytes) -> None:
    """Copy `src` to `dst` with point `index` of a section replaced by `point`."""
    data = bytearray(src.read_bytes())
    pos = 12
    while True:
        sec_id, length = struct.unpack_from("<IQ", data, pos)
        if sec_id == section_id:
            start = pos + 12 + index * size
            data[start : start + size] = point
            break
        pos += 12 + length
    dst.write_bytes(bytes(data))


def test_tampered_points_fail_our_checks(written: Path, tmp_path: Path) -> None:
    secs = sections(written)
    # A Lagrange point replaced by its neighbour (still a valid point): the reference differs.
    k = POWER
    lagrange_block = block(secs[12], k)
    bad = tmp_path / "lagrange.ptau"
    at = (1 << k) - 1 + 5
    _copy_with(written, bad, 12, at, G1, lagrange_block[6 * G1 : 7 * G1])
    with use_backend("native"):
        srs = import_ptau(bad, lagrange_log_sizes=(k,))
        tampered = g1_points_bytes(lagrange_basis(srs, k))
    assert tampered != generator_multiples(lagrange_values(SECRETS.tau, k))
    # [tau^3]_1 replaced by [tau^4]_1: import's pairing check of the powers refuses the file.
    bad_power = tmp_path / "power.ptau"
    _copy_with(written, bad_power, 2, 3, G1, secs[2][4 * G1 : 5 * G1])
    with pytest.raises(SRSError, match="pairing"):
        import_ptau(bad_power, check_pairing=True)
    # A coordinate >= P: refused by the decoding.
    bad_word = tmp_path / "word.ptau"
    _copy_with(
        written, bad_word, 2, 3, G1, P.to_bytes(32, "little") + secs[2][3 * G1 + 32 : 4 * G1]
    )
    with pytest.raises(SRSError, match=r"not below P|not reduced"):
        import_ptau(bad_word)


def test_secrets_and_power_are_checked(tmp_path: Path) -> None:
    with pytest.raises(PtauError, match="power"):
        write_development_ptau(tmp_path / "x", 0, SECRETS)
    with pytest.raises(PtauError, match="power"):
        DevelopmentSecrets.random(dev_ptau.MAX_PTAU_POWER + 1)
    for field in ("tau", "alpha", "beta"):
        bad = DevelopmentSecrets(**{**SECRETS.__dict__, field: 0})
        with pytest.raises(PtauError, match=field):
            write_development_ptau(tmp_path / "x", 3, bad)
    fresh = DevelopmentSecrets.random(3)
    assert (
        0 < fresh.tau < R and pow(fresh.tau, 16, R) != 1 and fresh != DevelopmentSecrets.random(3)
    )
    with pytest.raises(OSError, match="no-such-dir"):
        write_development_ptau(tmp_path / "no-such-dir" / "x.ptau", 3, fresh)
    assert not list(tmp_path.iterdir())


# ---------------------------------------------------------------- snarkjs (node)


def _snarkjs(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(sp.node_modules() / ".bin" / "snarkjs"), *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )


@needs_node
@pytest.mark.node
def test_equals_snarkjs_new_and_prepare_phase2_byte_for_byte(tmp_path: Path) -> None:
    """`powersoftau new` writes tau = alpha = beta = 1 and no contribution; `prepare phase2`
    then computes sections 12-15 by inverse FFTs. Ours, from the same secrets, is the same
    file: header, every point (its last block of section 12 included), the empty
    contributions section."""
    power = 4
    assert _snarkjs("powersoftau", "new", "bn128", power, "p0.ptau", cwd=tmp_path).returncode == 0
    prep = _snarkjs("powersoftau", "prepare", "phase2", "p0.ptau", "p1.ptau", cwd=tmp_path)
    assert prep.returncode == 0, prep.stdout + prep.stderr
    ours = tmp_path / "ours.ptau"
    write_development_ptau(ours, power, DevelopmentSecrets(1, 1, 1))
    theirs = sections(tmp_path / "p1.ptau")
    assert list(theirs) == SECTION_IDS
    for sec_id, payload in sections(ours).items():
        assert payload == theirs[sec_id], f"section {sec_id}"
    assert ours.read_bytes() == (tmp_path / "p1.ptau").read_bytes()
    # Its twin: any other secret gives another file.
    write_development_ptau(ours, power, DevelopmentSecrets(1, 1, 2))
    assert sections(ours)[15] != theirs[15] and sections(ours)[12] == theirs[12]


@needs_node
@pytest.mark.node
def test_snarkjs_verify_refuses_a_file_without_contribution(written: Path) -> None:
    """Why `snarkjs powersoftau verify` is no check of our file: it refuses every file with no
    contribution before looking at any point ("This file has no contribution! It cannot be
    used in production"), `new`'s output as well as ours. A contribution record would need
    snarkjs' proof-of-knowledge keys, hashed to G2 from the previous challenge (blake2b +
    ChaCha), for nothing the setups read; the tests above check the points instead."""
    proc = _snarkjs("powersoftau", "verify", written)
    assert "no contribution" in sp._plain(proc.stdout + proc.stderr)
    assert "Powers of Tau Ok" not in proc.stdout


# UsageBatch(6, 2): the circuit tests' size; both setups fit in 2^11.
N_ROWS, N_SLOTS, CIRCUIT_POWER = 6, 2, 11


def _prove_and_verify(protocol: sp.Protocol, pot: Path, work: Path) -> bool:
    """snarkjs `<protocol> setup` on `pot`, `fullprove` of an honest batch, `verify`."""
    circuit = sp.compile(N_ROWS, N_SLOTS, optimization=sp.OPTIMIZATION[protocol])
    rows, aggregates, header = sp.example_batch(N_ROWS, N_SLOTS, seed=3)
    work.mkdir()
    (work / "input.json").write_text(
        json.dumps(sp.witness_input(N_ROWS, N_SLOTS, rows, aggregates, header))
    )
    steps: list[list[str | Path]] = [
        [protocol, "setup", circuit.r1cs, pot, "c.zkey"],
        ["zkey", "export", "verificationkey", "c.zkey", "vk.json"],
        [protocol, "fullprove", "input.json", circuit.wasm, "c.zkey", "proof.json", "pub.json"],
    ]
    for step in steps:
        proc = _snarkjs(*step, cwd=work)
        text = sp._plain(proc.stdout + proc.stderr)
        assert proc.returncode == 0 and "[ERROR]" not in text, f"{step}: {text[-2000:]}"
    verdict = sp._plain(
        _snarkjs(protocol, "verify", "vk.json", "pub.json", "proof.json", cwd=work).stdout
    )
    assert "OK!" in verdict or "invalid proof" in verdict.lower(), verdict
    return "OK!" in verdict


@pytest.fixture(scope="module")
def circuit_ptau(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("dev-ptau-circuit") / f"pot{CIRCUIT_POWER}.ptau"
    write_development_ptau(path, CIRCUIT_POWER, DevelopmentSecrets.random(CIRCUIT_POWER))
    return path


@needs_node
@pytest.mark.node
@pytest.mark.slow
@pytest.mark.parametrize("protocol", sp.PROTOCOLS)
def test_snarkjs_setup_proves_and_verifies_on_our_file(
    protocol: sp.Protocol, circuit_ptau: Path, tmp_path: Path
) -> None:
    assert _prove_and_verify(protocol, circuit_ptau, tmp_path / "ok")


@needs_node
@pytest.mark.node
@pytest.mark.slow
@pytest.mark.parametrize("protocol", sp.PROTOCOLS)
def test_one_tampered_point_breaks_snarkjs_proofs(
    protocol: sp.Protocol, circuit_ptau: Path, tmp_path: Path
) -> None:
    """Groth16: `[beta]_2` (section 6) replaced by `[tau]_2`: the verification key's `beta`
    no longer matches the `beta` of sections 5 and 15 the proving key was made from. PLONK:
    `[tau]_1` (section 2) replaced by `[tau^2]_1`: the commitments no longer open against
    `[tau]_2`."""
    secs = sections(circuit_ptau)
    bad = tmp_path / "bad.ptau"
    if protocol == "groth16":
        _copy_with(circuit_ptau, bad, 6, 0, G2, secs[3][G2 : 2 * G2])
    else:
        _copy_with(circuit_ptau, bad, 2, 1, G1, secs[2][2 * G1 : 3 * G1])
    assert not _prove_and_verify(protocol, bad, tmp_path / "bad")


def test_peer_ptau_writes_a_development_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`snarkjs_peer.ptau` makes its cached file natively (no node needed) and reuses it."""
    monkeypatch.setenv("ZKMETER_CACHE", str(tmp_path))
    monkeypatch.delenv("ZKMETER_PEER_PTAU", raising=False)
    messages: list[str] = []
    path = sp.ptau(3, progress=messages.append)  # raised to SMALLEST_PTAU_POWER
    assert path == tmp_path / "peers" / "ptau" / f"pot{sp.SMALLEST_PTAU_POWER}_final.ptau"
    assert "native" in messages[0]
    assert sections(path)[7] == b"\0\0\0\0"
    assert path.stat().st_size == dev_ptau.ptau_file_size(sp.SMALLEST_PTAU_POWER)
    assert sp.ptau(sp.SMALLEST_PTAU_POWER, progress=messages.append) == path
    assert len(messages) == 1
    assert sp.largest_cached_ptau_power() == sp.SMALLEST_PTAU_POWER
    assert not [p for p in path.parent.iterdir() if p != path]  # no temporary left
    shutil.rmtree(tmp_path / "peers")
