"""Chain administration: deploying the contracts and changing verifiers (with the delay)."""

from __future__ import annotations

from pathlib import Path

import click

from contracts.client import ZERO_ADDRESS
from zkmeter.commands.options import (
    client_for,
    deployment_option,
    keystore_option,
    reader_for,
    rpc_option,
    run_chain,
)

DEFAULT_RATE_NOTICE_PERIOD = 7 * 24 * 3600
DEFAULT_THAWING_PERIOD = 3 * 24 * 3600
DEFAULT_VERIFIER_CHANGE_DELAY = 4 * 24 * 3600


@click.group()
def chain() -> None:
    """Deploy the contracts; propose and apply verifier changes (owner)."""


@chain.command("deploy")
@rpc_option
@keystore_option
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--rate-notice-period", type=click.IntRange(0), default=DEFAULT_RATE_NOTICE_PERIOD)
@click.option("--thawing-period", type=click.IntRange(0), default=DEFAULT_THAWING_PERIOD)
@click.option(
    "--verifier-change-delay",
    type=click.IntRange(0),
    default=DEFAULT_VERIFIER_CHANGE_DELAY,
    show_default=True,
    help="Seconds a verifier change waits (must exceed the thawing period).",
)
@click.option("--token", default=None, help="Existing ERC-20 to settle in (default: new OPEN).")
@click.option("--verifier", "verifiers", multiple=True, help="Deployed IUsageVerifier address.")
@click.option(
    "--vk",
    "vk_paths",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Verification key (zkmeter keys export): deploy its UsageVerifier and install it.",
)
def chain_deploy(
    rpc_url: str,
    keystore: Path | None,
    output: Path,
    rate_notice_period: int,
    thawing_period: int,
    verifier_change_delay: int,
    token: str | None,
    verifiers: tuple[str, ...],
    vk_paths: tuple[Path, ...],
) -> None:
    """Deploy token (unless --token), ModelRegistry and UsageSettlement with a UsageVerifier
    per --vk (and each --verifier) in force from the start; write the deployment.

    Periods: 0 < thawing < rate notice <= 1 year; verifier change delay > thawing."""
    from verifier.keys import VerificationKey, VerificationKeyError

    client = client_for(rpc_url, keystore, None)
    verifiers = tuple(verifiers)
    for path in vk_paths:
        try:
            vk = VerificationKey.load(path)
        except VerificationKeyError as exc:
            raise click.ClickException(f"{path}: {exc}") from exc
        address = run_chain(client.deploy_usage_verifier, vk)
        click.echo(f"verifier   {address} (2^{vk.k} rows)")
        verifiers += (address,)
    dep = run_chain(
        client.deploy_all,
        rate_notice_period,
        thawing_period,
        list(verifiers),
        verifier_change_delay=verifier_change_delay,
        token=token,
    )
    dep.save(output)
    click.echo(f"settlement {dep.settlement}")
    click.echo(f"registry   {dep.registry}")
    click.echo(f"token      {dep.token}")
    click.echo(f"wrote {output}")


@chain.command("verifiers")
@rpc_option
@deployment_option
def chain_verifiers(rpc_url: str, deployment: Path) -> None:
    """List the verifiers in force and the changes proposed, per domain size."""
    client = reader_for(rpc_url, deployment)
    now = run_chain(client.latest_timestamp)
    for k in range(8, 21):
        current = run_chain(client.verifier_for, k)
        proposed, ready_at = run_chain(client.verifier_proposal, k)
        if current == ZERO_ADDRESS and not ready_at:
            continue
        line = f"2^{k}\t{current if current != ZERO_ADDRESS else '(none)'}"
        if ready_at:
            target = proposed if proposed != ZERO_ADDRESS else "(removal)"
            wait = "ready" if ready_at <= now else f"in {ready_at - now} s"
            line += f"\tproposed {target} from timestamp {ready_at} ({wait})"
        click.echo(line)


@chain.command("propose-verifier")
@rpc_option
@keystore_option
@deployment_option
@click.option("--log-size", "k", type=click.IntRange(8, 20), required=True, help="Domain 2^K.")
@click.option("--verifier", "verifier", default=None, help="Deployed IUsageVerifier address.")
@click.option(
    "--vk",
    "vk_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Verification key: deploy its UsageVerifier and propose it.",
)
@click.option("--remove", is_flag=True, help="Propose removing the verifier for 2^K.")
def chain_propose_verifier(
    rpc_url: str,
    keystore: Path | None,
    deployment: Path,
    k: int,
    verifier: str | None,
    vk_path: Path | None,
    remove: bool,
) -> None:
    """Announce a verifier change (settlement owner); it may apply after the change delay,
    which exceeds the thawing period so payers can withdraw first."""
    from verifier.keys import VerificationKey, VerificationKeyError

    if sum((verifier is not None, vk_path is not None, remove)) != 1:
        raise click.UsageError("give exactly one of --verifier, --vk and --remove")
    client = client_for(rpc_url, keystore, deployment)
    if vk_path is not None:
        try:
            vk = VerificationKey.load(vk_path)
        except VerificationKeyError as exc:
            raise click.ClickException(f"{vk_path}: {exc}") from exc
        verifier = run_chain(client.deploy_usage_verifier, vk)
        click.echo(f"deployed verifier {verifier} (2^{vk.k} rows)")
    ready_at = run_chain(client.propose_verifier, k, verifier)
    click.echo(
        f"proposed {verifier or 'removal'} for 2^{k} rows; "
        f"`zkmeter chain apply-verifier --log-size {k}` from timestamp {ready_at}"
    )


@chain.command("apply-verifier")
@rpc_option
@keystore_option
@deployment_option
@click.option("--log-size", "k", type=click.IntRange(8, 20), required=True, help="Domain 2^K.")
def chain_apply_verifier(rpc_url: str, keystore: Path | None, deployment: Path, k: int) -> None:
    """Put a proposed verifier change in force once its delay has passed (settlement owner);
    updates the deployment file."""
    from contracts.client import Deployment

    client = client_for(rpc_url, keystore, deployment)
    address = run_chain(client.apply_verifier, k)
    dep = client.deployment
    if isinstance(dep, Deployment):
        dep.save(deployment)
    click.echo(f"2^{k}: verifier now {address if address != ZERO_ADDRESS else '(none)'}")
