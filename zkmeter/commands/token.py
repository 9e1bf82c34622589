"""The settlement token: balances (with the ether each account has for gas), and minting on
chains where the signing account owns the token (a devnet, tests)."""

from __future__ import annotations

from pathlib import Path

import click

from zkmeter.commands.options import (
    address_argument,
    client_for,
    deployment_option,
    format_ether,
    format_token_amount,
    keystore_option,
    parse_token_amount,
    reader_for,
    rpc_option,
    run_chain,
    token_decimals,
    token_symbol,
)


@click.group()
def token() -> None:
    """The settlement token: balances, and minting where the signing account owns it."""


@token.command("mint")
@rpc_option
@keystore_option
@deployment_option
@click.argument("to")
@click.argument("amount")
def token_mint(rpc_url: str, keystore: Path | None, deployment: Path, to: str, amount: str) -> None:
    """Mint AMOUNT tokens (e.g. 10 or 0.5) to TO; the signing account must own the token (on a
    devnet: the deployer, DEV_DEPLOYER_KEY)."""
    from contracts.client import ChainError, NodeUnreachableError

    recipient = address_argument(to, "TO")
    client = client_for(rpc_url, keystore, deployment)
    decimals = token_decimals(client)
    symbol = token_symbol(client)
    units = parse_token_amount(amount, decimals)
    try:
        owner = client.token_owner()
    except NodeUnreachableError as exc:
        raise click.ClickException(str(exc)) from None
    except ChainError:
        raise click.ClickException(
            f"the token at {client.deployed().token} has no owner() to mint with: only "
            "zkmeter's own OPEN can be minted from here"
        ) from None
    signer = client.default_account.address
    if owner != signer:
        raise click.ClickException(
            f"only the token's owner {owner} can mint; the signing account is {signer}"
        )
    run_chain(client.mint, recipient, units)
    balance = run_chain(client.token_balance, recipient)
    click.echo(
        f"minted {format_token_amount(units, decimals)} {symbol} to {recipient}; it holds "
        f"{format_token_amount(balance, decimals)} {symbol}"
    )


@token.command("balance")
@rpc_option
@deployment_option
@click.argument("addresses", nargs=-1, required=True)
def token_balance(rpc_url: str, deployment: Path, addresses: tuple[str, ...]) -> None:
    """Each ADDRESS's tokens, and the ETH it has to pay for gas."""
    checked = [address_argument(a, "ADDRESS") for a in addresses]
    client = reader_for(rpc_url, deployment)
    decimals = token_decimals(client)
    symbol = token_symbol(client)
    for address in checked:
        units = run_chain(client.token_balance, address)
        wei = run_chain(client.eth_balance, address)
        click.echo(
            f"{address}: {format_token_amount(units, decimals)} {symbol}, {format_ether(wei)} ETH"
        )
