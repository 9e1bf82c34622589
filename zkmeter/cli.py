"""The `zkmeter` command line: one click group; the commands live in zkmeter.commands, one
module per user (provers and verifiers, payers, operators, creators, chain admins, benchmarks).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from zkmeter import __version__
from zkmeter.commands.admin import chain
from zkmeter.commands.bench import bench, load
from zkmeter.commands.creator import models
from zkmeter.commands.devnet import devnet
from zkmeter.commands.operator import daemon, settle
from zkmeter.commands.options import chain_failure
from zkmeter.commands.payer import escrow, receipts
from zkmeter.commands.proofs import keys, prove, srs, verify
from zkmeter.commands.token import token
from zkmeter.ui.cli import DEFAULT_PORT, ui

#: The commands by who uses them, as `zkmeter --help` lists them.
SECTIONS: Sequence[tuple[str, Sequence[str]]] = (
    ("Try it", ("demo", "devnet")),
    ("Dashboard", ("ui",)),
    ("Provers and verifiers", ("srs", "keys", "prove", "verify")),
    ("Payers", ("escrow", "receipts")),
    ("Operators", ("daemon", "settle")),
    ("Model creators", ("models",)),
    ("Chain administration", ("chain", "token")),
    ("Benchmarks", ("bench",)),
)


class SectionedGroup(click.Group):
    """A group whose help lists its commands in SECTIONS, by who uses them, and whose commands
    end with one line, never a traceback, on a failure of the node or a contract."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.ClickException:
            raise
        except Exception as exc:
            failure = chain_failure(exc)
            if failure is exc:
                raise
            raise failure from None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        listed: set[str] = set()
        for title, names in SECTIONS:
            rows = []
            for name in names:
                command = self.get_command(ctx, name)
                if command is not None and not command.hidden:
                    rows.append((name, command.get_short_help_str(limit=70)))
                    listed.add(name)
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)
        rest = [n for n in self.list_commands(ctx) if n not in listed]
        if rest:
            with formatter.section("Other commands"):
                formatter.write_dl(
                    [(n, self.commands[n].get_short_help_str(limit=70)) for n in rest]
                )


@click.group(cls=SectionedGroup, context_settings={"help_option_names": ["-h", "--help"]})
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
main.add_command(devnet)
main.add_command(token)

bench.add_command(load)

if __name__ == "__main__":
    main()
