"""`zkmeter bench throughput`: zkmeter against circom + snarkjs on the same receipts.

For each batch size, one seeded honest batch (`zkmeter.peers.snarkjs_peer.example_batch`) is
proven by zkmeter's prover (2 processes) and by the circom peer with Groth16 and PLONK, in
the same run. Per system: prove seconds, verify seconds (off-chain), proof bytes (the
calldata its on-chain verifier takes), the gas of one verifying transaction on the embedded
chain (21,000 base and calldata included, the same measure for every system), and calls
proven per second. A peer whose setup would need a powers-of-tau file larger than
``max_ptau_power`` that is not cached yet is skipped, with the reason in the table.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

from circuits.public_inputs import BatchHeader
from circuits.usage_batch import Layout
from contracts.client import ChainClient
from contracts.client.deployment import USAGE_VERIFIER
from prover.prover import prove_batch
from prover.proving_key import ProvingKey
from prover.srs import SRS, InsecureSRSWarning
from prover.witness import UsageRow, smallest_log_size
from verifier.usage_verifier import verify_batch_proof

CHANNELS = 4
DEFAULT_SIZES = (64, 256, 1024, 4096)
GAS_LIMIT = 8_000_000


@dataclass(frozen=True)
class Measurement:
    rows: int
    system: str  # "zkmeter", "groth16", "plonk"
    prove_seconds: float | None = None
    verify_seconds: float | None = None
    proof_bytes: int | None = None
    verify_gas: int | None = None
    skipped: str = ""  # why there is no measurement

    @property
    def calls_per_second(self) -> float | None:
        return None if self.prove_seconds is None else self.rows / self.prove_seconds


@cache
def _chain() -> ChainClient:
    return ChainClient.embedded()


def transaction_gas(client: ChainClient, contract: Any, function: str, *args: Any) -> int:
    """Gas of one transaction calling a (view) function, as a relayer would pay it."""
    receipt = client.send(getattr(contract.functions, function)(*args), None, GAS_LIMIT)
    return int(receipt["gasUsed"])


def measure_zkmeter(rows: int, peer_batch: Any) -> Measurement:
    batch_rows, _aggregates, header_json = peer_batch
    usage = [UsageRow(r["payer"], r["model_id"], r["nonce"], r["tokens"]) for r in batch_rows]
    k = smallest_log_size(len(usage))
    pk = _proving_key(k)
    header = BatchHeader(
        header_json["chain_id"],
        header_json["settlement"],
        header_json["operator"],
        header_json["batch_seq"],
    )
    result = prove_batch(pk, header, usage, processes=2)
    started = time.perf_counter()
    verdict = verify_batch_proof(pk.vk, result.public, result.proof)
    verify_seconds = time.perf_counter() - started
    if not verdict.accepted:
        raise RuntimeError(f"zkmeter's own proof was rejected: {verdict.message}")
    client = _chain()
    verifier = client.contract(
        USAGE_VERIFIER,
        client.deploy_usage_verifier(pk.vk),
    )
    proof_bytes = result.proof.to_bytes()
    address = client.w3.to_checksum_address
    aggregates = [
        (address(f"0x{a.payer:040x}"), a.model_id, a.first_nonce, a.count, a.tokens)
        for a in result.public.aggregates
    ]
    gas = transaction_gas(
        client,
        verifier,
        "verifyBatch",
        header.chain_id,
        address(f"0x{header.settlement:040x}"),
        address(f"0x{header.operator:040x}"),
        header.batch_seq,
        aggregates,
        proof_bytes,
    )
    return Measurement(rows, "zkmeter", result.timings.total, verify_seconds, len(proof_bytes), gas)


@cache
def _proving_key(k: int) -> ProvingKey:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureSRSWarning)
        srs = SRS.insecure_development(Layout(k).srs_powers, seed=k, lagrange_log_sizes=(k,))
    return ProvingKey.build(srs, k)


def peer_feasible(peer: Any, rows: int, protocol: str, max_ptau_power: int) -> str:
    """'' if the peer can run at this size, else the reason it is skipped."""
    if peer.cached_setup(rows, CHANNELS, protocol):
        return ""
    info = peer.r1cs_info(rows, CHANNELS, optimization="O2" if protocol == "groth16" else "O1")
    size = info["constraints"] + info["public_inputs"] + info["outputs"] + 1
    if protocol == "plonk":
        size *= 2  # measured: PLONK gates ~ 1.95 x R1CS constraints for this circuit
    need = max(math.ceil(math.log2(size)), peer.SMALLEST_PTAU_POWER)
    if need <= max(max_ptau_power, peer.largest_cached_ptau_power()):
        return ""
    return f"needs a 2^{need} powers of tau (over --max-ptau-power {max_ptau_power})"


def measure_peer(peer: Any, rows: int, protocol: str, peer_batch: Any) -> Measurement:
    batch_rows, aggregates, header = peer_batch
    result = peer.prove(rows, CHANNELS, protocol, batch_rows, aggregates, header)
    if not result.ok:
        raise RuntimeError(f"the {protocol} peer rejected its own proof")
    setup = peer.setup(rows, CHANNELS, protocol)
    gas = _peer_gas(peer, setup.solidity_verifier, protocol, result.calldata_words)
    return Measurement(
        rows, protocol, result.prove_seconds, result.verify_seconds, result.proof_bytes, gas
    )


def _peer_gas(peer: Any, verifier_sol: Path, protocol: str, words: Sequence[Sequence[str]]) -> int:
    """Compile snarkjs' exported verifier with our pinned solc, deploy it, call verifyProof."""
    from contracts.build import SETTINGS, run_solc

    source = verifier_sol.read_text()
    output = run_solc(
        {
            "language": "Solidity",
            "sources": {"verifier.sol": {"content": source}},
            "settings": SETTINGS,
        }
    )
    compiled = next(iter(output["contracts"]["verifier.sol"].values()))
    client = _chain()
    factory = client.w3.eth.contract(
        abi=compiled["abi"], bytecode=compiled["evm"]["bytecode"]["object"]
    )
    receipt = client.send(factory.constructor(), None, GAS_LIMIT)
    contract = client.w3.eth.contract(address=receipt["contractAddress"], abi=compiled["abi"])
    ints = [[int(w, 16) for w in group] for group in words]
    if protocol == "groth16":
        a, b, c, public = ints
        args: list[Any] = [a, [b[0:2], b[2:4]], c, public]
    else:
        args = [ints[0], ints[1]]
    return transaction_gas(client, contract, "verifyProof", *args)


def run_throughput(
    sizes: Sequence[int],
    protocols: Sequence[str],
    max_ptau_power: int,
    advance: Callable[[str], None] = lambda _label: None,
) -> list[Measurement]:
    """Measure every system at every size; ``advance`` is called before each task."""
    from zkmeter.peers import snarkjs_peer as peer

    results: list[Measurement] = []
    for rows in sizes:
        batch = peer.example_batch(rows, CHANNELS, seed=rows)
        advance(f"zkmeter, {rows} rows")
        results.append(measure_zkmeter(rows, batch))
        for protocol in protocols:
            advance(f"{protocol}, {rows} rows")
            if not peer.tools_available():
                results.append(Measurement(rows, protocol, skipped="node_modules missing"))
                continue
            reason = peer_feasible(peer, rows, protocol, max_ptau_power)
            if reason:
                results.append(Measurement(rows, protocol, skipped=reason))
                continue
            results.append(measure_peer(peer, rows, protocol, batch))
    return results


def render_table(results: Sequence[Measurement]) -> str:
    """One Markdown table; the last column is zkmeter's calls/s over the peer's."""
    ours = {m.rows: m for m in results if m.system == "zkmeter"}
    lines = [
        "| rows | system | prove s | verify s | proof bytes | verify gas | calls/s "
        "| zkmeter / peer |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for m in results:
        if m.skipped:
            lines.append(f"| {m.rows} | {m.system} | skipped: {m.skipped} | | | | | |")
            continue
        ratio = ""
        base = ours.get(m.rows)
        if m.system != "zkmeter" and base and base.calls_per_second and m.calls_per_second:
            ratio = f"{base.calls_per_second / m.calls_per_second:.2f}x"
        lines.append(
            f"| {m.rows} | {m.system} | {m.prove_seconds:.2f} | {m.verify_seconds:.3f} "
            f"| {m.proof_bytes} | {m.verify_gas:,} | {m.calls_per_second:.0f} | {ratio} |"
        )
    return "\n".join(lines)


def write_json(results: Sequence[Measurement], path: Path) -> None:
    rows = [{**asdict(m), "calls_per_second": m.calls_per_second} for m in results]
    path.write_text(json.dumps(rows, indent=2) + "\n")


def write_plot(results: Sequence[Measurement], path: Path) -> None:
    """Calls proven per second against batch size, one line per system (log-log)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5), dpi=120)
    for system in dict.fromkeys(m.system for m in results):
        points = [(m.rows, m.calls_per_second) for m in results if m.system == system]
        points = [(x, y) for x, y in points if y is not None]
        if points:
            xs, ys = zip(*points, strict=True)
            axes.plot(xs, ys, marker="o", label=system)
    axes.set_xscale("log", base=2)
    axes.set_yscale("log")
    axes.set_xlabel("receipts per batch")
    axes.set_ylabel("calls proven per second")
    axes.set_title("Proof throughput on the same receipts and machine")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
