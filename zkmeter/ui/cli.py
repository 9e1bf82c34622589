"""`zkmeter ui` (the dashboard on any node) and `serve_demo` (`zkmeter demo --ui`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from contracts.client import ChainClient

DEFAULT_PORT = 8788  # the operator daemon listens on 8787


def _warn_if_public(host: str) -> None:
    from zkmeter.ui.server import is_loopback

    if not is_loopback(host):
        click.echo(
            f"warning: serving on {host}, reachable from other machines; the dashboard is "
            "read-only but shows every payer's and operator's history",
            err=True,
        )


@click.command("ui")
@click.option(
    "--rpc-url", envvar="ZKMETER_RPC_URL", required=True, help="JSON-RPC URL of the node."
)
@click.option(
    "--deployment",
    envvar="ZKMETER_DEPLOYMENT",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="Deployment file written by `zkmeter chain deploy`.",
)
@click.option(
    "--daemon",
    "daemon_url",
    default=None,
    help="Base URL of the operator daemon (e.g. http://127.0.0.1:8787): its health and "
    "queue depths on the operator pages.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=DEFAULT_PORT,
    show_default=True,
    help="Port to listen on (0: any free port, printed at start).",
)
def ui(rpc_url: str, deployment: Path, daemon_url: str | None, host: str, port: int) -> None:
    """Serve a read-only web dashboard of a deployment: models with their rates and
    earnings, payers' escrow and channels, operators' batches. No key is needed or read."""
    from contracts.client.index import ChainIndex, ChainIndexError
    from zkmeter.ui.server import Dashboard, run

    try:
        index = ChainIndex.for_node(rpc_url, deployment)
    except ChainIndexError as exc:
        raise click.ClickException(str(exc)) from exc
    _warn_if_public(host)
    run(Dashboard(index, daemon_url=daemon_url), host, port, announce=click.echo)


def serve_demo(client: ChainClient, host: str, port: int) -> None:
    """Serve the dashboard over `client`'s deployment (the demo's embedded chain) until
    Ctrl-C."""
    from contracts.client.index import ChainIndex
    from zkmeter.ui.server import Dashboard, run

    _warn_if_public(host)
    run(Dashboard(ChainIndex.for_client(client)), host, port, announce=click.echo)
