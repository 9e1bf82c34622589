"""circom + snarkjs peer of the zkmeter batch statement, for side-by-side benchmarks.

The circuit `usage_batch.circom` proves the statement of DESIGN.md ("The statement proven
for a batch") as an R1CS; this module compiles it with circom2, runs a snarkjs trusted setup
(Groth16, Groth 2016, https://eprint.iacr.org/2016/260; or PLONK, Gabizon-Williamson-Ciobotaru
2019, https://eprint.iacr.org/2019/953) on a prepared powers-of-tau file, and times proving
and verification. The powers of tau are a development setup written natively from a known
random tau (`ptau`, `zkmeter.peers.dev_ptau`), as trusted as snarkjs' own single-contribution
files and no different for proving time.

Everything expensive is cached under ``$ZKMETER_CACHE/peers`` (default ``~/.cache/zkmeter``):

    peers/ptau/pot<p>_final.ptau                  prepared powers of tau, 2^p, any circuit
    peers/circuits/<hash>-n<n>-C<C>-<opt>/        one compiled circuit
        main.circom, usage_batch.circom           the generated main and the template
        main.r1cs, main_js/main.wasm              circom2 output
        r1cs_info.json                            `snarkjs r1cs info`, parsed
        groth16/ | plonk/                         one trusted setup per protocol
            circuit_final.zkey, verification_key.json, verifier.sol, setup.json

``<hash>`` is the sha256 of the template source, the circom version and the optimisation
flag, so editing the circuit never reuses stale keys. Groth16 uses circom's ``--O2`` (fewest
R1CS constraints), PLONK ``--O1`` (O2's substitutions multiply PLONK addition gates: 20,499
against 11,173 PLONK constraints at n = 64, C = 4).

Two ways in: `prove` takes rows and aggregates, and `witness_input` refuses anything the
statement forbids (the honest path); `witness_input_unchecked` + `prove_input` build and
prove whatever they are given (the malicious path the rejection tests use).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from zkmeter.peers.dev_ptau import DevelopmentSecrets, write_development_ptau

Protocol = Literal["groth16", "plonk"]
Progress = Callable[[str], None]

PROTOCOLS: tuple[Protocol, ...] = ("groth16", "plonk")
# circom optimisation level per protocol (see the module docstring).
OPTIMIZATION: dict[str, str] = {"groth16": "O2", "plonk": "O1"}

TOKEN_BITS = 32  # receipts carry uint32 token counts
PAYER_BITS = 160  # an Ethereum address
MODEL_ID_BITS = 64  # uint64 modelId
NONCE_BITS = 64  # uint64 nonce
KEY_MODEL_SHIFT = 160  # key = payer + 2^160 * modelId
SMALLEST_PTAU_POWER = 8

HERE = Path(__file__).resolve().parent
CIRCUIT_SOURCE = HERE / "usage_batch.circom"
RUNNER = HERE / "snarkjs_runner.mjs"
REPO_ROOT = HERE.parents[1]

# Public signals in the order circom lays them out (declaration order in UsageBatch).
HEADER_FIELDS = ("chain_id", "settlement", "operator", "batch_seq")


class PeerError(Exception):
    """Base class of the errors raised by the circom/snarkjs peer."""


class StatementViolationError(PeerError):
    """The rows and aggregates do not satisfy the batch statement (honest path refuses)."""


class ToolError(PeerError):
    """circom2, snarkjs or node failed for a reason other than an unsatisfied circuit."""


class WitnessGenerationError(PeerError):
    """The circuit's witness calculator hit a failing constraint: the input is rejected."""


@dataclass(frozen=True)
class CircuitArtifacts:
    """A compiled UsageBatch(n, C)."""

    n: int
    C: int
    optimization: str
    directory: Path
    r1cs: Path
    wasm: Path
    constraints: int  # R1CS constraints (`snarkjs r1cs info`)
    wires: int


@dataclass(frozen=True)
class SetupArtifacts:
    """A proving/verification key pair for one protocol, with its Solidity verifier."""

    protocol: Protocol
    circuit: CircuitArtifacts
    ptau: Path
    zkey: Path
    verification_key: Path
    solidity_verifier: Path
    domain_power: int  # log2 of the evaluation domain the setup needs
    gates: int  # R1CS constraints (Groth16) or PLONK gates as snarkjs counts them
    setup_seconds: float  # wall time of setup + contribution + exports, when first made


@dataclass(frozen=True)
class PeerResult:
    """One timed proof. Seconds are measured inside node (start-up and curve set-up excluded).

    proof_bytes is the ABI calldata of the exported Solidity verifier's `verifyProof` call
    (4-byte selector + 32 bytes per word of proof and public inputs), counted from
    `exportSolidityCallData`; proof_only_bytes leaves out selector and public inputs.
    """

    prove_seconds: float  # witness generation + proving
    verify_seconds: float
    proof_bytes: int
    ok: bool
    witness_seconds: float = 0.0
    proof_only_bytes: int = 0
    proof: Mapping[str, Any] | None = None
    public_signals: tuple[str, ...] = ()
    calldata_words: tuple[tuple[str, ...], ...] = ()  # verifyProof's arguments, flattened


# ---------------------------------------------------------------- tools and cache


def _stderr_progress(message: str) -> None:
    print(f"[snarkjs-peer] {message}", file=sys.stderr, flush=True)


def node_modules() -> Path:
    """The node_modules holding circom2 and snarkjs ($ZKMETER_NODE_MODULES or the repo's)."""
    return Path(os.environ.get("ZKMETER_NODE_MODULES", REPO_ROOT / "node_modules"))


def _bin(name: str) -> Path:
    return node_modules() / ".bin" / name


def tools_available() -> bool:
    """True when node, circom2 and snarkjs can be run."""
    return (
        shutil.which("node") is not None and _bin("circom2").exists() and _bin("snarkjs").exists()
    )


def cache_root() -> Path:
    """``$ZKMETER_CACHE/peers`` (default ``~/.cache/zkmeter/peers``), created on demand."""
    base = Path(os.environ.get("ZKMETER_CACHE", Path.home() / ".cache" / "zkmeter"))
    root = base / "peers"
    root.mkdir(parents=True, exist_ok=True)
    return root


def _run(cmd: Sequence[str | Path], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, check=False
    )
    # snarkjs reports some failures on stdout with exit code 0; callers check the output.
    if proc.returncode != 0:
        raise ToolError(
            f"{' '.join(str(c) for c in cmd)} exited with {proc.returncode}:\n"
            f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        )
    return proc


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _plain(text: str) -> str:
    return _ANSI.sub("", text)


def _circom_version() -> str:
    out = _run([_bin("circom2"), "--version"]).stdout
    return out.strip()


def circuit_hash(optimization: str) -> str:
    """sha256 (16 hex digits) of the template source, the circom version and the flag."""
    h = hashlib.sha256()
    h.update(CIRCUIT_SOURCE.read_bytes())
    h.update(_circom_version().encode())
    h.update(optimization.encode())
    return h.hexdigest()[:16]


def _check_size(n: int, C: int) -> None:
    if not (isinstance(n, int) and isinstance(C, int)) or n < 1 or C < 1:
        raise PeerError(f"UsageBatch needs n >= 1 rows and C >= 1 slots, got n={n}, C={C}")


def _main_source(n: int, C: int) -> str:
    publics = ", ".join(
        [
            "chainId",
            "settlement",
            "operator",
            "batchSeq",
            "numChannels",
            "payer",
            "modelId",
            "firstNonce",
            "count",
            "tokens",
        ]
    )
    return (
        "pragma circom 2.1.0;\n"
        'include "usage_batch.circom";\n'
        f"component main {{public [{publics}]}} = UsageBatch({n}, {C});\n"
    )


def _parse_r1cs_info(text: str) -> dict[str, int]:
    info: dict[str, int] = {}
    for line in _plain(text).splitlines():
        m = re.search(r"# of ([A-Za-z ]+): (\d+)", line)
        if m:
            info[m.group(1).strip().lower().replace(" ", "_")] = int(m.group(2))
    if "constraints" not in info:
        raise ToolError(f"could not read `snarkjs r1cs info` output:\n{text}")
    return info


def compile(
    n: int, C: int, *, optimization: str = "O2", progress: Progress | None = None
) -> CircuitArtifacts:
    """Compile UsageBatch(n, C) to R1CS + wasm (cached); `optimization` is O0, O1 or O2."""
    _check_size(n, C)
    if optimization not in ("O0", "O1", "O2"):
        raise PeerError(f"circom optimisation must be O0, O1 or O2, got {optimization!r}")
    say = progress or _stderr_progress
    directory = cache_root() / "circuits" / f"{circuit_hash(optimization)}-n{n}-C{C}-{optimization}"
    info_path = directory / "r1cs_info.json"
    if not info_path.exists():
        say(f"compiling UsageBatch({n}, {C}) with circom --{optimization}")
        directory.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=directory.parent) as tmp:
            work = Path(tmp)
            shutil.copy(CIRCUIT_SOURCE, work / "usage_batch.circom")
            (work / "main.circom").write_text(_main_source(n, C))
            # circom2 runs under WASI and only sees the working directory: use relative paths.
            _run(
                [
                    _bin("circom2"),
                    "main.circom",
                    "--r1cs",
                    "--wasm",
                    f"--{optimization}",
                    "-o",
                    ".",
                ],
                cwd=work,
            )
            info = _parse_r1cs_info(
                _run([_bin("snarkjs"), "r1cs", "info", "main.r1cs"], work).stdout
            )
            (work / "r1cs_info.json").write_text(json.dumps(info, indent=1))
            shutil.rmtree(directory, ignore_errors=True)
            os.rename(work, directory)
            work.mkdir()  # let TemporaryDirectory clean up an empty dir
    info = json.loads(info_path.read_text())
    return CircuitArtifacts(
        n=n,
        C=C,
        optimization=optimization,
        directory=directory,
        r1cs=directory / "main.r1cs",
        wasm=directory / "main_js" / "main.wasm",
        constraints=int(info["constraints"]),
        wires=int(info["wires"]),
    )


def r1cs_info(n: int, C: int, *, optimization: str = "O2") -> dict[str, int]:
    """`snarkjs r1cs info` of UsageBatch(n, C), parsed (constraints, wires, inputs...)."""
    artifacts = compile(n, C, optimization=optimization)
    info: dict[str, int] = json.loads((artifacts.directory / "r1cs_info.json").read_text())
    return info


def ptau(power: int, *, progress: Progress | None = None) -> Path:
    """A prepared powers-of-tau file of at least 2^power (cached).

    Reuses the smallest cached file of power >= `power` (a prepared file holds the Lagrange
    bases of every smaller domain). Otherwise writes a *development* file natively from fresh
    random tau, alpha, beta (`os.urandom`, never stored): every point `s·G` by fixed-base
    multiplication, the Lagrange sections from `L_i(tau) = omega^i (tau^m - 1)/(m (tau -
    omega^i))` with no FFT (`zkmeter.peers.dev_ptau`; about 2 min at 2^20 here). Like snarkjs'
    own single-contribution file, it is made from a tau its maker could know: fine for
    benchmarks, and it changes nothing in proving or verification time.

    With ``ZKMETER_PEER_PTAU=snarkjs`` the file is made by snarkjs instead: `powersoftau
    new`, one non-interactive `contribute -e`, and `prepare phase2` (G1/G2 FFTs: ~18 s at
    2^10 on a busy core, 38 min at 2^16, growing like p * 2^p).
    """
    power = max(power, SMALLEST_PTAU_POWER)
    directory = cache_root() / "ptau"
    directory.mkdir(parents=True, exist_ok=True)
    for p in range(power, 29):
        candidate = directory / f"pot{p}_final.ptau"
        if candidate.exists():
            return candidate
    say = progress or _stderr_progress
    final = directory / f"pot{power}_final.ptau"
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        work = Path(tmp)
        if os.environ.get("ZKMETER_PEER_PTAU", "native") == "snarkjs":
            made = _snarkjs_ptau(power, work, say)
        else:
            say(f"powers of tau 2^{power}: development file from a random tau (native)")
            made = work / "dev.ptau"
            write_development_ptau(made, power, DevelopmentSecrets.random(power))
        os.replace(made, final)
    return final


def _snarkjs_ptau(power: int, work: Path, say: Progress) -> Path:
    """`powersoftau new`, `contribute -e` with random entropy, `prepare phase2` in `work`."""
    say(f"powers of tau 2^{power}: new")
    _run([_bin("snarkjs"), "powersoftau", "new", "bn128", str(power), work / "p0.ptau"])
    say(f"powers of tau 2^{power}: contribute")
    entropy = os.urandom(32).hex()
    _run(
        [
            _bin("snarkjs"),
            "powersoftau",
            "contribute",
            work / "p0.ptau",
            work / "p1.ptau",
            "-n=zkmeter peer",
            f"-e={entropy}",
        ]
    )
    say(f"powers of tau 2^{power}: prepare phase2 (slow)")
    _run([_bin("snarkjs"), "powersoftau", "prepare", "phase2", work / "p1.ptau", work / "p2.ptau"])
    return work / "p2.ptau"


_TOO_BIG = re.compile(r"circuit too big for this power of tau ceremony\. (\d+)")


def cached_setup(n: int, C: int, protocol: Protocol) -> bool:
    """Whether the setup of UsageBatch(n, C) for `protocol` is already in the cache."""
    directory = cache_root() / "circuits"
    return any(directory.glob(f"*-n{n}-C{C}-*/{protocol}/setup.json"))


def largest_cached_ptau_power() -> int:
    """The largest power of tau in the cache (0 if none)."""
    powers = [
        int(m.group(1))
        for f in (cache_root() / "ptau").glob("pot*_final.ptau")
        if (m := re.match(r"pot(\d+)_final", f.name))
    ]
    return max(powers, default=0)


def _domain_power(size: int) -> int:
    """Smallest p with 2^p >= size (snarkjs: log2(size - 1) + 1)."""
    return max((size - 1).bit_length(), 1)


def setup(
    n: int, C: int, protocol: Protocol, *, progress: Progress | None = None
) -> SetupArtifacts:
    """Trusted setup of UsageBatch(n, C) for `protocol` (cached): zkey, vkey, Solidity verifier.

    Groth16: `groth16 setup` then one non-interactive `zkey contribute -e`. PLONK: `plonk
    setup` (universal, no contribution). The verification key and `verifier.sol` are exported
    next to the zkey so on-chain verification gas can be measured later.
    """
    if protocol not in PROTOCOLS:
        raise PeerError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    say = progress or _stderr_progress
    circuit = compile(n, C, optimization=OPTIMIZATION[protocol], progress=progress)
    directory = circuit.directory / protocol
    meta_path = directory / "setup.json"
    if not meta_path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        info = r1cs_info(n, C, optimization=circuit.optimization)
        # Groth16's domain holds constraints + public inputs + 1 (snarkjs zkey_new.js);
        # PLONK's holds its own gate count, which snarkjs only reports when it runs.
        need = _domain_power(info["constraints"] + info["public_inputs"] + info["outputs"] + 1)
        zkey0 = directory / "circuit_0000.zkey"
        zkey = directory / "circuit_final.zkey"
        while True:
            pot = ptau(need, progress=progress)
            started = time.perf_counter()  # do not count making the powers of tau
            say(f"{protocol} setup of UsageBatch({n}, {C}) on {pot.name}")
            target = zkey0 if protocol == "groth16" else zkey
            proc = _run([_bin("snarkjs"), protocol, "setup", circuit.r1cs, pot, target])
            text = _plain(proc.stdout + proc.stderr)
            too_big = _TOO_BIG.search(text)
            if too_big:
                need = max(need + 1, _domain_power(int(too_big.group(1))))
                continue
            if not target.exists() or "[ERROR]" in text:
                raise ToolError(f"snarkjs {protocol} setup failed:\n{text[-2000:]}")
            plonk_gates = re.search(r"Plonk constraints: (\d+)", text)
            gates = int(plonk_gates.group(1)) if plonk_gates else info["constraints"]
            break
        if protocol == "groth16":
            say("groth16 zkey contribute")
            _run(
                [
                    _bin("snarkjs"),
                    "zkey",
                    "contribute",
                    zkey0,
                    zkey,
                    "-n=zkmeter peer",
                    f"-e={os.urandom(32).hex()}",
                ]
            )
            zkey0.unlink()
        vkey = directory / "verification_key.json"
        sol = directory / "verifier.sol"
        _run([_bin("snarkjs"), "zkey", "export", "verificationkey", zkey, vkey])
        _run([_bin("snarkjs"), "zkey", "export", "solidityverifier", zkey, sol])
        pot_power = int(re.search(r"pot(\d+)_final", pot.name).group(1))  # type: ignore[union-attr]
        meta = {
            "ptau": str(pot),
            "ptau_power": pot_power,
            "domain_power": _domain_power(gates) if protocol == "plonk" else need,
            "gates": gates,
            "setup_seconds": time.perf_counter() - started,
        }
        meta_path.write_text(json.dumps(meta, indent=1))
    meta = json.loads(meta_path.read_text())
    return SetupArtifacts(
        protocol=protocol,
        circuit=circuit,
        ptau=Path(meta["ptau"]),
        zkey=directory / "circuit_final.zkey",
        verification_key=directory / "verification_key.json",
        solidity_verifier=directory / "verifier.sol",
        domain_power=int(meta["domain_power"]),
        gates=int(meta["gates"]),
        setup_seconds=float(meta["setup_seconds"]),
    )


# ---------------------------------------------------------------- witness input


def _as_int(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise StatementViolationError(f"{what} must be an integer, got a bool")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value, 16) if value.lower().startswith("0x") else int(value)
        except ValueError as exc:
            raise StatementViolationError(f"{what} is not a number: {value!r}") from exc
    raise StatementViolationError(
        f"{what} must be an int or a 0x-string, got {type(value).__name__}"
    )


def _bounded(value: Any, bits: int, what: str, lowest: int = 0) -> int:
    x = _as_int(value, what)
    if not lowest <= x < 1 << bits:
        raise StatementViolationError(f"{what} = {x} is outside [{lowest}, 2^{bits})")
    return x


def channel_key(payer: int, model_id: int) -> int:
    """key = payer + 2^160 * modelId (DESIGN.md, round-1 columns)."""
    return payer + (model_id << KEY_MODEL_SHIFT)


def _field(row: Mapping[str, Any], name: str, what: str) -> Any:
    if name not in row:
        raise StatementViolationError(f"{what} has no {name!r}")
    return row[name]


def _assemble(
    n: int,
    C: int,
    header: Mapping[str, Any],
    aggregates: Sequence[tuple[int, int, int, int, int]],
    rows: Sequence[tuple[int, int, int]],
    num_channels: int,
) -> dict[str, Any]:
    """The circom input: rows assigned to the slot whose key they carry, natural start flags.

    A row whose key is in no slot is put in the previous row's slot (slot 0 first) - the
    cheapest lie - so that the malicious path can hand the circuit such a row at all.
    """
    slot_keys = [channel_key(a[0], a[1]) for a in aggregates]
    key_to_slot = {k: j for j, k in enumerate(slot_keys)}
    row_slot: list[list[int]] = []
    row_start: list[int] = []
    previous = -1
    for key, _nonce, _tokens in rows:
        slot = key_to_slot.get(key, max(previous, 0))
        row_slot.append([int(j == slot) for j in range(C)])
        row_start.append(int(slot != previous))
        previous = slot
    padding = n - len(rows)
    zeros_c = [0] * C

    def pad_slots(values: list[int]) -> list[str]:
        return [str(v) for v in values + [0] * (C - len(values))]

    return {
        "chainId": str(header["chain_id"]),
        "settlement": str(header["settlement"]),
        "operator": str(header["operator"]),
        "batchSeq": str(header["batch_seq"]),
        "numChannels": str(num_channels),
        "payer": pad_slots([a[0] for a in aggregates]),
        "modelId": pad_slots([a[1] for a in aggregates]),
        "firstNonce": pad_slots([a[2] for a in aggregates]),
        "count": pad_slots([a[3] for a in aggregates]),
        "tokens": pad_slots([a[4] for a in aggregates]),
        "rowKey": [str(r[0]) for r in rows] + ["0"] * padding,
        "rowNonce": [str(r[1]) for r in rows] + ["0"] * padding,
        "rowTokens": [str(r[2]) for r in rows] + ["0"] * padding,
        "rowSlot": [[str(v) for v in s] for s in row_slot] + [[str(v) for v in zeros_c]] * padding,
        "rowStart": [str(s) for s in row_start] + ["0"] * padding,
    }


def _parse_header(header: Mapping[str, Any]) -> dict[str, int]:
    out = {}
    for name in HEADER_FIELDS:
        bits = PAYER_BITS if name in ("settlement", "operator") else 64
        out[name] = _bounded(_field(header, name, "header"), bits, f"header.{name}")
    return out


def _parse_rows(rows: Sequence[Mapping[str, Any]]) -> list[tuple[int, int, int]]:
    parsed = []
    for i, row in enumerate(rows):
        what = f"row {i}"
        payer = _bounded(_field(row, "payer", what), PAYER_BITS, f"{what}.payer")
        model = _bounded(_field(row, "model_id", what), MODEL_ID_BITS, f"{what}.model_id")
        nonce = _bounded(_field(row, "nonce", what), NONCE_BITS, f"{what}.nonce")
        tokens = _bounded(_field(row, "tokens", what), TOKEN_BITS, f"{what}.tokens")
        parsed.append((channel_key(payer, model), nonce, tokens))
    return parsed


def _parse_aggregates(
    aggregates: Sequence[Mapping[str, Any]],
) -> list[tuple[int, int, int, int, int]]:
    parsed = []
    for j, agg in enumerate(aggregates):
        what = f"aggregate {j}"
        parsed.append(
            (
                _bounded(_field(agg, "payer", what), PAYER_BITS, f"{what}.payer"),
                _bounded(_field(agg, "model_id", what), MODEL_ID_BITS, f"{what}.model_id"),
                _bounded(_field(agg, "first_nonce", what), NONCE_BITS, f"{what}.first_nonce"),
                _bounded(_field(agg, "count", what), 64, f"{what}.count", lowest=1),
                _bounded(_field(agg, "tokens", what), 96, f"{what}.tokens"),
            )
        )
    return parsed


def witness_input(
    n: int,
    C: int,
    rows: Sequence[Mapping[str, Any]],
    aggregates: Sequence[Mapping[str, Any]],
    header: Mapping[str, Any],
) -> dict[str, Any]:
    """The circom input JSON for an honest batch; raises StatementViolationError otherwise.

    rows: {"payer", "model_id", "nonce", "tokens"}; aggregates: {"payer", "model_id",
    "first_nonce", "count", "tokens"} with keys strictly increasing; header: {"chain_id",
    "settlement", "operator", "batch_seq"}. Addresses may be ints or 0x-strings. Rows are
    sorted by (key, nonce), assigned to their aggregate's slot and padded to n.
    """
    _check_size(n, C)
    head = _parse_header(header)
    parsed_rows = sorted(_parse_rows(rows))
    aggs = _parse_aggregates(aggregates)
    if len(parsed_rows) > n:
        raise StatementViolationError(f"{len(parsed_rows)} rows do not fit in n = {n}")
    if len(aggs) > C:
        raise StatementViolationError(f"{len(aggs)} aggregates do not fit in C = {C} slots")
    keys = [channel_key(a[0], a[1]) for a in aggs]
    for j in range(1, len(keys)):
        if keys[j] <= keys[j - 1]:
            raise StatementViolationError(f"aggregate keys not strictly increasing at slot {j}")
    by_key: dict[int, list[tuple[int, int]]] = {}
    for key, nonce, tokens in parsed_rows:
        if key not in keys:
            raise StatementViolationError(f"row of channel key {key:#x} is in no aggregate")
        by_key.setdefault(key, []).append((nonce, tokens))
    for j, (_payer, _model, first, count, total) in enumerate(aggs):
        channel = by_key.get(keys[j], [])
        nonces = [nonce for nonce, _ in channel]
        if len(channel) != count:
            raise StatementViolationError(
                f"aggregate {j} claims {count} rows, the batch has {len(channel)}"
            )
        if nonces != list(range(first, first + count)):
            raise StatementViolationError(
                f"aggregate {j} nonces {nonces} are not {first}..{first + count - 1}"
            )
        if sum(t for _, t in channel) != total:
            raise StatementViolationError(
                f"aggregate {j} claims {total} tokens, its rows sum to {sum(t for _, t in channel)}"
            )
    return _assemble(n, C, head, aggs, parsed_rows, len(aggs))


def witness_input_unchecked(
    n: int,
    C: int,
    rows: Sequence[Mapping[str, Any]],
    aggregates: Sequence[Mapping[str, Any]],
    header: Mapping[str, Any],
    *,
    sort_rows: bool = False,
    num_channels: int | None = None,
) -> dict[str, Any]:
    """The circom input for ANY rows and aggregates, with no statement checks (malicious path).

    Values are taken as given (no range checks, rows kept in the given order unless
    sort_rows), so the circuit alone has to reject what the statement forbids.
    """
    head = {name: _as_int(header[name], name) for name in HEADER_FIELDS}
    parsed_rows = [
        (
            channel_key(_as_int(r["payer"], "payer"), _as_int(r["model_id"], "model_id")),
            _as_int(r["nonce"], "nonce"),
            _as_int(r["tokens"], "tokens"),
        )
        for r in rows
    ]
    if sort_rows:
        parsed_rows.sort()
    aggs = [
        (
            _as_int(a["payer"], "payer"),
            _as_int(a["model_id"], "model_id"),
            _as_int(a["first_nonce"], "first_nonce"),
            _as_int(a["count"], "count"),
            _as_int(a["tokens"], "tokens"),
        )
        for a in aggregates
    ]
    if len(parsed_rows) > n or len(aggs) > C:
        raise PeerError(f"{len(parsed_rows)} rows / {len(aggs)} aggregates exceed n={n}, C={C}")
    count = len(aggs) if num_channels is None else num_channels
    return _assemble(n, C, head, aggs, parsed_rows, count)


def example_batch(
    rows: int, channels: int, *, seed: int = 0
) -> tuple[list[dict[str, int]], list[dict[str, int]], dict[str, int]]:
    """A seeded honest batch: `rows` calls spread over `channels` channels (for benchmarks).

    Returns (rows, aggregates, header) in the input format of `prove`.
    """
    if not 1 <= channels <= rows:
        raise PeerError(f"need 1 <= channels <= rows, got {channels} channels, {rows} rows")
    rng = random.Random(seed)
    payers: list[int] = []
    while len(payers) < channels:
        payer = rng.getrandbits(PAYER_BITS)
        if payer and payer not in payers:
            payers.append(payer)
    payers.sort()
    sizes = [rows // channels + (1 if j < rows % channels else 0) for j in range(channels)]
    batch: list[dict[str, int]] = []
    aggregates: list[dict[str, int]] = []
    for payer, size in zip(payers, sizes, strict=True):
        first = rng.randrange(1, 1 << 20)
        tokens = [rng.randrange(1, 1 << 13) for _ in range(size)]
        batch += [
            {"payer": payer, "model_id": 7, "nonce": first + k, "tokens": t}
            for k, t in enumerate(tokens)
        ]
        aggregates.append(
            {
                "payer": payer,
                "model_id": 7,
                "first_nonce": first,
                "count": size,
                "tokens": sum(tokens),
            }
        )
    rng.shuffle(batch)
    header = {"chain_id": 31337, "settlement": 0x5E77, "operator": 0x0BE7, "batch_seq": seed}
    return batch, aggregates, header


# ---------------------------------------------------------------- proving


def _calldata_words(calldata: str) -> list[list[str]]:
    """The top-level arguments of `exportSolidityCallData`, each flattened to its 0x-words.

    Groth16 exports `[a],[[b]],[c],[pub]`, PLONK `[proof][pub]` (no comma): split on the
    brackets rather than parse JSON.
    """
    args: list[list[str]] = []
    depth = 0
    start = 0
    for i, ch in enumerate(calldata):
        if ch == "[":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth == 0:
                args.append(re.findall(r"0x[0-9a-fA-F]+", calldata[start : i + 1]))
    if depth != 0 or not args:
        raise ToolError(f"unreadable Solidity calldata: {calldata[:200]}")
    return args


def prove_input(
    n: int,
    C: int,
    protocol: Protocol,
    circuit_input: Mapping[str, Any],
    *,
    progress: Progress | None = None,
) -> PeerResult:
    """Generate the witness for `circuit_input`, prove and verify; time each step.

    Raises WitnessGenerationError when a constraint of the circuit fails on the input.
    """
    keys = setup(n, C, protocol, progress=progress)
    say = progress or _stderr_progress
    with tempfile.TemporaryDirectory(dir=cache_root()) as tmp:
        work = Path(tmp)
        (work / "input.json").write_text(json.dumps(circuit_input))
        say(f"{protocol} prove UsageBatch({n}, {C})")
        proc = subprocess.run(
            [
                "node",
                str(RUNNER),
                protocol,
                str(keys.circuit.wasm),
                str(keys.zkey),
                str(keys.verification_key),
                str(work / "input.json"),
                str(work),
            ],
            capture_output=True,
            text=True,
            check=False,
            cwd=REPO_ROOT,
        )
        if proc.returncode == 2:
            raise WitnessGenerationError(proc.stderr.strip()[-2000:])
        if proc.returncode != 0:
            raise ToolError(f"snarkjs runner exited with {proc.returncode}:\n{proc.stderr[-2000:]}")
        timings = json.loads((work / "timings.json").read_text())
        proof = json.loads((work / "proof.json").read_text())
        public = tuple(json.loads((work / "public.json").read_text()))
        words = _calldata_words((work / "calldata.txt").read_text())
    total_words = sum(len(w) for w in words)
    public_words = len(words[-1])
    if public_words != len(public):
        raise ToolError(
            f"calldata has {public_words} public words, proof has {len(public)} signals"
        )
    return PeerResult(
        prove_seconds=float(timings["witness_seconds"]) + float(timings["prove_seconds"]),
        verify_seconds=float(timings["verify_seconds"]),
        proof_bytes=4 + 32 * total_words,
        ok=bool(timings["ok"]),
        witness_seconds=float(timings["witness_seconds"]),
        proof_only_bytes=32 * (total_words - public_words),
        proof=proof,
        public_signals=public,
        calldata_words=tuple(tuple(w) for w in words),
    )


def prove(
    n: int,
    C: int,
    protocol: Protocol,
    rows: Sequence[Mapping[str, Any]],
    aggregates: Sequence[Mapping[str, Any]],
    header: Mapping[str, Any],
    *,
    progress: Progress | None = None,
) -> PeerResult:
    """Prove an honest batch with the circom/snarkjs peer (setup cached) and verify it."""
    circuit_input = witness_input(n, C, rows, aggregates, header)
    return prove_input(n, C, protocol, circuit_input, progress=progress)


def verify(
    n: int,
    C: int,
    protocol: Protocol,
    proof: Mapping[str, Any],
    public_signals: Sequence[str | int],
) -> bool:
    """`snarkjs <protocol> verify` of a proof against (possibly tampered) public signals."""
    keys = setup(n, C, protocol)
    with tempfile.TemporaryDirectory(dir=cache_root()) as tmp:
        work = Path(tmp)
        (work / "proof.json").write_text(json.dumps(proof))
        (work / "public.json").write_text(json.dumps([str(s) for s in public_signals]))
        proc = subprocess.run(
            [
                str(_bin("snarkjs")),
                protocol,
                "verify",
                str(keys.verification_key),
                str(work / "public.json"),
                str(work / "proof.json"),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    text = _plain(proc.stdout + proc.stderr)
    if "OK!" in text:
        return True
    if "invalid proof" in text.lower():
        return False
    raise ToolError(f"snarkjs {protocol} verify gave no verdict:\n{text[-2000:]}")
