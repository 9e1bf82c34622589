"""Benchmarks: `zkmeter bench table|throughput|load`."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from zkmeter.bench_table import load_report, render_table
from zkmeter.commands.options import EXISTING_FILE
from zkmeter.commands.payer import DEFAULT_PORT

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
    type=click.IntRange(8, 27),
    default=20,
    show_default=True,
    help="Largest powers-of-tau file the peer may create (a development file written "
    "natively: about 2 min and 1.2 GB at 2^20); cached files of any size are used.",
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


def load_channels(
    payer_keys: Sequence[bytes],
    deployment: Any,
    operator: str,
    model_ids: Sequence[int],
    max_rate: int,
    starts: dict[tuple[str, int], tuple[int, int]] | None = None,
) -> list[Any]:
    """One PayerChannel per (payer, model), continuing from `starts[(payer, model)]`
    (nonce, cumulative) where given."""
    from eth_account import Account

    from channels.payer import PayerChannel
    from channels.receipts import ReceiptDomain

    domain = ReceiptDomain(deployment.chain_id, deployment.settlement)
    channels = []
    for key in payer_keys:
        account = Account.from_key(key)
        for model in model_ids:
            nonce, cumulative = (starts or {}).get((account.address, model), (0, 0))
            channels.append(
                PayerChannel(
                    account, domain, operator, model, max_rate, nonce=nonce,
                    cumulative_tokens=cumulative,
                )
            )  # fmt: skip
    return channels


@click.command("load")
@click.option(
    "--url",
    "urls",
    multiple=True,
    default=(f"http://127.0.0.1:{DEFAULT_PORT}",),
    show_default=True,
    help="Intake URL; repeat to spread lanes over several intake processes.",
)
@click.option("--deployment", envvar="ZKMETER_DEPLOYMENT", type=EXISTING_FILE, required=True)
@click.option("--operator", required=True)
@click.option("--model", "model_ids", type=click.IntRange(1), multiple=True, default=(1,))
@click.option(
    "--keys",
    "keys_file",
    type=EXISTING_FILE,
    required=True,
    help="Payer keys, one hex key a line, each with escrow for the operator and nothing "
    "unsettled at the daemon (channels continue from the chain's settled state).",
)
@click.option("--rpc-url", envvar="ZKMETER_RPC_URL", help="Node to read channel positions from.")
@click.option("--payers", type=click.IntRange(1, 4096), help="Use the first N keys (default all).")
@click.option("--receipts", type=click.IntRange(1), default=1000, show_default=True,
              help="Receipts signed per channel before the clock starts.")  # fmt: skip
@click.option("--duration", type=click.FloatRange(0.1, 3600), default=30.0, show_default=True)
@click.option("--rate", type=click.FloatRange(1), help="Receipts/s in all (default: max).")
@click.option("--batch", type=click.IntRange(1, 10_000), default=32, show_default=True,
              help="Receipts per request.")  # fmt: skip
@click.option("--lanes", type=click.IntRange(1, 1024), default=8, show_default=True,
              help="Concurrent connections (each owns its channels).")  # fmt: skip
@click.option("--tokens", type=click.IntRange(0, 2**32 - 1), default=1, show_default=True)
@click.option("--max-rate", "max_rate", default=str(10**16), show_default=True,
              help="Rate cap signed, base units per 1,000 tokens.")  # fmt: skip
@click.option("--settle-wait", type=click.FloatRange(0), default=0.0,
              help="Seconds to wait after sending for every admitted receipt to settle "
              "(0: do not measure settlement).")  # fmt: skip
@click.option("--warmup", type=click.FloatRange(0), default=2.0, show_default=True,
              help="Seconds at the start whose latencies are reported apart from the "
              "steady state's (caches filling).")  # fmt: skip
@click.option("--allow-remote", is_flag=True,
              help="Allow non-loopback targets (a load test is sent to this machine only "
              "unless this is given).")  # fmt: skip
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the figures as JSON.")  # fmt: skip
def load(
    urls: tuple[str, ...],
    deployment: Path,
    operator: str,
    model_ids: tuple[int, ...],
    keys_file: Path,
    rpc_url: str | None,
    payers: int | None,
    receipts: int,
    duration: float,
    rate: float | None,
    batch: int,
    lanes: int,
    tokens: int,
    max_rate: str,
    settle_wait: float,
    warmup: float,
    allow_remote: bool,
    json_out: Path | None,
) -> None:
    """Load a daemon with pre-signed receipts: admitted receipts/s, p50/p99 admission
    latency, and (with --settle-wait) settled receipts/s."""
    import json

    from contracts.client import Deployment
    from zkmeter.loadgen import LoadError, check_loopback, presign, run_load

    if not allow_remote:
        try:
            check_loopback(urls)
        except LoadError as error:
            raise click.ClickException(str(error)) from None
    lines = [x.strip() for x in keys_file.read_text().splitlines() if x.strip()]
    keys = [bytes.fromhex(x.removeprefix("0x")) for x in lines][: payers or None]
    dep = Deployment.load(deployment)
    starts = None
    if rpc_url:
        from eth_account import Account

        from contracts.client import ChainClient

        client = ChainClient.connect(rpc_url)
        starts = {}
        for key in keys:
            address = Account.from_key(key).address
            for model in model_ids:
                state = client.channel(address, operator, model)
                starts[(address, model)] = (state.nonce, state.cumulative_tokens)
    channels = load_channels(keys, dep, operator, model_ids, int(max_rate, 0), starts)
    click.echo(f"signing {receipts * len(channels)} receipts...", err=True)
    signed = presign(channels, receipts, tokens)
    result = run_load(
        list(urls), signed, lanes=lanes, batch=batch, rate=rate, duration=duration,
        settle_wait=settle_wait, warmup=min(warmup, duration / 2),
    )  # fmt: skip
    click.echo(result.summary())
    if json_out is not None:
        json_out.write_text(json.dumps(result.to_json(), indent=1))
