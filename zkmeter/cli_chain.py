"""Chain commands: `zkmeter chain deploy`, `zkmeter models ...`, `zkmeter escrow ...`.

Every command talks to a JSON-RPC node (`--rpc-url`, or env `ZKMETER_RPC_URL`) and, except
`chain deploy`, to the contracts named in a deployment file (`--deployment`, or env
`ZKMETER_DEPLOYMENT`). The signing key comes from env `ZKMETER_PRIVATE_KEY` or from an
eth-account keystore (`--keystore FILE`, password from env `ZKMETER_KEYSTORE_PASSWORD` or a
prompt); it is never a command-line argument and never printed.

Token amounts and rates are given in whole tokens with decimals ("0.0192" OPEN) and converted
exactly (Decimal, no floats) to base units using the token's `decimals()`; rates are per 1,000
tokens of usage.
"""

from __future__ import annotations

import hashlib
import json
import os
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from contracts.client import ChainClient

ENV_PRIVATE_KEY = "ZKMETER_PRIVATE_KEY"
ENV_KEYSTORE_PASSWORD = "ZKMETER_KEYSTORE_PASSWORD"
DEFAULT_RATE_NOTICE_PERIOD = 7 * 24 * 3600
DEFAULT_THAWING_PERIOD = 3 * 24 * 3600


class AmountError(click.BadParameter):
    """A token amount that is not a non-negative decimal with at most `decimals` places."""


def parse_token_amount(text: str, decimals: int = 18) -> int:
    """Exact base units of `text` whole tokens: "0.0192" -> 19200000000000000 (18 decimals)."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation as exc:
        raise AmountError(f"{text!r} is not a decimal number") from exc
    if not value.is_finite() or value < 0:
        raise AmountError(f"{text!r} is not a non-negative finite amount")
    if value.adjusted() + decimals > 78:  # 2^256 has 78 digits
        raise AmountError(f"{text!r} does not fit in a uint256 of base units")
    units = value.scaleb(decimals)
    if units != units.to_integral_value():
        raise AmountError(f"{text!r} has more than {decimals} decimal places")
    if int(units) >= 2**256:
        raise AmountError(f"{text!r} does not fit in a uint256 of base units")
    return int(units)


def format_token_amount(units: int, decimals: int = 18) -> str:
    """Base units as whole tokens, exactly, no trailing zeros: 19200000000000000 -> "0.0192"."""
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), 10**decimals)
    frac_text = str(frac).rjust(decimals, "0").rstrip("0") if decimals else ""
    return f"{sign}{whole}" + (f".{frac_text}" if frac_text else "")


def _signing_key(keystore: Path | None) -> str:
    if keystore is not None:
        from eth_account import Account

        password = os.environ.get(ENV_KEYSTORE_PASSWORD)
        if password is None:
            password = click.prompt("Keystore password", hide_input=True)
        try:
            key: bytes = Account.decrypt(json.loads(keystore.read_text()), password)
        except (ValueError, KeyError) as exc:
            raise click.ClickException(f"cannot decrypt keystore {keystore}: {exc}") from exc
        return "0x" + key.hex()
    key_text = os.environ.get(ENV_PRIVATE_KEY)
    if not key_text:
        raise click.ClickException(f"no signing key: set {ENV_PRIVATE_KEY} or pass --keystore FILE")
    return key_text


def _client(rpc_url: str, keystore: Path | None, deployment: Path | None) -> ChainClient:
    from contracts.client import ChainClient, ChainError, Deployment

    try:
        client = ChainClient.connect(rpc_url, _signing_key(keystore))
        if deployment is not None:
            client.use(Deployment.load(deployment))
    except (ChainError, OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    return client


def _decimals(client: ChainClient) -> int:
    return int(_run(client.token_decimals))


def _run(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a client call, turning contract reverts into readable CLI errors."""
    from contracts.client import ChainError

    try:
        return fn(*args, **kwargs)
    except ChainError as exc:
        raise click.ClickException(str(exc)) from exc


rpc_option = click.option(
    "--rpc-url", envvar="ZKMETER_RPC_URL", required=True, help="JSON-RPC URL of the node."
)
keystore_option = click.option(
    "--keystore",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help=f"eth-account keystore to sign with (default: env {ENV_PRIVATE_KEY}).",
)
deployment_option = click.option(
    "--deployment",
    envvar="ZKMETER_DEPLOYMENT",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="Deployment file written by `zkmeter chain deploy`.",
)


# ---------------------------------------------------------------------------------------- chain


@click.group()
def chain() -> None:
    """Deploy the zkmeter contracts."""


@chain.command("deploy")
@rpc_option
@keystore_option
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--rate-notice-period", type=click.IntRange(0), default=DEFAULT_RATE_NOTICE_PERIOD)
@click.option("--thawing-period", type=click.IntRange(0), default=DEFAULT_THAWING_PERIOD)
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
    token: str | None,
    verifiers: tuple[str, ...],
    vk_paths: tuple[Path, ...],
) -> None:
    """Deploy token (unless --token), ModelRegistry and UsageSettlement, and a UsageVerifier
    per --vk; write the deployment."""
    from verifier.keys import VerificationKey, VerificationKeyError

    client = _client(rpc_url, keystore, None)
    verifiers = tuple(verifiers)
    for path in vk_paths:
        try:
            vk = VerificationKey.load(path)
        except VerificationKeyError as exc:
            raise click.ClickException(f"{path}: {exc}") from exc
        address = _run(client.deploy_usage_verifier, vk)
        click.echo(f"verifier   {address} (2^{vk.log_size} rows)")
        verifiers += (address,)
    dep = _run(client.deploy_all, rate_notice_period, thawing_period, list(verifiers), token=token)
    dep.save(output)
    click.echo(f"settlement {dep.settlement}")
    click.echo(f"registry   {dep.registry}")
    click.echo(f"token      {dep.token}")
    click.echo(f"wrote {output}")


# ---------------------------------------------------------------------------------------- models


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
    client = _client(rpc_url, keystore, deployment)
    units = parse_token_amount(rate, _decimals(client))
    model_id = _run(client.register_model, digest, units, metadata_uri)
    click.echo(f"registered model {model_id} (hash 0x{digest.hex()}, rate {units} base units/1k)")


@models.command("list")
@rpc_option
@keystore_option
@deployment_option
def models_list(rpc_url: str, keystore: Path | None, deployment: Path) -> None:
    """List registered models with owners and rates (per 1,000 tokens)."""
    from contracts.client import ChainClient, Deployment

    if keystore is None and not os.environ.get(ENV_PRIVATE_KEY):
        client = ChainClient.connect(rpc_url)  # reading needs no key
        client.use(Deployment.load(deployment))
    else:
        client = _client(rpc_url, keystore, deployment)
    decimals = _decimals(client)
    count = _run(client.model_count)
    click.echo(f"{count} model(s)")
    for model_id in range(1, count + 1):
        m = _run(client.model, model_id)
        pending = ""
        if m["pendingRateEffectiveFrom"]:
            pending = (
                f" (-> {format_token_amount(m['pendingRate'], decimals)}"
                f" from {m['pendingRateEffectiveFrom']})"
            )
        rate = format_token_amount(m["currentRate"], decimals)
        click.echo(
            f"{model_id}\towner {m['owner']}\trate {rate}"
            f"{pending}\thash 0x{bytes(m['modelHash']).hex()}\t{m['metadataURI']}"
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
    client = _client(rpc_url, keystore, deployment)
    units = parse_token_amount(rate, _decimals(client))
    effective = _run(client.propose_rate, model_id, units)
    click.echo(f"model {model_id}: rate {units} base units/1k from timestamp {effective}")


@models.command("withdraw-earnings")
@rpc_option
@keystore_option
@deployment_option
def models_withdraw_earnings(rpc_url: str, keystore: Path | None, deployment: Path) -> None:
    """Pay the signing account's accumulated royalties."""
    client = _client(rpc_url, keystore, deployment)
    paid = _run(client.withdraw_earnings)
    click.echo(f"withdrew {format_token_amount(paid, _decimals(client))}")


# ---------------------------------------------------------------------------------------- escrow


@click.group()
def escrow() -> None:
    """Deposit, withdraw (with thawing) and authorise operators."""


@escrow.command("deposit")
@rpc_option
@keystore_option
@deployment_option
@click.argument("amount")
def escrow_deposit(rpc_url: str, keystore: Path | None, deployment: Path, amount: str) -> None:
    """Approve and deposit AMOUNT tokens into the signing account's escrow."""
    client = _client(rpc_url, keystore, deployment)
    decimals = _decimals(client)
    units = parse_token_amount(amount, decimals)
    _run(client.approve_and_deposit, units)
    balance = client.escrow_balance(client.default_account.address)
    click.echo(f"deposited {amount}; escrow {format_token_amount(balance, decimals)}")


@escrow.command("request-withdrawal")
@rpc_option
@keystore_option
@deployment_option
@click.argument("amount")
def escrow_request_withdrawal(
    rpc_url: str, keystore: Path | None, deployment: Path, amount: str
) -> None:
    """Start thawing AMOUNT tokens; `escrow withdraw` pays them after the thawing period."""
    client = _client(rpc_url, keystore, deployment)
    units = parse_token_amount(amount, _decimals(client))
    ready_at = _run(client.request_withdrawal, units)
    click.echo(f"withdrawal of {amount} thawing until timestamp {ready_at}")


@escrow.command("withdraw")
@rpc_option
@keystore_option
@deployment_option
def escrow_withdraw(rpc_url: str, keystore: Path | None, deployment: Path) -> None:
    """Pay out the thawed withdrawal request (min of requested and balance)."""
    client = _client(rpc_url, keystore, deployment)
    paid = _run(client.withdraw)
    click.echo(f"withdrew {format_token_amount(paid, _decimals(client))}")


@escrow.command("authorize")
@rpc_option
@keystore_option
@deployment_option
@click.argument("operator")
def escrow_authorize(rpc_url: str, keystore: Path | None, deployment: Path, operator: str) -> None:
    """Let OPERATOR settle the signing account's usage."""
    client = _client(rpc_url, keystore, deployment)
    _run(client.authorize_operator, operator)
    click.echo(f"authorised {operator}")


@escrow.command("revoke")
@rpc_option
@keystore_option
@deployment_option
@click.argument("operator")
def escrow_revoke(rpc_url: str, keystore: Path | None, deployment: Path, operator: str) -> None:
    """Revoke OPERATOR (effective after the thawing period)."""
    client = _client(rpc_url, keystore, deployment)
    effective = _run(client.revoke_operator, operator)
    click.echo(f"revoked {operator} from timestamp {effective}")


@escrow.command("balance")
@rpc_option
@keystore_option
@deployment_option
@click.argument("address", required=False)
def escrow_balance(
    rpc_url: str, keystore: Path | None, deployment: Path, address: str | None
) -> None:
    """Escrow balance of ADDRESS (default: the signing account)."""
    client = _client(rpc_url, keystore, deployment)
    who = address or client.default_account.address
    balance = _run(client.escrow_balance, who)
    click.echo(f"{who} escrow {format_token_amount(balance, _decimals(client))}")
