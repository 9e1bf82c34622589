"""What the commands share: signing keys, chain connections, common options, token amounts.

Every chain command talks to a JSON-RPC node (`--rpc-url`, or env `ZKMETER_RPC_URL`) and,
except `chain deploy`, to the contracts named in a deployment file (`--deployment`, or env
`ZKMETER_DEPLOYMENT`). The signing key comes from env `ZKMETER_PRIVATE_KEY` or from an
eth-account keystore (`--keystore FILE`, password from env `ZKMETER_KEYSTORE_PASSWORD` or a
prompt); it is never a command-line argument and never printed. A payer's key for signing
receipts comes from env `ZKMETER_PAYER_KEY`.

Token amounts and rates are given in whole tokens with decimals ("0.0192" OPEN) and converted
exactly (Decimal, no floats) to base units using the token's `decimals()`; rates are per 1,000
tokens of usage.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from contracts.client import ChainClient
    from prover.proving_key import ProvingKey
    from prover.srs import SRS
    from verifier.keys import VerificationKey

ENV_PRIVATE_KEY = "ZKMETER_PRIVATE_KEY"
ENV_KEYSTORE_PASSWORD = "ZKMETER_KEYSTORE_PASSWORD"
ENV_PAYER_KEY = "ZKMETER_PAYER_KEY"

EXISTING_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
OUTPUT_FILE = click.Path(dir_okay=False, path_type=Path)


def echo_err(message: str) -> None:
    """Progress and notes go to standard error; results to standard output."""
    click.echo(message, err=True)


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
    # Integer arithmetic on the decimal's digits: Decimal.scaleb would round to the context's
    # 28 significant digits.
    _sign, digits, exponent = value.as_tuple()
    mantissa = int("".join(map(str, digits)) or "0")
    shift = int(exponent) + decimals
    units: int
    if shift >= 0:
        units = mantissa * 10**shift
    else:
        units, remainder = divmod(mantissa, 10 ** (-shift))
        if remainder:
            raise AmountError(f"{text!r} has more than {decimals} decimal places")
    if units >= 2**256:
        raise AmountError(f"{text!r} does not fit in a uint256 of base units")
    return units


def format_token_amount(units: int, decimals: int = 18) -> str:
    """Base units as whole tokens, exactly, no trailing zeros: 19200000000000000 -> "0.0192"."""
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), 10**decimals)
    frac_text = str(frac).rjust(decimals, "0").rstrip("0") if decimals else ""
    return f"{sign}{whole}" + (f".{frac_text}" if frac_text else "")


def format_ether(wei: int, places: int = 4) -> str:
    """Wei as ETH to `places` decimals, rounded down, no trailing zeros (for showing gas money:
    9999987566866136996417 -> "9999.9875"); exact integer arithmetic at any size."""
    whole, frac = divmod(wei, 10**18)
    shown = str(frac // 10 ** (18 - places)).rjust(places, "0").rstrip("0") if places else ""
    return f"{whole}.{shown}" if shown else str(whole)


def signing_key(keystore: Path | None) -> str:
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


def client_for(rpc_url: str, keystore: Path | None, deployment: Path | None) -> ChainClient:
    """A client signing with the command's key (`signing_key`), on the node at `rpc_url`, using
    `deployment` if given; every failure is a one-line CLI error (`chain_failure`)."""
    return _connect(rpc_url, signing_key(keystore), deployment)


def reader_for(rpc_url: str, deployment: Path) -> ChainClient:
    """A client for reading chain state: no key needed."""
    return _connect(rpc_url, None, deployment)


def _connect(rpc_url: str, key: str | None, deployment: Path | None) -> ChainClient:
    from contracts.client import ChainClient, Deployment, NoContractError, WrongChainError

    try:
        client = ChainClient.connect(rpc_url, key)
        if deployment is not None:
            try:
                client.use(Deployment.load(deployment))
                client.check_deployed()
            except (WrongChainError, NoContractError) as exc:
                raise click.ClickException(f"{deployment}: {exc}") from None
    except click.ClickException:
        raise
    except Exception as exc:
        failure = chain_failure(exc)
        if failure is not exc:
            raise failure from None
        if isinstance(exc, OSError | ValueError):  # the deployment file: unreadable, malformed
            raise click.ClickException(str(exc)) from None
        raise
    return client


def chain_failure(exc: Exception) -> Exception:
    """The one-line CLI error for a failure of the chain stack (a `ClickException` with the
    sentence of contracts.client.errors), or `exc` itself if it is no such failure."""
    from contracts.client import chain_error_of

    error = chain_error_of(exc)
    return exc if error is None else click.ClickException(str(error))


def run_chain(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a client call; a node or contract failure (unreachable node, no gas, a revert with
    its decoded error, ...) becomes a one-line CLI error with a non-zero exit."""
    try:
        return fn(*args, **kwargs)
    except click.ClickException:
        raise
    except Exception as exc:
        failure = chain_failure(exc)
        if failure is exc:
            raise
        raise failure from None


def token_decimals(client: ChainClient) -> int:
    return int(run_chain(client.token_decimals))


def token_symbol(client: ChainClient) -> str:
    """The token's symbol, or "tokens" for a token without `symbol()`."""
    from contracts.client import ChainError, NodeUnreachableError

    try:
        return client.token_symbol()
    except NodeUnreachableError as exc:
        raise click.ClickException(str(exc)) from None
    except ChainError:
        return "tokens"


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


def address_argument(text: str, name: str) -> str:
    from eth_utils.address import is_hex_address, to_checksum_address

    if not is_hex_address(text):
        raise click.BadParameter(f"{text!r} is not a 0x-prefixed 20-byte address", param_hint=name)
    return str(to_checksum_address(text))


def load_srs(path: Path) -> SRS:
    """Load an SRS file, turning its errors into a one-line CLI error."""
    from prover.srs import SRS, InsecureSRSWarning, SRSError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", InsecureSRSWarning)
            return SRS.load(path)
    except (SRSError, OSError) as error:
        raise click.ClickException(f"cannot use SRS {path}: {error}") from None


def proving_key_for(srs: SRS, k: int) -> ProvingKey:
    """The proving key for 2^log_size rows, with progress on standard error."""
    from circuits.usage_batch import UnsupportedDomainError
    from prover.proving_key import ProvingKey, ProvingKeyError

    started = time.perf_counter()
    last = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.perf_counter()
        if now - last[0] > 2 or done == total:
            last[0] = now
            echo_err(f"  Lagrange basis for 2^{k} rows: {100 * done // max(total, 1)}%")

    from prover.srs import lagrange_basis_is_cached, lagrange_cache_path

    if not lagrange_basis_is_cached(srs, k):
        echo_err(
            f"  Lagrange basis for 2^{k} rows: not cached ({lagrange_cache_path(srs, k)}); "
            "computing it by G1 FFT, once (minutes from 2^18; `zkmeter srs new` and `srs "
            "import -k` cache it)"
        )
    try:
        key = ProvingKey.build(srs, k, progress=progress)
    except (ProvingKeyError, UnsupportedDomainError) as error:
        raise click.ClickException(str(error)) from None
    elapsed = time.perf_counter() - started
    if elapsed > 1:
        echo_err(f"  proving key for 2^{k} rows ready in {elapsed:.1f} s")
    return key


def verification_key_for(srs: SRS, k: int) -> VerificationKey:
    """The verification key alone (no proving key: one MSM, no Lagrange basis)."""
    from prover.proving_key import ProvingKeyError, verification_key

    try:
        return verification_key(srs, k)
    except ProvingKeyError as error:
        raise click.ClickException(str(error)) from None
