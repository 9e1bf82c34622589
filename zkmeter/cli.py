"""The `zkmeter` command line: one click group, sub-commands registered per area."""

from __future__ import annotations

import click

from zkmeter import __version__
from zkmeter.cli_bench import bench
from zkmeter.cli_chain import chain, escrow, models, settle
from zkmeter.cli_daemon import daemon, load, receipts
from zkmeter.cli_proof import keys, prove, verify
from zkmeter.cli_srs import srs


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="zkmeter")
def main() -> None:
    """zkmeter: prove and settle AI-model usage on Ethereum with KZG batch proofs."""


@main.command()
def demo() -> None:
    """The worked example end to end on the embedded chain: 12 calls x 800 tokens at
    0.002 OPEN per 1,000 tokens, proven, verified on-chain, settled: 0.0192 OPEN."""
    from zkmeter.demo import run_demo

    run_demo(say=click.echo)


for command in (srs, keys, prove, verify, settle, chain, models, escrow, bench, daemon, receipts):
    main.add_command(command)

bench.add_command(load)

if __name__ == "__main__":
    main()
