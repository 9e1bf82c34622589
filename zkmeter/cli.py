"""The `zkmeter` command line: one click group, sub-commands registered per area."""

from __future__ import annotations

import click

from zkmeter import __version__
from zkmeter.cli_bench import bench
from zkmeter.cli_chain import chain, escrow, models, settle
from zkmeter.cli_daemon import daemon, load, receipts
from zkmeter.cli_proof import keys, prove, verify
from zkmeter.cli_srs import srs
from zkmeter.ui.cli import DEFAULT_PORT, ui


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="zkmeter")
def main() -> None:
    """zkmeter: prove and settle AI-model usage on Ethereum with KZG batch proofs."""


@main.command()
@click.option("--ui", "serve_ui", is_flag=True, help="Then serve the dashboard on the demo chain.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Dashboard address (--ui).")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=DEFAULT_PORT,
    show_default=True,
    help="Dashboard port (--ui; 0: any free port).",
)
def demo(serve_ui: bool, host: str, port: int) -> None:
    """The worked example end to end on the embedded chain: 12 calls x 800 tokens at
    0.002 OPEN per 1,000 tokens, proven, verified on-chain, settled: 0.0192 OPEN.
    With --ui, the dashboard then shows it until interrupted (Ctrl-C)."""
    from zkmeter.demo import run_demo

    if not serve_ui:
        run_demo(say=click.echo)
        return
    from contracts.client import ChainClient
    from zkmeter.ui.cli import serve_demo

    client = ChainClient.embedded()
    run_demo(say=click.echo, client=client)
    serve_demo(client, host, port)


for command in (srs, keys, prove, verify, settle, chain, models, escrow, bench, daemon, receipts):
    main.add_command(command)
main.add_command(ui)

bench.add_command(load)

if __name__ == "__main__":
    main()
