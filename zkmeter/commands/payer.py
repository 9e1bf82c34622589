"""Payers: escrow accounts per operator, receipt signers, signing and submitting receipts."""

from __future__ import annotations

import json
import os
import secrets
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import click

from zkmeter.commands.options import (
    ENV_PAYER_KEY,
    EXISTING_FILE,
    address_argument,
    client_for,
    deployment_option,
    format_token_amount,
    keystore_option,
    parse_token_amount,
    reader_for,
    rpc_option,
    run_chain,
    token_decimals,
)

DEFAULT_PORT = 8787


@click.group()
def escrow() -> None:
    """Escrow accounts per operator (deposit, thawing withdrawals) and receipt signers."""


operator_option = click.option(
    "--operator", required=True, help="The operator whose escrow account this is."
)


@escrow.command("deposit")
@rpc_option
@keystore_option
@deployment_option
@operator_option
@click.argument("amount")
def escrow_deposit(
    rpc_url: str, keystore: Path | None, deployment: Path, operator: str, amount: str
) -> None:
    """Approve and deposit AMOUNT tokens into the signing account's escrow for --operator
    (only that operator's settlements draw on it)."""
    client = client_for(rpc_url, keystore, deployment)
    decimals = token_decimals(client)
    units = parse_token_amount(amount, decimals)
    run_chain(client.approve_and_deposit, address_argument(operator, "--operator"), units)
    balance = run_chain(client.escrow_balance, client.default_account.address, operator)
    click.echo(
        f"deposited {amount} for operator {operator}; escrow "
        f"{format_token_amount(balance, decimals)}"
    )


@escrow.command("request-withdrawal")
@rpc_option
@keystore_option
@deployment_option
@operator_option
@click.argument("amount")
def escrow_request_withdrawal(
    rpc_url: str, keystore: Path | None, deployment: Path, operator: str, amount: str
) -> None:
    """Start thawing AMOUNT tokens of the account for --operator; `escrow withdraw` pays them
    after the thawing period (until then they still back that operator's settlements)."""
    client = client_for(rpc_url, keystore, deployment)
    units = parse_token_amount(amount, token_decimals(client))
    ready_at = run_chain(client.request_withdrawal, address_argument(operator, "--operator"), units)
    click.echo(f"withdrawal of {amount} thawing until timestamp {ready_at}")


@escrow.command("cancel-withdrawal")
@rpc_option
@keystore_option
@deployment_option
@operator_option
def escrow_cancel_withdrawal(
    rpc_url: str, keystore: Path | None, deployment: Path, operator: str
) -> None:
    """Cancel the thawing withdrawal from the account for --operator."""
    client = client_for(rpc_url, keystore, deployment)
    run_chain(client.cancel_withdrawal, address_argument(operator, "--operator"))
    click.echo("withdrawal cancelled")


@escrow.command("withdraw")
@rpc_option
@keystore_option
@deployment_option
@operator_option
def escrow_withdraw(rpc_url: str, keystore: Path | None, deployment: Path, operator: str) -> None:
    """Pay out the thawed withdrawal from the account for --operator (min of requested and
    balance)."""
    client = client_for(rpc_url, keystore, deployment)
    paid = run_chain(client.withdraw, address_argument(operator, "--operator"))
    click.echo(f"withdrew {format_token_amount(paid, token_decimals(client))}")


@escrow.command("balance")
@rpc_option
@deployment_option
@operator_option
@click.argument("payer")
def escrow_balance(rpc_url: str, deployment: Path, operator: str, payer: str) -> None:
    """PAYER's escrow account for --operator: balance, amount thawing and when."""
    client = reader_for(rpc_url, deployment)
    decimals = token_decimals(client)
    account = run_chain(
        client.escrow_account,
        address_argument(payer, "PAYER"),
        address_argument(operator, "--operator"),
    )
    line = f"{payer} escrow for {operator}: {format_token_amount(account.balance, decimals)}"
    if account.thaw_ends_at:
        line += (
            f" ({format_token_amount(account.thawing, decimals)} thawing until timestamp "
            f"{account.thaw_ends_at})"
        )
    click.echo(line)


@escrow.command("authorize-signer")
@rpc_option
@keystore_option
@deployment_option
@click.argument("signer")
def escrow_authorize_signer(
    rpc_url: str, keystore: Path | None, deployment: Path, signer: str
) -> None:
    """Let SIGNER sign receipts for the signing account (e.g. a hot key on an API server)."""
    client = client_for(rpc_url, keystore, deployment)
    run_chain(client.authorize_signer, address_argument(signer, "SIGNER"))
    click.echo(f"authorised signer {signer}")


@escrow.command("revoke-signer")
@rpc_option
@keystore_option
@deployment_option
@click.argument("signer")
def escrow_revoke_signer(
    rpc_url: str, keystore: Path | None, deployment: Path, signer: str
) -> None:
    """Revoke SIGNER (effective after the thawing period, so receipts it already signed can
    still settle)."""
    client = client_for(rpc_url, keystore, deployment)
    effective = run_chain(client.revoke_signer, address_argument(signer, "SIGNER"))
    click.echo(f"signer {signer} revoked from timestamp {effective}")


@click.group()
def receipts() -> None:
    """Sign receipts (payer) and submit them to an operator's daemon; pack a receipts file
    for proving."""


@receipts.command("pack")
@click.argument("source", type=EXISTING_FILE)
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), required=True)
def receipts_pack(source: Path, output: Path) -> None:
    """Write SOURCE (a receipts file, JSON) as the compact columns file `zkmeter prove`
    reads fastest (payer, model, nonce, tokens; no signatures: keep the JSON to settle)."""
    from channels.receipts_file import ReceiptsFileError, load_receipts, receipts_columns_bytes
    from prover.witness import BatchError, UsageArrays

    try:
        header, rows, _raw = load_receipts(source)
        arrays = UsageArrays.from_rows(rows)
    except (ReceiptsFileError, BatchError) as error:
        raise click.ClickException(f"{source}: {error}") from None
    output.write_bytes(receipts_columns_bytes(header, arrays))
    click.echo(f"packed {len(rows)} receipts into {output}")


ENV_PAYER_STATE = "ZKMETER_PAYER_STATE"
DEFAULT_PAYER_STATE = "zkmeter-payer.db"


@receipts.command("sign")
@click.option("--deployment", envvar="ZKMETER_DEPLOYMENT", type=EXISTING_FILE, required=True)
@click.option("--operator", required=True, help="Operator address the receipts are for.")
@click.option("--model", "model_id", type=click.IntRange(1), required=True)
@click.option("--tokens", type=click.IntRange(0, 2**32 - 1), multiple=True, required=True)
@click.option(
    "--max-rate",
    help="Highest royalty you accept, in tokens per 1,000 tokens (e.g. 0.002); required for a "
    "new channel, else the channel's last cap.",
)
@click.option(
    "--decimals",
    type=click.IntRange(0, 77),
    default=18,
    show_default=True,
    help="The settlement token's decimals (for --max-rate).",
)
@click.option(
    "--payer",
    help="The payer the receipts are for, when the key is a signer the payer authorised "
    "(default: the key's own address).",
)
@click.option(
    "--state",
    "state_path",
    envvar=ENV_PAYER_STATE,
    default=DEFAULT_PAYER_STATE,
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help=f"The payer's channel book (SQLite; env {ENV_PAYER_STATE}).",
)
@click.option("--request-hash", help="0x + 32 bytes (default: random per receipt).")
@click.option(
    "--repeat",
    type=click.IntRange(1, 100_000),
    default=1,
    show_default=True,
    help="Sign the --tokens values this many times over (--tokens 800 --repeat 12: 12 calls).",
)
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), required=True)
def sign(
    deployment: Path,
    operator: str,
    model_id: int,
    tokens: tuple[int, ...],
    max_rate: str | None,
    decimals: int,
    payer: str | None,
    state_path: Path,
    request_hash: str | None,
    repeat: int,
    output: Path,
) -> None:
    """Sign one receipt per --tokens value (key from env ZKMETER_PAYER_KEY) into a receipts
    file, extending it if it exists.

    Each receipt is the channel's next state (nonce + 1, cumulative + tokens), recorded in the
    channel book (--state) before it is written out, so signing continues where it stopped
    after a restart; a second process signing the same channel is refused."""
    from eth_account import Account
    from eth_utils.address import is_hex_address, to_checksum_address

    from channels.payer import ChannelBook, PayerError
    from channels.receipts import ReceiptDomain
    from channels.receipts_file import RECEIPTS_FORMAT
    from contracts.client import Deployment

    key = os.environ.get(ENV_PAYER_KEY)
    if not key:
        raise click.ClickException(f"no payer key: set {ENV_PAYER_KEY}")
    for value, hint in ((operator, "--operator"), (payer, "--payer")):
        if value is not None and not is_hex_address(value):
            raise click.BadParameter("not a hex address", param_hint=hint)
    if request_hash is not None and (not request_hash.startswith("0x") or len(request_hash) != 66):
        raise click.BadParameter("must be 0x + 32 bytes of hex", param_hint="--request-hash")
    cap = None if max_rate is None else parse_token_amount(max_rate, decimals)
    tokens = tokens * repeat
    try:
        account = Account.from_key(key)
    except ValueError:
        raise click.ClickException(f"{ENV_PAYER_KEY} is not a 32-byte hex private key") from None
    try:
        dep = Deployment.load(deployment)
    except (OSError, ValueError) as error:
        raise click.ClickException(str(error)) from None
    domain = ReceiptDomain(dep.chain_id, dep.settlement)
    data: dict[str, Any] = {
        "format": RECEIPTS_FORMAT,
        "chain_id": dep.chain_id,
        "settlement": dep.settlement,
        "operator": to_checksum_address(operator),
        "batch_seq": 0,
        "receipts": [],
    }
    if output.exists():
        data = json.loads(output.read_text(encoding="utf-8"))
        if data.get("format") != RECEIPTS_FORMAT:
            raise click.ClickException(f"{output} is not a {RECEIPTS_FORMAT} receipts file")
    book = ChannelBook(state_path)
    try:
        with book.open(account, domain, operator, model_id, cap, payer=payer) as channel:
            first = channel.next_nonce
            for count in tokens:
                digest = (
                    bytes.fromhex(request_hash[2:]) if request_hash else secrets.token_bytes(32)
                )
                receipt = channel.sign(count, digest)
                data["receipts"].append({**receipt.to_json(), "tokens": count})
                tmp = output.with_suffix(output.suffix + ".tmp")
                tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
                tmp.replace(output)
            click.echo(
                f"signed {len(tokens)} receipt(s), nonces {first}..{channel.nonce}, channel at "
                f"{channel.cumulative_tokens} tokens"
            )
    except PayerError as error:
        raise click.ClickException(str(error)) from None
    finally:
        book.close()


def post_json(url: str, body: Any, timeout: float = 30) -> tuple[int, Any]:
    """POST `body` as JSON; returns (status, decoded JSON reply)."""
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


@receipts.command("submit")
@click.argument("receipts_file", type=EXISTING_FILE)
@click.option("--url", default=f"http://127.0.0.1:{DEFAULT_PORT}", show_default=True)
@click.option(
    "--wait",
    is_flag=True,
    help="Then wait until the chain has settled every submitted receipt (reads each channel "
    "on chain: needs --rpc-url and --deployment, or their env variables).",
)
@click.option("--timeout", type=click.FloatRange(0), default=300.0, show_default=True)
@click.option("--rpc-url", envvar="ZKMETER_RPC_URL", help="JSON-RPC URL (for --wait).")
@click.option(
    "--deployment",
    envvar="ZKMETER_DEPLOYMENT",
    type=EXISTING_FILE,
    help="Deployment file (for --wait).",
)
def submit(
    receipts_file: Path,
    url: str,
    wait: bool,
    timeout: float,
    rpc_url: str | None,
    deployment: Path | None,
) -> None:
    """Post a receipts file's receipts to a daemon (POST URL/receipts); with --wait, follow
    them until they are settled on chain."""
    try:
        data = json.loads(receipts_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise click.ClickException(f"{receipts_file}: {error}") from None
    items = data.get("receipts", []) if isinstance(data, dict) else data
    operator = data.get("operator") if isinstance(data, dict) else None
    for item in items:
        item.setdefault("operator", operator)
    if wait and not (rpc_url and deployment):
        raise click.UsageError("--wait needs --rpc-url and --deployment (or their env variables)")
    try:
        status, reply = post_json(url.rstrip("/") + "/receipts", items)
    except OSError as error:
        raise click.ClickException(f"cannot reach the daemon at {url}: {error}") from None
    if status != 202:
        raise click.ClickException(
            f"refused ({status}) {reply.get('error')}: {reply.get('message')} "
            f"(receipt {reply.get('index')}, {reply.get('admitted', 0)} admitted before it)"
        )
    click.echo(f"{len(reply['states'])} receipt(s) admitted")
    if wait and rpc_url and deployment:
        _wait_settled(items, rpc_url, deployment, timeout, url)


def _wait_settled(
    items: list[dict[str, Any]], rpc_url: str, deployment: Path, timeout: float, url: str
) -> None:
    """Poll each submitted channel's settled nonce on chain until it reaches the highest nonce
    submitted for it."""
    client = reader_for(rpc_url, deployment)
    targets: dict[tuple[str, str, int], int] = {}
    for item in items:
        try:
            key = (
                address_argument(str(item["payer"]), "payer"),
                address_argument(str(item["operator"]), "operator"),
                int(item["model_id"]),
            )
            targets[key] = max(targets.get(key, 0), int(item["nonce"]))
        except (KeyError, TypeError, ValueError, click.BadParameter) as error:
            raise click.ClickException(
                f"a receipt without payer/operator/model/nonce: {error}"
            ) from None
    deadline = time.monotonic() + timeout
    click.echo(f"waiting for {len(targets)} channel(s) to settle on chain ...")
    while targets:
        for key, nonce in list(targets.items()):
            settled = run_chain(client.channel, *key)
            if settled.nonce >= nonce:
                del targets[key]
                payer, _, model_id = key
                click.echo(
                    f"settled: payer {payer}, model {model_id} at nonce {settled.nonce}, "
                    f"{settled.cumulative_tokens} tokens"
                )
        if targets and time.monotonic() > deadline:
            raise click.ClickException(
                f"{len(targets)} channel(s) not settled after {timeout:.0f} s: is the daemon "
                f"running and its account funded? (GET {url.rstrip('/')}/health)"
            )
        if targets:
            time.sleep(0.5)
