"""`zkmeter srs ...`: create a development SRS, import a snarkjs .ptau, inspect an SRS file."""

from __future__ import annotations

import warnings
from pathlib import Path

import click

from prover.srs import (
    DEFAULT_EXTRA_POWERS,
    SRS,
    InsecureSRSWarning,
    SRSError,
    import_ptau,
)

# Above this many powers, `srs new` shows a progress bar.
_PROGRESS_THRESHOLD = 1 << 12


@click.group()
def srs() -> None:
    """Structured reference strings (powers of tau) for KZG commitments."""


@srs.command("new")
@click.option(
    "--log-size",
    "-k",
    "log_size",
    type=click.IntRange(1, 28),
    required=True,
    help="Domain size 2^K: writes 2^K + 8 G1 powers.",
)
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--seed", type=int, default=None, help="Derive tau from this seed (reproducible).")
def new(log_size: int, output: Path, seed: int | None) -> None:
    """Generate an INSECURE development SRS (tau is known to this machine)."""
    n_powers = (1 << log_size) + DEFAULT_EXTRA_POWERS
    click.secho(
        "WARNING: INSECURE development SRS, tau is known: anyone holding it can forge proofs. "
        "Use `zkmeter srs import` with a ceremony .ptau for anything real.",
        fg="red",
        err=True,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureSRSWarning)
        if n_powers >= _PROGRESS_THRESHOLD:
            with click.progressbar(length=n_powers, label="G1 powers", file=None) as bar:
                last = [0]

                def progress(done: int, total: int) -> None:
                    bar.update(done - last[0])
                    last[0] = done

                value = SRS.insecure_development(
                    n_powers, seed=seed, progress=progress, lagrange_log_sizes=(log_size,)
                )
        else:
            value = SRS.insecure_development(n_powers, seed=seed, lagrange_log_sizes=(log_size,))
    try:
        value.save(output)
    except OSError as exc:
        raise click.ClickException(f"cannot write {output}: {exc.strerror}") from exc
    click.echo(f"wrote {n_powers} G1 powers to {output} (digest 0x{value.digest.hex()})")


@srs.command("import")
@click.argument("ptau", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option(
    "--max-powers", type=click.IntRange(2), default=None, help="Keep only the first N G1 powers."
)
def import_(ptau: Path, output: Path, max_powers: int | None) -> None:
    """Import the powers of tau of a snarkjs .ptau file (validated) into an SRS file."""
    try:
        value = import_ptau(ptau, max_powers=max_powers)
    except SRSError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        value.save(output)
    except OSError as exc:
        raise click.ClickException(f"cannot write {output}: {exc.strerror}") from exc
    click.echo(f"imported {value.n_powers} G1 powers to {output} (digest 0x{value.digest.hex()})")


@srs.command("info")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def info(path: Path) -> None:
    """Validate an SRS file and print its size and digest."""
    try:
        value = SRS.load(path)
    except SRSError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{path}: {value.n_powers} G1 powers, max degree {value.max_degree}")
    click.echo(f"digest 0x{value.digest.hex()}")
