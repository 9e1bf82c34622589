"""Model creators: register models, list them, change rates (with notice), collect royalties."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import click

from zkmeter.commands.options import (
    ENV_PRIVATE_KEY,
    address_argument,
    client_for,
    deployment_option,
    format_token_amount,
    keystore_option,
    parse_token_amount,
    reader_for,
    rpc_option,
    run_chain,
    signing_key,
    token_decimals,
    token_symbol,
)


@click.group()
def models() -> None:
    """Register models, list them, change rates, collect royalties."""


@models.command("register")
@rpc_option
@keystore_option
@deployment_option
@click.option("--model-hash", default=None, help="32-byte model hash, hex.")
@click.option(
    "--model-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Use sha256 of this file as the model hash.",
)
@click.option("--rate", required=True, help="Royalty in tokens per 1,000 tokens, e.g. 0.002.")
@click.option("--metadata-uri", default="", help="Where the model's metadata lives.")
def models_register(
    rpc_url: str,
    keystore: Path | None,
    deployment: Path,
    model_hash: str | None,
    model_file: Path | None,
    rate: str,
    metadata_uri: str,
) -> None:
    """Register a model owned by the signing account; prints its id."""
    if (model_hash is None) == (model_file is None):
        raise click.UsageError("give exactly one of --model-hash and --model-file")
    if model_file is not None:
        digest = hashlib.sha256(model_file.read_bytes()).digest()
    else:
        try:
            digest = bytes.fromhex((model_hash or "").removeprefix("0x"))
        except ValueError as exc:
            raise click.BadParameter("not hex", param_hint="--model-hash") from exc
        if len(digest) != 32:
            raise click.BadParameter("must be 32 bytes", param_hint="--model-hash")
    client = client_for(rpc_url, keystore, deployment)
    units = parse_token_amount(rate, token_decimals(client))
    model_id = run_chain(client.register_model, digest, units, metadata_uri)
    click.echo(f"registered model {model_id} (hash 0x{digest.hex()}, rate {units} base units/1k)")


@models.command("list")
@rpc_option
@keystore_option
@deployment_option
def models_list(rpc_url: str, keystore: Path | None, deployment: Path) -> None:
    """List registered models with owners and rates (per 1,000 tokens)."""
    if keystore is None and not os.environ.get(ENV_PRIVATE_KEY):
        client = reader_for(rpc_url, deployment)  # reading needs no key
    else:
        client = client_for(rpc_url, keystore, deployment)
    decimals = token_decimals(client)
    count = run_chain(client.model_count)
    click.echo(f"{count} model(s)")
    for model_id in range(1, count + 1):
        m = run_chain(client.model, model_id)
        pending = ""
        if m.pending_rate_effective_from:
            pending = (
                f" (-> {format_token_amount(m.pending_rate, decimals)}"
                f" from {m.pending_rate_effective_from})"
            )
        rate = format_token_amount(m.current_rate, decimals)
        click.echo(
            f"{model_id}\towner {m.owner}\trate {rate}"
            f"{pending}\thash 0x{m.model_hash.hex()}\t{m.metadata_uri}"
        )


@models.command("set-rate")
@rpc_option
@keystore_option
@deployment_option
@click.argument("model_id", type=click.IntRange(1))
@click.argument("rate")
def models_set_rate(
    rpc_url: str, keystore: Path | None, deployment: Path, model_id: int, rate: str
) -> None:
    """Propose RATE (tokens per 1,000 tokens) for MODEL_ID; it applies after the notice period."""
    client = client_for(rpc_url, keystore, deployment)
    units = parse_token_amount(rate, token_decimals(client))
    effective = run_chain(client.propose_rate, model_id, units)
    click.echo(f"model {model_id}: rate {units} base units/1k from timestamp {effective}")


@models.command("withdraw-earnings")
@rpc_option
@keystore_option
@deployment_option
def models_withdraw_earnings(rpc_url: str, keystore: Path | None, deployment: Path) -> None:
    """Pay the signing account's accumulated royalties."""
    client = client_for(rpc_url, keystore, deployment)
    paid = run_chain(client.withdraw_earnings)
    click.echo(f"withdrew {format_token_amount(paid, token_decimals(client))}")


@models.command("earnings")
@rpc_option
@keystore_option
@deployment_option
@click.argument("owner", required=False)
def models_earnings(
    rpc_url: str, keystore: Path | None, deployment: Path, owner: str | None
) -> None:
    """What OWNER's models have earned (default: the signing account's), per model and in
    total, from the chain's settlements; and how much is ready to withdraw."""
    from eth_account import Account

    if owner is None:
        if keystore is None and not os.environ.get(ENV_PRIVATE_KEY):
            raise click.UsageError(f"give OWNER, or a key (env {ENV_PRIVATE_KEY} or --keystore)")
        owner = str(Account.from_key(signing_key(keystore)).address)
    owner = address_argument(owner, "OWNER")
    client = reader_for(rpc_url, deployment)
    decimals = token_decimals(client)
    symbol = token_symbol(client)
    # Per model: every settled channel that paid this owner (the model's owner when it
    # settled), and every model the owner holds now, paid or not.
    tokens: dict[int, int] = {}
    earned: dict[int, int] = {}
    for event in run_chain(client.channel_events):
        if event.model_owner == owner:
            tokens[event.model_id] = tokens.get(event.model_id, 0) + event.tokens
            earned[event.model_id] = earned.get(event.model_id, 0) + event.amount
    for model_id in range(1, run_chain(client.model_count) + 1):
        if run_chain(client.model, model_id).owner == owner:
            tokens.setdefault(model_id, 0)
            earned.setdefault(model_id, 0)
    withdrawable = run_chain(client.earnings, owner)

    def amount(units: int) -> str:
        return f"{format_token_amount(units, decimals)} {symbol}"

    if not earned:
        click.echo(f"{owner} owns no model and was paid nothing")
    for model_id in sorted(earned):
        click.echo(f"model {model_id}\t{tokens[model_id]} tokens\t{amount(earned[model_id])}")
    click.echo(
        f"total\t{sum(tokens.values())} tokens\t{amount(sum(earned.values()))} earned by {owner}; "
        f"{amount(withdrawable)} to withdraw (zkmeter models withdraw-earnings)"
    )
