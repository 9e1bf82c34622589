"""Trying zkmeter on a real node: `zkmeter devnet` (a local anvil with everything deployed)."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import click

from zkmeter.commands.options import echo_err, format_ether, format_token_amount

if TYPE_CHECKING:
    from zkmeter.devnet import Devnet


def program() -> str:
    """How the user ran zkmeter (".venv/bin/zkmeter", "zkmeter"), for the hints printed."""
    name = sys.argv[0] if sys.argv else ""
    return name if Path(name).name == "zkmeter" else "zkmeter"


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@click.command()
@click.option(
    "--dir",
    "directory",
    default="devnet",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to write deployment.json, .env, daemon.toml and dev.srs (a previous devnet's "
    "files there are replaced).",
)
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    help="anvil's port on 127.0.0.1 (default 8545, or a free one if 8545 is taken).",
)
@click.option(
    "--daemon-port",
    type=click.IntRange(1, 65535),
    help="The port daemon.toml gives the operator daemon (default 8787, or a free one).",
)
@click.option(
    "--log-size",
    "k",
    type=click.IntRange(8, 20),
    default=8,
    show_default=True,
    help="Batch domain 2^K rows: the verifier deployed and the daemon's batch size.",
)
def devnet(directory: Path, port: int | None, daemon_port: int | None, k: int) -> None:
    """Start a local anvil (from node_modules) with zkmeter deployed, for trying it on a real
    node; Ctrl-C stops it.

    Deploys OPEN, ModelRegistry, UsageSettlement and the UsageVerifier for 2^K rows (INSECURE
    development SRS), gives the creator, payer and operator 10 OPEN each (anvil gives them ETH),
    registers the worked example's model (0.002 OPEN per 1,000 tokens, owned by the creator),
    and writes DIR/deployment.json, DIR/dev.srs, DIR/daemon.toml and DIR/.env (the RPC URL and
    the development keys: anvil's PUBLIC test keys). Runs only against the anvil it starts.
    """
    from zkmeter.devnet import DevnetError, start_devnet

    if os.environ.get("ZKMETER_RPC_URL"):
        echo_err("note: ZKMETER_RPC_URL is ignored: devnet runs only against the anvil it starts")
    previous = signal.signal(signal.SIGTERM, _interrupt)  # stop anvil on SIGTERM as on Ctrl-C
    try:
        try:
            net = start_devnet(directory, port=port, daemon_port=daemon_port, k=k, say=echo_err)
        except DevnetError as error:
            raise click.ClickException(str(error)) from None
        try:
            _summary(net)
            code = net.anvil.wait()
            raise click.ClickException(
                f"anvil stopped by itself (exit code {code}): see {directory / 'anvil.log'}"
            )
        except KeyboardInterrupt:
            pass
        finally:
            net.anvil.stop()
    finally:
        signal.signal(signal.SIGTERM, previous)
    click.echo("stopped anvil; its chain is gone (run `zkmeter devnet` again for a fresh one)")


def _summary(net: Devnet) -> None:
    """What the devnet is, what it wrote, and what to run next (standard output)."""
    client, dep, d = net.client, net.deployment, net.directory
    zk = program()
    echo = click.echo
    echo(
        f"devnet ready: anvil at {net.anvil.url} (chain id {client.chain_id}, pid "
        f"{net.anvil.pid}), zkmeter deployed for batches of 2^{net.k} rows"
    )
    echo(f"  token       {dep.token} (OPEN)")
    echo(f"  registry    {dep.registry}")
    echo(f"  settlement  {dep.settlement}")
    echo(f"  verifier    {dep.verifiers[net.k]} (INSECURE development SRS {d / 'dev.srs'})")
    echo(f"accounts (keys in {d / '.env'}: anvil's PUBLIC test keys, for this devnet only):")
    roles = {
        "deployer": "owns OPEN (token mint) and UsageSettlement",
        "creator": f"owns model {net.model_id}: 0.002 OPEN per 1,000 tokens",
        "payer": "deposits for the operator, signs receipts",
        "operator": f"runs the daemon (config {d / 'daemon.toml'})",
    }
    for role, what in roles.items():
        address = net.accounts[role].address
        eth = format_ether(client.eth_balance(address))
        open_ = format_token_amount(client.token_balance(address))
        echo(f"  {role:<10}  {address}  {eth} ETH, {open_} OPEN; {what}")
    echo(f"wrote {d / 'deployment.json'}, {d / '.env'}, {d / 'daemon.toml'}, {d / 'dev.srs'}")
    echo("next, in another terminal (README: On a real node in three commands):")
    echo(f"  set -a && . {d / '.env'} && set +a")
    echo(f"  ZKMETER_PRIVATE_KEY=$DEV_OPERATOR_KEY {zk} daemon --config {d / 'daemon.toml'}")
    echo("Ctrl-C stops anvil (its chain lives in memory: everything on it goes).")
