"""Benchmarks: `zkmeter bench table|throughput|load`."""

from __future__ import annotations

import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import click

from zkmeter.bench_table import load_report, render_table
from zkmeter.commands.options import EXISTING_FILE
from zkmeter.commands.payer import DEFAULT_PORT, post_json

BENCHES = Path(__file__).resolve().parents[2] / "benches"


@click.group()
def bench() -> None:
    """Benchmarks: medians and speed-ups against the named baselines."""


@bench.command("table")
@click.option(
    "--json",
    "report_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Print the table of an existing pytest-benchmark JSON report instead of running.",
)
@click.option("--quick", is_flag=True, help="Only the small sizes (2^10..2^12), for a first look.")
@click.option("-k", "keyword", default=None, help="pytest -k expression to select benchmarks.")
@click.option(
    "--save",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Keep the JSON report of this run here.",
)
def table(report_path: Path | None, quick: bool, keyword: str | None, save: Path | None) -> None:
    """Run benches/ (or read --json) and print one table of medians and ratios."""
    if report_path is None:
        if not BENCHES.is_dir():
            raise click.ClickException(f"no benches/ folder at {BENCHES} (run from a checkout)")
        with tempfile.TemporaryDirectory() as tmp:
            out = save or Path(tmp) / "report.json"
            selection = keyword or (
                "1024 or 4096 or 2048 or small or mul or inverse or add or pairing"
                if quick
                else None
            )
            command = [
                sys.executable,
                "-m",
                "pytest",
                str(BENCHES),
                "--benchmark-only",
                "-m",
                "not slow",
                "--ignore",  # the circom/snarkjs peer has its own command: bench throughput
                str(BENCHES / "bench_peer_snarkjs.py"),
                f"--benchmark-json={out}",
                "-p",
                "no:cacheprovider",
                "-q",
            ]
            if selection:
                command += ["-k", selection]
            click.echo("running: " + " ".join(command), err=True)
            status = subprocess.call(command, cwd=BENCHES.parent)
            if status != 0 or not out.exists():
                raise click.ClickException(f"benchmark run failed (pytest exit {status})")
            click.echo(render_table(load_report(out)))
        return
    click.echo(render_table(load_report(report_path)))


@bench.command("throughput")
@click.option(
    "--sizes",
    default=",".join(str(n) for n in (64, 256, 1024, 4096)),
    show_default=True,
    help="Batch sizes (receipts), comma-separated.",
)
@click.option(
    "--protocol",
    "protocols",
    multiple=True,
    type=click.Choice(["groth16", "plonk"]),
    default=("groth16", "plonk"),
    show_default=True,
    help="Peer proving systems to run.",
)
@click.option(
    "--max-ptau-power",
    type=click.IntRange(8, 28),
    default=13,
    show_default=True,
    help="Largest powers-of-tau file the peer may create (snarkjs' prepare phase2 took "
    "38 min at 2^16 here); cached files of any size are used.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("throughput"),
    show_default=True,
    help="Folder for throughput.json and throughput.png.",
)
def throughput(sizes: str, protocols: tuple[str, ...], max_ptau_power: int, out_dir: Path) -> None:
    """zkmeter against circom + snarkjs (Groth16, PLONK) on the same receipts: one table."""
    if str(BENCHES.parent) not in sys.path:  # benches/ is part of the checkout, not installed
        sys.path.insert(0, str(BENCHES.parent))
    from zkmeter.throughput import render_table as render_throughput
    from zkmeter.throughput import run_throughput, write_json, write_plot

    try:
        size_list = [int(x) for x in sizes.split(",") if x.strip()]
    except ValueError:
        raise click.BadParameter(
            f"not a list of integers: {sizes!r}", param_hint="--sizes"
        ) from None
    if any(n < 4 for n in size_list):
        raise click.BadParameter(
            "batch sizes must be at least 4 (4 channels)", param_hint="--sizes"
        )
    tasks = len(size_list) * (1 + len(protocols))
    with click.progressbar(length=tasks, label="measuring", file=sys.stderr) as bar:
        first = [True]

        def advance(label: str) -> None:
            if not first[0]:
                bar.update(1)
            first[0] = False
            bar.label = label

        results = run_throughput(size_list, protocols, max_ptau_power, advance)
        bar.update(1)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(results, out_dir / "throughput.json")
    write_plot(results, out_dir / "throughput.png")
    click.echo(render_throughput(results))
    click.echo(f"\nwrote {out_dir / 'throughput.json'} and {out_dir / 'throughput.png'}")


def run_load(
    url: str,
    payer_keys: list[bytes],
    deployment: Any,
    operator: str,
    model_id: int,
    receipts_per_payer: int,
    duration: float,
    tokens: int = 1,
    starts: dict[str, tuple[int, int]] | None = None,
    max_rate: int = 2**192 - 1,
) -> dict[str, Any]:
    """Play each payer in its own thread: sign and post receipts one at a time until
    `receipts_per_payer` are sent or `duration` seconds pass; a refused receipt's state is
    not taken (the next receipt retries it). `starts` gives a payer's channel position
    (nonce, cumulative) to continue from. Returns counts and rates."""
    from eth_account import Account

    from channels.payer import PayerChannel
    from channels.receipts import ReceiptDomain

    domain = ReceiptDomain(deployment.chain_id, deployment.settlement)
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    deadline = time.monotonic() + duration
    endpoint = url.rstrip("/") + "/receipts"

    def play(key: bytes) -> None:
        account = Account.from_key(key)
        nonce, cumulative = (starts or {}).get(account.address, (0, 0))
        channel = PayerChannel(
            account, domain, operator, model_id, max_rate, nonce=nonce, cumulative_tokens=cumulative
        )
        for _ in range(receipts_per_payer):
            if time.monotonic() > deadline:
                return
            receipt = channel.next_receipt(tokens, secrets.token_bytes(32))
            status, reply = post_json(endpoint, receipt.to_json())
            with lock:
                outcomes["admitted" if status == 202 else str(reply.get("error"))] += 1
            if status == 202:
                channel.record(receipt)

    started = time.monotonic()
    threads = [threading.Thread(target=play, args=(k,)) for k in payer_keys]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    admitted = outcomes.pop("admitted", 0)
    return {
        "admitted": admitted,
        "refused": dict(outcomes),
        "seconds": elapsed,
        "receipts_per_second": admitted / elapsed if elapsed > 0 else 0.0,
    }


@click.command("load")
@click.option("--url", default=f"http://127.0.0.1:{DEFAULT_PORT}", show_default=True)
@click.option("--deployment", envvar="ZKMETER_DEPLOYMENT", type=EXISTING_FILE, required=True)
@click.option("--operator", required=True)
@click.option("--model", "model_id", type=click.IntRange(1), default=1, show_default=True)
@click.option("--payers", type=click.IntRange(1, 256), default=4, show_default=True)
@click.option("--receipts", type=click.IntRange(1, 1_000_000), default=100, show_default=True)
@click.option("--duration", type=click.FloatRange(0.1, 3600), default=10.0, show_default=True)
@click.option(
    "--keys",
    "keys_file",
    type=EXISTING_FILE,
    help="Payer keys, one hex key a line (with escrow for the operator); default: fresh keys, "
    "which the daemon refuses for lack of escrow.",
)
def load(
    url: str,
    deployment: Path,
    operator: str,
    model_id: int,
    payers: int,
    receipts: int,
    duration: float,
    keys_file: Path | None,
) -> None:
    """Play --payers payers against a daemon, each sending up to --receipts receipts within
    --duration seconds; print receipts/s and refusals."""
    from contracts.client import Deployment

    if keys_file is not None:
        lines = [x.strip() for x in keys_file.read_text().splitlines() if x.strip()]
        keys = [bytes.fromhex(x.removeprefix("0x")) for x in lines][:payers]
    else:
        keys = [secrets.token_bytes(32) for _ in range(payers)]
    result = run_load(
        url, keys, Deployment.load(deployment), operator, model_id, receipts, duration
    )
    click.echo(
        f"{result['admitted']} admitted in {result['seconds']:.2f} s "
        f"({result['receipts_per_second']:.1f} receipts/s); refused: {result['refused'] or 'none'}"
    )
