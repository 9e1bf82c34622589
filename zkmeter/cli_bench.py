"""`zkmeter bench ...`: run the benchmark suites and print their comparison table."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import click

from zkmeter.bench_table import load_report, render_table

BENCHES = Path(__file__).resolve().parent.parent / "benches"


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
