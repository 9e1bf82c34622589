"""Chain commands: `zkmeter chain deploy|verifiers|propose-verifier|apply-verifier`,
`zkmeter models ...`, `zkmeter escrow ...`, `zkmeter settle`.

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
DEFAULT_VERIFIER_CHANGE_DELAY = 4 * 24 * 3600


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


ZERO = "0x0000000000000000000000000000000000000000"


def _reader(rpc_url: str, deployment: Path) -> ChainClient:
    """A client for reading chain state: no key needed."""
    from contracts.client import ChainClient, ChainError, Deployment

    try:
        client = ChainClient.connect(rpc_url)
        client.use(Deployment.load(deployment))
    except (ChainError, OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    return client


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
    dep = _run(
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
    client = _reader(rpc_url, deployment)
    now = _run(client.latest_timestamp)
    for log_size in range(8, 21):
        current = _run(client.verifier_for, log_size)
        proposed, ready_at = _run(client.verifier_proposal, log_size)
        if current == ZERO and not ready_at:
            continue
        line = f"2^{log_size}\t{current if current != ZERO else '(none)'}"
        if ready_at:
            target = proposed if proposed != ZERO else "(removal)"
            wait = "ready" if ready_at <= now else f"in {ready_at - now} s"
            line += f"\tproposed {target} from timestamp {ready_at} ({wait})"
        click.echo(line)


@chain.command("propose-verifier")
@rpc_option
@keystore_option
@deployment_option
@click.option("--log-size", type=click.IntRange(8, 20), required=True, help="Domain 2^K.")
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
    log_size: int,
    verifier: str | None,
    vk_path: Path | None,
    remove: bool,
) -> None:
    """Announce a verifier change (settlement owner); it may apply after the change delay,
    which exceeds the thawing period so payers can withdraw first."""
    from verifier.keys import VerificationKey, VerificationKeyError

    if sum((verifier is not None, vk_path is not None, remove)) != 1:
        raise click.UsageError("give exactly one of --verifier, --vk and --remove")
    client = _client(rpc_url, keystore, deployment)
    if vk_path is not None:
        try:
            vk = VerificationKey.load(vk_path)
        except VerificationKeyError as exc:
            raise click.ClickException(f"{vk_path}: {exc}") from exc
        verifier = _run(client.deploy_usage_verifier, vk)
        click.echo(f"deployed verifier {verifier} (2^{vk.log_size} rows)")
    ready_at = _run(client.propose_verifier, log_size, verifier)
    click.echo(
        f"proposed {verifier or 'removal'} for 2^{log_size} rows; "
        f"`zkmeter chain apply-verifier --log-size {log_size}` from timestamp {ready_at}"
    )


@chain.command("apply-verifier")
@rpc_option
@keystore_option
@deployment_option
@click.option("--log-size", type=click.IntRange(8, 20), required=True, help="Domain 2^K.")
def chain_apply_verifier(
    rpc_url: str, keystore: Path | None, deployment: Path, log_size: int
) -> None:
    """Put a proposed verifier change in force once its delay has passed (settlement owner);
    updates the deployment file."""
    from contracts.client import Deployment

    client = _client(rpc_url, keystore, deployment)
    address = _run(client.apply_verifier, log_size)
    dep = client.deployment
    if isinstance(dep, Deployment):
        dep.save(deployment)
    click.echo(f"2^{log_size}: verifier now {address if address != ZERO else '(none)'}")


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
    if keystore is None and not os.environ.get(ENV_PRIVATE_KEY):
        client = _reader(rpc_url, deployment)  # reading needs no key
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
    client = _client(rpc_url, keystore, deployment)
    decimals = _decimals(client)
    units = parse_token_amount(amount, decimals)
    _run(client.approve_and_deposit, _address(operator, "--operator"), units)
    balance = _run(client.escrow_balance, client.default_account.address, operator)
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
    client = _client(rpc_url, keystore, deployment)
    units = parse_token_amount(amount, _decimals(client))
    ready_at = _run(client.request_withdrawal, _address(operator, "--operator"), units)
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
    client = _client(rpc_url, keystore, deployment)
    _run(client.cancel_withdrawal, _address(operator, "--operator"))
    click.echo("withdrawal cancelled")


@escrow.command("withdraw")
@rpc_option
@keystore_option
@deployment_option
@operator_option
def escrow_withdraw(rpc_url: str, keystore: Path | None, deployment: Path, operator: str) -> None:
    """Pay out the thawed withdrawal from the account for --operator (min of requested and
    balance)."""
    client = _client(rpc_url, keystore, deployment)
    paid = _run(client.withdraw, _address(operator, "--operator"))
    click.echo(f"withdrew {format_token_amount(paid, _decimals(client))}")


@escrow.command("balance")
@rpc_option
@deployment_option
@operator_option
@click.argument("payer")
def escrow_balance(rpc_url: str, deployment: Path, operator: str, payer: str) -> None:
    """PAYER's escrow account for --operator: balance, amount thawing and when."""
    client = _reader(rpc_url, deployment)
    decimals = _decimals(client)
    account = _run(
        client.escrow_account, _address(payer, "PAYER"), _address(operator, "--operator")
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
    client = _client(rpc_url, keystore, deployment)
    _run(client.authorize_signer, _address(signer, "SIGNER"))
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
    client = _client(rpc_url, keystore, deployment)
    effective = _run(client.revoke_signer, _address(signer, "SIGNER"))
    click.echo(f"signer {signer} revoked from timestamp {effective}")


def _address(text: str, name: str) -> str:
    from eth_utils.address import is_hex_address, to_checksum_address

    if not is_hex_address(text):
        raise click.BadParameter(f"{text!r} is not a 0x-prefixed 20-byte address", param_hint=name)
    return str(to_checksum_address(text))


# ---------------------------------------------------------------------------------------- settle


@click.command("settle")
@click.argument("proof_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--receipts",
    "receipts_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="The batch's signed receipts (the file that was proven): each channel's last receipt "
    "is the payer's consent the contract checks.",
)
@rpc_option
@keystore_option
@deployment_option
def settle(
    proof_file: Path, receipts_file: Path, rpc_url: str, keystore: Path | None, deployment: Path
) -> None:
    """Submit PROOF_FILE (zkmeter prove) for settlement, signed by the batch's operator.

    Checked before anything is sent: the proof file's chain, settlement contract and batch
    number match this chain and the operator's next batch, the signing key is the operator's,
    and every channel's last receipt in --receipts is signed and ends exactly where the chain's
    channel plus the proof's totals end. The settlement is then dry-run (eth_call) and sent;
    the contract checks each payer's signature and the proof, all or nothing.
    """
    from verifier.proof import MalformedProofError
    from verifier.proof_file import parse_proof_file

    try:
        public, proof = parse_proof_file(json.loads(proof_file.read_text()))
    except (json.JSONDecodeError, MalformedProofError) as exc:
        raise click.ClickException(f"{proof_file}: {exc}") from exc
    client = _client(rpc_url, keystore, deployment)
    operator = client.default_account
    header = public.header
    expected = {
        "chain id": (header.chain_id, client.chain_id),
        "settlement": (header.settlement, int(deployment_address(client), 16)),
        "operator": (header.operator, int(operator.address, 16)),
        "batch number": (header.batch_seq, _run(client.next_batch_seq, operator.address)),
    }
    for what, (in_file, on_chain) in expected.items():
        if in_file != on_chain:
            raise click.ClickException(
                f"{proof_file}: {what} is {in_file:#x} in the proof but {on_chain:#x} here"
                if what in ("settlement", "operator")
                else f"{proof_file}: {what} is {in_file} in the proof but {on_chain} here"
            )
    states = _consent(client, public, receipts_file, operator.address)
    receipt = _run(
        client.settle,
        operator,
        header.batch_seq,
        public.log_size,
        public.aggregates,
        states,
        proof.to_bytes(),
    )
    tokens = sum(a.tokens for a in public.aggregates)
    click.echo(
        f"settled batch {header.batch_seq}: {len(public.aggregates)} channel(s), {tokens} tokens, "
        f"{receipt['gasUsed']:,} gas, tx {receipt['transactionHash'].hex()}"
    )


def _consent(client: ChainClient, public: Any, receipts_file: Path, operator: str) -> list[Any]:
    """The signed state ending each aggregate's run, from the receipts file, checked against
    the chain's channel and the proof's totals."""
    from circuits.public_inputs import address_hex
    from contracts.client import SignedState
    from prover.receipts import ReceiptError, SignedReceipt

    try:
        data = json.loads(receipts_file.read_text())
        items = data["receipts"]
        receipts = [SignedReceipt.from_json(item, operator=operator) for item in items]
    except (json.JSONDecodeError, KeyError, TypeError, ReceiptError) as exc:
        raise click.ClickException(f"{receipts_file}: {exc}") from exc
    last: dict[tuple[int, int], SignedReceipt] = {}
    for r in receipts:
        key = (int(r.payer, 16), r.model_id)
        if key not in last or r.nonce > last[key].nonce:
            last[key] = r
    states = []
    for a in public.aggregates:
        payer = address_hex(a.payer)
        r = last.get((a.payer, a.model_id))
        if r is None:
            raise click.ClickException(
                f"{receipts_file}: no signed receipt of payer {payer} for model {a.model_id}"
            )
        settled = _run(client.channel, payer, operator, a.model_id)
        end = (settled.nonce + a.count, settled.cumulative_tokens + a.tokens)
        if (r.nonce, r.cumulative_tokens) != end:
            raise click.ClickException(
                f"{receipts_file}: the last receipt of payer {payer}, model {a.model_id} is at "
                f"nonce {r.nonce}, cumulative {r.cumulative_tokens}, but the chain's channel plus "
                f"this proof end at nonce {end[0]}, cumulative {end[1]}"
            )
        states.append(SignedState.of(r))
    return states


def deployment_address(client: ChainClient) -> str:
    """The settlement contract the client is using (set by `_client(..., deployment)`)."""
    if client.deployment is None:
        raise click.ClickException("no deployment loaded")
    return client.deployment.settlement
